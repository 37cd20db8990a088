package records

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// AttrDeleteHorizon is attribute bit 6 (KIP-534): the batch's
// FirstTimestamp holds the delete horizon, the time after which a log
// cleaner may remove the batch's tombstones. Record timestamps stay
// FirstTimestamp + TimestampDelta, so readers that ignore the bit still see
// the right timestamps.
const AttrDeleteHorizon = 0x40

// HasDeleteHorizon reports whether FirstTimestamp holds a delete horizon
// (attribute bit 6, set by a log cleaner).
func (h *BatchHeader) HasDeleteHorizon() bool { return h.Attributes&AttrDeleteHorizon != 0 }

// AppendHeader appends the 61-byte encoding of h to dst. The CRC field is
// written as h.CRC: set it with UpdateCRC once the records follow.
// h.Length must count the records section that will follow.
func AppendHeader(dst []byte, h *BatchHeader) []byte {
	be := binary.BigEndian
	dst = be.AppendUint64(dst, uint64(h.BaseOffset))
	dst = be.AppendUint32(dst, uint32(h.Length))
	dst = be.AppendUint32(dst, uint32(h.PartitionLeaderEpoch))
	dst = append(dst, byte(h.Magic))
	dst = be.AppendUint32(dst, h.CRC)
	dst = be.AppendUint16(dst, uint16(h.Attributes))
	dst = be.AppendUint32(dst, uint32(h.LastOffsetDelta))
	dst = be.AppendUint64(dst, uint64(h.FirstTimestamp))
	dst = be.AppendUint64(dst, uint64(h.MaxTimestamp))
	dst = be.AppendUint64(dst, uint64(h.ProducerID))
	dst = be.AppendUint16(dst, uint16(h.ProducerEpoch))
	dst = be.AppendUint32(dst, uint32(h.BaseSequence))
	return be.AppendUint32(dst, uint32(h.NumRecords))
}

// AppendRecord appends the encoding of r (length-prefixed, as in a records
// section) to dst, with r's OffsetDelta and the given timestamp delta.
// r.RawHeaders and r.NumHeaders are copied as they are.
func AppendRecord(dst []byte, r *Record, timestampDelta int64) []byte {
	n := 1 + varintLen(timestampDelta) + varintLen(int64(r.OffsetDelta)) +
		bytesLen(r.Key, r.KeyNull) + bytesLen(r.Value, r.ValueNull) +
		varintLen(int64(r.NumHeaders)) + len(r.RawHeaders)
	dst = binary.AppendVarint(dst, int64(n))
	dst = append(dst, byte(r.Attributes))
	dst = binary.AppendVarint(dst, timestampDelta)
	dst = binary.AppendVarint(dst, int64(r.OffsetDelta))
	dst = appendBytes(dst, r.Key, r.KeyNull)
	dst = appendBytes(dst, r.Value, r.ValueNull)
	dst = binary.AppendVarint(dst, int64(r.NumHeaders))
	return append(dst, r.RawHeaders...)
}

func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

func bytesLen(b []byte, null bool) int {
	if null {
		return 1
	}
	return varintLen(int64(len(b))) + len(b)
}

func appendBytes(dst, b []byte, null bool) []byte {
	if null {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// Compressor compresses records sections with the codecs Kafka defines,
// reusing its encoders. Snappy is written as raw snappy blocks, as franz-go
// and librdkafka write it (every Kafka client reads both raw and
// xerial-framed snappy). It is not safe for concurrent use; the zero value
// is ready to use.
type Compressor struct {
	buf bytes.Buffer
	gz  *gzip.Writer
	lz  *lz4.Writer
	zs  *zstd.Encoder
}

// Compress appends src compressed with codec to dst. CodecNone appends src
// as it is. Unknown codecs return ErrUnsupportedCompression.
func (c *Compressor) Compress(dst []byte, codec byte, src []byte) ([]byte, error) {
	switch codec {
	case CodecNone:
		return append(dst, src...), nil
	case CodecSnappy:
		n := len(dst)
		dst = growLen(dst, s2.MaxEncodedLen(len(src)))
		out := s2.EncodeSnappy(dst[n:], src)
		return dst[:n+len(out)], nil
	case CodecZstd:
		if c.zs == nil {
			zs, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
			if err != nil {
				return dst, err
			}
			c.zs = zs
		}
		return c.zs.EncodeAll(src, dst), nil
	case CodecGzip, CodecLz4:
	default:
		return dst, fmt.Errorf("%w: codec %d", ErrUnsupportedCompression, codec)
	}
	c.buf.Reset()
	var err error
	if codec == CodecGzip {
		if c.gz == nil {
			c.gz = gzip.NewWriter(&c.buf)
		} else {
			c.gz.Reset(&c.buf)
		}
		if _, err = c.gz.Write(src); err == nil {
			err = c.gz.Close()
		}
	} else {
		if c.lz == nil {
			c.lz = lz4.NewWriter(&c.buf)
		} else {
			c.lz.Reset(&c.buf)
		}
		if _, err = c.lz.Write(src); err == nil {
			err = c.lz.Close()
		}
	}
	if err != nil {
		return dst, err
	}
	return append(dst, c.buf.Bytes()...), nil
}
