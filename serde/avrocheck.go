package serde

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/hamba/avro/v2"
)

// maxZeroWidthItems bounds the array and map items of one value whose schema
// encodes to no bytes (null, records with only such fields): a few bytes of
// block count could otherwise ask for any number of them.
const maxZeroWidthItems = 1 << 14

// maxAvroDepth bounds the nesting of records, arrays, maps and unions in one
// Avro value, so recursive schemas cannot make decoding recurse without end.
const maxAvroDepth = 1000

// avroCheck walks Avro binary data against its writer schema before the
// codec decodes it. It is what makes Avro decoding bounded: the codec trusts
// length prefixes and block counts (allocating before it reads), skips
// unread fields by a block's byte size without checking it, and takes a
// truncated value for a complete one. The check allocates nothing.
//
// Besides the Avro spec's rules: a string, bytes or fixed must fit in the
// bytes left; a block of n items whose schema takes at least a byte must
// have n bytes left; a block's byte size, when given, must be what its items
// take; items of zero-width schemas (null, records of them) number at most
// maxZeroWidthItems in one value; ints and longs are at most 5 and 10 bytes
// and must not overflow; the value must use every byte of b. All of these
// hold for any valid value, except the zero-width and depth limits.
type avroCheck struct {
	b     []byte
	off   int
	zero  int // zero-width items seen
	depth int
}

// checkAvro reports whether b is exactly one value of schema s.
func checkAvro(s avro.Schema, b []byte) error {
	c := avroCheck{b: b}
	if err := c.value(s); err != nil {
		return err
	}
	if c.off != len(b) {
		return c.fail("trailing bytes after the value")
	}
	return nil
}

func (c *avroCheck) fail(reason string) error { return malformed("avro", c.b, c.off, reason, nil) }

func (c *avroCheck) left() int { return len(c.b) - c.off }

func (c *avroCheck) skip(n int64) error {
	if n < 0 || n > int64(c.left()) {
		return c.fail(fmt.Sprintf("length %d exceeds the %d bytes left", n, c.left()))
	}
	c.off += int(n)
	return nil
}

// varint reads an unsigned varint of at most maxLen bytes whose last byte
// is at most lastMax, so the value cannot overflow.
func (c *avroCheck) varint(maxLen int, lastMax byte) (uint64, error) {
	var x uint64
	for i := range maxLen {
		if c.off >= len(c.b) {
			return 0, c.fail("truncated varint")
		}
		v := c.b[c.off]
		c.off++
		if i == maxLen-1 && v > lastMax {
			return 0, c.fail("varint overflows")
		}
		x |= uint64(v&0x7f) << (7 * i)
		if v < 0x80 {
			return x, nil
		}
	}
	return 0, c.fail("varint too long") // not reached: lastMax < 0x80
}

func (c *avroCheck) long() (int64, error) {
	x, err := c.varint(10, 0x01)
	return int64(x>>1) ^ -int64(x&1), err
}

func (c *avroCheck) int() (int64, error) {
	x, err := c.varint(5, 0x0f)
	return int64(x>>1) ^ -int64(x&1), err
}

func (c *avroCheck) value(s avro.Schema) error {
	switch s.Type() {
	case avro.Ref:
		return c.value(s.(*avro.RefSchema).Schema())
	case avro.Null:
		return nil
	case avro.Boolean:
		if c.left() < 1 || c.b[c.off] > 1 {
			return c.fail("want a boolean, 00 or 01")
		}
		c.off++
		return nil
	case avro.Int:
		_, err := c.int()
		return err
	case avro.Long:
		_, err := c.long()
		return err
	case avro.Float:
		return c.skip(4)
	case avro.Double:
		return c.skip(8)
	case avro.String, avro.Bytes:
		n, err := c.long()
		if err != nil {
			return err
		}
		return c.skip(n)
	case avro.Fixed:
		return c.skip(int64(s.(*avro.FixedSchema).Size()))
	case avro.Enum:
		i, err := c.int()
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(len(s.(*avro.EnumSchema).Symbols())) {
			return c.fail(fmt.Sprintf("enum index %d out of range", i))
		}
		return nil
	}

	c.depth++
	defer func() { c.depth-- }()
	if c.depth > maxAvroDepth {
		return c.fail("value nested too deep")
	}
	switch s := s.(type) {
	case *avro.RecordSchema:
		for _, f := range s.Fields() {
			if err := c.value(f.Type()); err != nil {
				return err
			}
		}
		return nil
	case *avro.UnionSchema:
		i, err := c.int()
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(len(s.Types())) {
			return c.fail(fmt.Sprintf("union index %d out of range", i))
		}
		return c.value(s.Types()[i])
	case *avro.ArraySchema:
		return c.blocks(s.Items(), false, func() error { return c.value(s.Items()) })
	case *avro.MapSchema:
		return c.blocks(s.Values(), true, func() error {
			n, err := c.long() // the key, a string
			if err != nil {
				return err
			}
			if err := c.skip(n); err != nil {
				return err
			}
			return c.value(s.Values())
		})
	}
	return c.fail(fmt.Sprintf("unsupported schema type %s", s.Type()))
}

