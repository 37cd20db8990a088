package pgcdc

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

// FuzzDML feeds arbitrary pgoutput Insert, Update and Delete messages to
// the decoder: it must return an error or records, never panic or read past
// the message.
func FuzzDML(f *testing.F) {
	tuple := func(cols ...[]byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(len(cols)))
		for _, c := range cols {
			switch {
			case c == nil:
				b = append(b, 'n')
			case string(c) == "\x00toast":
				b = append(b, 'u')
			default:
				b = append(b, 't')
				b = binary.BigEndian.AppendUint32(b, uint32(len(c)))
				b = append(b, c...)
			}
		}
		return b
	}
	msg := func(typ byte, parts ...[]byte) []byte {
		b := binary.BigEndian.AppendUint32([]byte{typ}, 7)
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	f.Add(msg('I', []byte("N"), tuple([]byte("1"), []byte("x"))))
	f.Add(msg('U', []byte("O"), tuple([]byte("1"), []byte("x")), []byte("N"), tuple([]byte("2"), []byte("\x00toast"))))
	f.Add(msg('U', []byte("K"), tuple([]byte("1"), nil), []byte("N"), tuple([]byte("1"), []byte("y"))))
	f.Add(msg('D', []byte("K"), tuple([]byte("1"), nil)))
	f.Add(msg('I', []byte("N"), []byte{0, 2, 't', 0xff, 0xff, 0xff, 0xff}))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 || (data[0] != 'I' && data[0] != 'U' && data[0] != 'D') {
			return
		}
		tk := &task{items: make(chan []item, 16)}
		cfg := &config{prefix: "p", tombstones: true, decimalString: true}
		c := &capture{t: tk, cfg: cfg, part: cfg.partition(), rels: map[uint32]*relation{
			7: {captured: true, schema: "s", name: "t", topic: "p.s.t", keyIdx: []int{0},
				cols: []column{{"id", pgtype.Int4OID}, {"v", pgtype.TextOID}}},
		}}
		_ = c.dml(context.Background(), data)
		if err := c.flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}
