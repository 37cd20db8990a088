package pgcdc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
)

// errTruncated: a pgoutput message ended before its declared contents.
var errTruncated = errors.New("pgcdc: truncated pgoutput message")

// dml decodes and handles a pgoutput Insert ('I'), Update ('U') or Delete
// ('D') message (protocol version 1):
//
//	Insert: 'I' relid:int32 'N' tuple
//	Update: 'U' relid:int32 [('K'|'O') tuple] 'N' tuple
//	Delete: 'D' relid:int32 ('K'|'O') tuple
//	tuple:  ncols:int16 { 'n' | 'u' | ('t'|'b') len:int32 bytes[len] }
//
// It decodes straight into rows, bounds-checking every length against the
// bytes left (pglogrepl's decoder allocates per column and trusts them).
func (c *capture) dml(ctx context.Context, data []byte) error {
	typ, src := data[0], data[1:]
	if len(src) < 5 {
		return errTruncated
	}
	rel := c.rels[binary.BigEndian.Uint32(src)]
	src = src[4:]
	if rel == nil || !rel.captured {
		return nil
	}
	var oldType byte
	var before, after map[string]any
	var err error
	if typ != 'I' && (src[0] == 'K' || src[0] == 'O') {
		oldType = src[0]
		if before, src, err = c.tuple(rel, src[1:], nil); err != nil {
			return err
		}
	}
	switch typ {
	case 'D':
		if oldType == 0 {
			return nil // no replica identity: nothing to say
		}
		key := c.key(rel, before)
		if err := c.change(ctx, rel, "d", key, before, nil); err != nil {
			return err
		}
		if c.cfg.tombstones {
			return c.change(ctx, rel, "", key, nil, nil)
		}
		return nil
	}
	if len(src) < 1 || src[0] != 'N' {
		return fmt.Errorf("pgcdc: pgoutput %c message without a new tuple", typ)
	}
	if after, _, err = c.tuple(rel, src[1:], before); err != nil {
		return err
	}
	key := c.key(rel, after)
	if typ == 'I' {
		return c.change(ctx, rel, "c", key, nil, after)
	}
	if before != nil {
		if old := c.key(rel, before); !sameKey(old, key) {
			// The key changed: as Debezium, a delete (and tombstone) of the
			// old key, then a create of the new one.
			if err := c.change(ctx, rel, "d", old, before, nil); err != nil {
				return err
			}
			if c.cfg.tombstones {
				if err := c.change(ctx, rel, "", old, nil, nil); err != nil {
					return err
				}
			}
			return c.change(ctx, rel, "c", key, nil, after)
		}
		if oldType == 'K' {
			before = nil // only the key: no before-image, as under DEFAULT
		}
	}
	return c.change(ctx, rel, "u", key, before, after)
}

// tuple decodes one tuple of rel and returns it with the bytes after it.
// Unchanged TOASTed values are taken from prev when it has them (REPLICA
// IDENTITY FULL), else are the placeholder.
func (c *capture) tuple(rel *relation, src []byte, prev map[string]any) (map[string]any, []byte, error) {
	if len(src) < 2 {
		return nil, nil, errTruncated
	}
	n := int(binary.BigEndian.Uint16(src))
	src = src[2:]
	if n > len(src) { // each column takes at least one byte
		return nil, nil, errTruncated
	}
	m := make(map[string]any, len(rel.cols))
	for i := range n {
		if len(src) < 1 {
			return nil, nil, errTruncated
		}
		kind := src[0]
		src = src[1:]
		var v any
		switch kind {
		case 'n':
		case 'u':
			v = unavailable
			if i < len(rel.cols) {
				if pv, ok := prev[rel.cols[i].name]; ok && pv != unavailable {
					v = pv
				}
			}
		case 't', 'b':
			if len(src) < 4 {
				return nil, nil, errTruncated
			}
			l := binary.BigEndian.Uint32(src)
			src = src[4:]
			if uint64(l) > uint64(len(src)) {
				return nil, nil, errTruncated
			}
			data := src[:l]
			src = src[l:]
			if i >= len(rel.cols) {
				continue
			}
			if kind == 't' {
				v = convert(rel.cols[i].oid, data, c.cfg.decimalString)
			} else {
				v = bytes.Clone(data)
			}
		default:
			return nil, nil, fmt.Errorf("pgcdc: unknown pgoutput tuple column kind %q", kind)
		}
		if i < len(rel.cols) {
			m[rel.cols[i].name] = v
		}
	}
	return m, src, nil
}
