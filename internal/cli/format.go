package cli

import (
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// FormatHelp lists the verbs and escapes a Formatter understands.
const FormatHelp = `%k key, %v value, %t topic, %p partition, %o offset, %T timestamp (Unix ms),
%h headers (k=v,k=v), %% a literal %; escapes \n, \t, \r and \\`

// DefaultFormat prints each record's value on its own line.
const DefaultFormat = `%v\n`

// Formatter renders records through a printf-like format (see FormatHelp).
// It is parsed once; Append does no parsing and allocates nothing beyond
// growing dst.
type Formatter struct {
	ops []fmtOp
}

type fmtOp struct {
	verb byte   // 0 for literal text
	lit  []byte // literal text when verb == 0
}

// NewFormatter parses format. Unknown verbs and escapes are errors, so a typo
// is reported rather than printed.
func NewFormatter(format string) (*Formatter, error) {
	f := &Formatter{}
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			f.ops = append(f.ops, fmtOp{lit: lit})
			lit = nil
		}
	}
	for i := 0; i < len(format); i++ {
		c := format[i]
		switch c {
		case '\\':
			if i+1 == len(format) {
				return nil, fmt.Errorf("invalid --format %q: trailing \\", format)
			}
			i++
			switch format[i] {
			case 'n':
				lit = append(lit, '\n')
			case 't':
				lit = append(lit, '\t')
			case 'r':
				lit = append(lit, '\r')
			case '\\':
				lit = append(lit, '\\')
			default:
				return nil, fmt.Errorf("invalid --format %q: unknown escape \\%c (use \\n, \\t, \\r or \\\\)", format, format[i])
			}
		case '%':
			if i+1 == len(format) {
				return nil, fmt.Errorf("invalid --format %q: trailing %%", format)
			}
			i++
			switch v := format[i]; v {
			case '%':
				lit = append(lit, '%')
			case 'k', 'v', 't', 'p', 'o', 'T', 'h':
				flush()
				f.ops = append(f.ops, fmtOp{verb: v})
			default:
				return nil, fmt.Errorf("invalid --format %q: unknown verb %%%c (use %%k %%v %%t %%p %%o %%T %%h)", format, v)
			}
		default:
			lit = append(lit, c)
		}
	}
	flush()
	return f, nil
}

// Append appends r rendered by f to dst.
func (f *Formatter) Append(dst []byte, r *kgo.Record) []byte {
	for _, op := range f.ops {
		switch op.verb {
		case 0:
			dst = append(dst, op.lit...)
		case 'k':
			dst = append(dst, r.Key...)
		case 'v':
			dst = append(dst, r.Value...)
		case 't':
			dst = append(dst, r.Topic...)
		case 'p':
			dst = strconv.AppendInt(dst, int64(r.Partition), 10)
		case 'o':
			dst = strconv.AppendInt(dst, r.Offset, 10)
		case 'T':
			dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
		case 'h':
			for i, h := range r.Headers {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, h.Key...)
				dst = append(dst, '=')
				dst = append(dst, h.Value...)
			}
		}
	}
	return dst
}
