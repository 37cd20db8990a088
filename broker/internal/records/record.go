package records

import (
	"encoding/binary"
	"fmt"
)

// Record is one record of a batch as decoded by Records. Its slices alias
// the batch (or the decompressed section) and are valid only during the
// callback.
type Record struct {
	// Attributes is the record's (unused) attribute byte.
	Attributes int8
	// TimestampDelta is added to the batch's FirstTimestamp for a
	// CreateTime batch; a LogAppendTime batch's records all have the
	// batch's MaxTimestamp.
	TimestampDelta int64
	// OffsetDelta is added to the batch's BaseOffset.
	OffsetDelta int32
	// Key and Value are the record's key and value; KeyNull and ValueNull
	// tell a null key or value from an empty one.
	Key, Value         []byte
	KeyNull, ValueNull bool
	// NumHeaders is the number of headers in RawHeaders, the encoded
	// headers; decode them with EachHeader.
	NumHeaders int
	RawHeaders []byte
}

// EachHeader calls fn for each header of r, in order, until fn returns
// false. The slices alias the record. It returns ErrInvalidRecord if the
// headers do not decode (they were checked when the batch was walked, so
// this happens only for a hand-built Record).
func (r *Record) EachHeader(fn func(key, value []byte, valueNull bool) bool) error {
	b := r.RawHeaders
	for i := 0; i < r.NumHeaders; i++ {
		var key, val []byte
		var null bool
		var ok bool
		if key, null, b, ok = readBytes(b); !ok || null {
			return fmt.Errorf("%w: header %d key", ErrInvalidRecord, i)
		}
		if val, null, b, ok = readBytes(b); !ok {
			return fmt.Errorf("%w: header %d value", ErrInvalidRecord, i)
		}
		if !fn(key, val, null) {
			return nil
		}
	}
	return nil
}

// Records calls fn for each record of the batch b, in order, until fn
// returns false. b must be one whole batch; its CRC is not checked (use
// Validate or CheckCRC for untrusted input) but every length is. A
// compressed batch is decompressed with d into d's buffer, rejecting more
// than maxDecompressed bytes; d may be nil, in which case a pooled one is
// used. Errors wrap ErrCorrupt, ErrInvalidRecord or
// ErrUnsupportedCompression.
func Records(b []byte, d *Decompressor, maxDecompressed int, fn func(Record) bool) error {
	h, err := ParseHeader(b)
	if err != nil {
		return err
	}
	if h.TotalSize() != len(b) {
		return fmt.Errorf("%w: batch length %d does not match the %d bytes given", ErrCorrupt, h.Length, len(b))
	}
	if h.NumRecords < 0 {
		return fmt.Errorf("%w: negative record count %d", ErrInvalidRecord, h.NumRecords)
	}
	raw := b[HeaderSize:]
	if c := h.Compression(); c != CodecNone {
		if d == nil {
			d = getDecompressor()
			defer putDecompressor(d)
		}
		if raw, err = d.Decompress(c, raw, maxDecompressed); err != nil {
			return err
		}
	}
	return walk(raw, &h, false, fn)
}

// walk decodes every record of the records section b of the batch h. With
// strict, offset deltas must be 0, 1, 2, ... as a producer writes them (a
// compacted batch may have gaps). fn may be nil.
func walk(b []byte, h *BatchHeader, strict bool, fn func(Record) bool) error {
	n := int(h.NumRecords)
	for i := 0; i < n; i++ {
		length, m := binary.Varint(b)
		if m <= 0 || m > 5 {
			return fmt.Errorf("%w: record %d: bad length varint", ErrInvalidRecord, i)
		}
		b = b[m:]
		if length < 0 || length > int64(len(b)) {
			return fmt.Errorf("%w: record %d: length %d with %d bytes left", ErrInvalidRecord, i, length, len(b))
		}
		rec, ok := parseRecord(b[:length])
		if !ok {
			return fmt.Errorf("%w: record %d: malformed", ErrInvalidRecord, i)
		}
		if strict && rec.OffsetDelta != int32(i) {
			return fmt.Errorf("%w: record %d has offset delta %d", ErrInvalidRecord, i, rec.OffsetDelta)
		}
		if !strict && (rec.OffsetDelta < 0 || rec.OffsetDelta > h.LastOffsetDelta) {
			return fmt.Errorf("%w: record %d has offset delta %d past the batch's last %d", ErrInvalidRecord, i, rec.OffsetDelta, h.LastOffsetDelta)
		}
		b = b[length:]
		if fn != nil && !fn(rec) {
			return nil
		}
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d bytes after the %d records", ErrInvalidRecord, len(b), n)
	}
	return nil
}

// parseRecord decodes one record body (after its length), which must be
// consumed exactly.
func parseRecord(b []byte) (Record, bool) {
	var r Record
	if len(b) < 1 {
		return r, false
	}
	r.Attributes = int8(b[0])
	b = b[1:]
	ts, m := binary.Varint(b)
	if m <= 0 {
		return r, false
	}
	r.TimestampDelta = ts
	b = b[m:]
	od, m := binary.Varint(b)
	if m <= 0 || m > 5 || od != int64(int32(od)) {
		return r, false
	}
	r.OffsetDelta = int32(od)
	b = b[m:]
	var ok bool
	if r.Key, r.KeyNull, b, ok = readBytes(b); !ok {
		return r, false
	}
	if r.Value, r.ValueNull, b, ok = readBytes(b); !ok {
		return r, false
	}
	nh, m := binary.Varint(b)
	if m <= 0 || m > 5 || nh < 0 || nh > int64(len(b)) {
		return r, false
	}
	b = b[m:]
	r.RawHeaders = b
	r.NumHeaders = int(nh)
	for i := 0; i < r.NumHeaders; i++ {
		var null bool
		if _, null, b, ok = readBytes(b); !ok || null {
			return r, false
		}
		if _, _, b, ok = readBytes(b); !ok {
			return r, false
		}
	}
	return r, len(b) == 0
}

// readBytes reads a varint-length-prefixed byte string; length -1 is null.
func readBytes(b []byte) (v []byte, null bool, rest []byte, ok bool) {
	l, m := binary.Varint(b)
	if m <= 0 || m > 5 {
		return nil, false, b, false
	}
	b = b[m:]
	switch {
	case l == -1:
		return nil, true, b, true
	case l < -1 || l > int64(len(b)):
		return nil, false, b, false
	}
	return b[:l:l], false, b[l:], true
}
