// Package recordstest builds v2 record batches for tests: an encoder that is
// independent of the parser in package records, with every codec the broker
// accepts.
package recordstest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codec values as stored in the batch attributes. CodecSnappyXerial is
// snappy (2) framed the way the Java client frames it.
const (
	CodecNone         = 0
	CodecGzip         = 1
	CodecSnappy       = 2
	CodecLz4          = 3
	CodecZstd         = 4
	CodecSnappyXerial = 0x102
)

// Header is one record header.
type Header struct{ Key, Value []byte }

// Record is one record to encode. A nil Key or Value encodes as null.
type Record struct {
	TimestampDelta int64
	Key, Value     []byte
	Headers        []Header
}

// Batch describes a batch to encode. Offset deltas are 0..n-1 and
// LastOffsetDelta is n-1.
type Batch struct {
	BaseOffset     int64
	FirstTimestamp int64
	Codec          int
	Transactional  bool
	Control        bool
	ProducerID     int64
	ProducerEpoch  int16
	BaseSequence   int32
	Records        []Record
}

// Encode returns the encoded batch with a correct CRC.
func (b Batch) Encode() []byte {
	var recs []byte
	maxTS := b.FirstTimestamp
	for i, r := range b.Records {
		recs = AppendRecord(recs, int32(i), r)
		maxTS = max(maxTS, b.FirstTimestamp+r.TimestampDelta)
	}
	codec := b.Codec & 0x7
	recs = compress(b.Codec, recs)
	attrs := uint16(codec)
	if b.Transactional {
		attrs |= 0x10
	}
	if b.Control {
		attrs |= 0x20
	}
	out := make([]byte, 61, 61+len(recs))
	be := binary.BigEndian
	be.PutUint64(out[0:], uint64(b.BaseOffset))
	be.PutUint32(out[8:], uint32(49+len(recs)))
	be.PutUint32(out[12:], 0)
	out[16] = 2
	be.PutUint16(out[21:], attrs)
	be.PutUint32(out[23:], uint32(len(b.Records)-1))
	if len(b.Records) == 0 {
		be.PutUint32(out[23:], 0)
	}
	be.PutUint64(out[27:], uint64(b.FirstTimestamp))
	be.PutUint64(out[35:], uint64(maxTS))
	be.PutUint64(out[43:], uint64(b.ProducerID))
	be.PutUint16(out[51:], uint16(b.ProducerEpoch))
	be.PutUint32(out[53:], uint32(b.BaseSequence))
	be.PutUint32(out[57:], uint32(len(b.Records)))
	out = append(out, recs...)
	be.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

// AppendRecord appends one encoded record with the given offset delta.
func AppendRecord(dst []byte, offsetDelta int32, r Record) []byte {
	var body []byte
	body = append(body, 0)
	body = binary.AppendVarint(body, r.TimestampDelta)
	body = binary.AppendVarint(body, int64(offsetDelta))
	body = appendBytes(body, r.Key)
	body = appendBytes(body, r.Value)
	body = binary.AppendVarint(body, int64(len(r.Headers)))
	for _, h := range r.Headers {
		body = appendBytes(body, h.Key)
		body = appendBytes(body, h.Value)
	}
	dst = binary.AppendVarint(dst, int64(len(body)))
	return append(dst, body...)
}

func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

func compress(codec int, b []byte) []byte {
	var buf bytes.Buffer
	switch codec {
	case CodecNone:
		return b
	case CodecGzip:
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
	case CodecSnappy:
		return s2.EncodeSnappy(nil, b)
	case CodecSnappyXerial:
		buf.Write([]byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1})
		for len(b) > 0 {
			n := min(len(b), 1000)
			blk := s2.EncodeSnappy(nil, b[:n])
			buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(blk))))
			buf.Write(blk)
			b = b[n:]
		}
	case CodecLz4:
		w := lz4.NewWriter(&buf)
		w.Write(b)
		w.Close()
	case CodecZstd:
		w, _ := zstd.NewWriter(nil)
		return w.EncodeAll(b, nil)
	default:
		panic("recordstest: unknown codec")
	}
	return buf.Bytes()
}

// Simple returns an uncompressed batch of n records with values of size
// valueSize, at the given base offset and first timestamp.
func Simple(base int64, ts int64, n, valueSize int) []byte {
	b := Batch{BaseOffset: base, FirstTimestamp: ts, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	for i := range n {
		v := bytes.Repeat([]byte{byte('a' + i%26)}, valueSize)
		b.Records = append(b.Records, Record{Key: []byte{byte(i)}, Value: v})
	}
	return b.Encode()
}