// blocks walks the blocks of an array or map of items, calling item for
// each. Map items take at least a byte (the key's length).
func (c *avroCheck) blocks(items avro.Schema, isMap bool, item func() error) error {
	zeroWidth := !isMap && isZeroWidth(items, 0)
	for {
		n, err := c.long()
		if err != nil || n == 0 {
			return err
		}
		size := int64(-1)
		if n < 0 {
			// A negative count is followed by the block's size in bytes.
			if n == math.MinInt64 {
				return c.fail("block count overflows")
			}
			n = -n
			if size, err = c.long(); err != nil {
				return err
			}
			if size < 0 || size > int64(c.left()) {
				return c.fail(fmt.Sprintf("block size %d exceeds the %d bytes left", size, c.left()))
			}
		}
		if zeroWidth {
			if n > int64(maxZeroWidthItems-c.zero) {
				return c.fail(fmt.Sprintf("more than %d items of a zero-width type", maxZeroWidthItems))
			}
			c.zero += int(n)
		} else if n > int64(c.left()) {
			return c.fail(fmt.Sprintf("block of %d items exceeds the %d bytes left", n, c.left()))
		}
		start := c.off
		for range n {
			if err := item(); err != nil {
				return err
			}
		}
		if size >= 0 && int64(c.off-start) != size {
			return c.fail(fmt.Sprintf("block items take %d bytes, not the %d its header says", c.off-start, size))
		}
	}
}

// isZeroWidth reports whether every value of s encodes to no bytes. A
// record reached again below itself without a union, array or map between
// has no finite value; the depth cap ends the walk for it.
func isZeroWidth(s avro.Schema, depth int) bool {
	if depth > 64 {
		return false
	}
	switch s := s.(type) {
	case *avro.RefSchema:
		return isZeroWidth(s.Schema(), depth+1)
	case *avro.RecordSchema:
		for _, f := range s.Fields() {
			if !isZeroWidth(f.Type(), depth+1) {
				return false
			}
		}
		return true
	case *avro.FixedSchema:
		return s.Size() == 0
	}
	return s.Type() == avro.Null
}

// appendMinimalAvro appends the shortest value of schema s: zeros, empty
// strings, arrays and maps, the first enum symbol, and for unions the first
// branch that terminates (null if there is one). It reports false for a
// schema with no finite value.
func appendMinimalAvro(dst []byte, s avro.Schema, depth int) ([]byte, bool) {
	if depth > 64 {
		return dst, false
	}
	switch s := s.(type) {
	case *avro.RefSchema:
		return appendMinimalAvro(dst, s.Schema(), depth+1)
	case *avro.RecordSchema:
		for _, f := range s.Fields() {
			var ok bool
			if dst, ok = appendMinimalAvro(dst, f.Type(), depth+1); !ok {
				return dst, false
			}
		}
		return dst, true
	case *avro.UnionSchema:
		for i, t := range s.Types() {
			if t.Type() == avro.Null {
				return binary.AppendUvarint(dst, uint64(i)<<1), true // zigzag of i >= 0
			}
		}
		for i, t := range s.Types() {
			if out, ok := appendMinimalAvro(binary.AppendUvarint(dst, uint64(i)<<1), t, depth+1); ok {
				return out, true
			}
		}
		return dst, false
	case *avro.FixedSchema:
		return append(dst, make([]byte, s.Size())...), true
	}
	switch s.Type() {
	case avro.Null:
	case avro.Float:
		dst = append(dst, 0, 0, 0, 0)
	case avro.Double:
		dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	default: // boolean, int, long, enum: 0; string, bytes, array, map: empty
		dst = append(dst, 0)
	}
	return dst, true
}
