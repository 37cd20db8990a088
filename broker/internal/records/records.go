// Package records parses, validates and rewrites Kafka record batches
// (message format v2, "magic 2"), the unit the broker stores and serves.
//
// A batch is laid out as follows (all integers big endian; the records
// section uses zig-zag varints):
//
//	offset  size  field
//	     0     8  base offset             (assigned by the broker; outside the CRC)
//	     8     4  length                  (bytes after this field: total size - 12)
//	    12     4  partition leader epoch  (outside the CRC)
//	    16     1  magic                   (2)
//	    17     4  crc                     (CRC-32C of bytes 21..end)
//	    21     2  attributes              (bits 0-2 codec, 3 timestamp type,
//	                                       4 transactional, 5 control)
//	    23     4  last offset delta
//	    27     8  first timestamp
//	    35     8  max timestamp
//	    43     8  producer id
//	    51     2  producer epoch
//	    53     4  base sequence
//	    57     4  record count
//	    61     -  records (compressed as a whole when codec != 0)
//
//	record := length varint | attributes int8 | timestamp delta varlong |
//	          offset delta varint | key length varint (-1 = null) | key |
//	          value length varint (-1 = null) | value |
//	          header count varint | headers
//	header := key length varint | key | value length varint (-1 = null) | value
//
// Every function here is bounded by the slice it is given and never panics on
// arbitrary input. Functions are safe for concurrent use on distinct buffers.
package records

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Errors returned by this package. They are wrapped with %w and context;
// match them with errors.Is.
var (
	// ErrCorrupt is returned when the bytes of a batch are damaged: a bad
	// CRC, a torn batch, or lengths that do not add up. The handler maps it
	// to Kafka's CORRUPT_MESSAGE.
	ErrCorrupt = errors.New("broker/records: corrupt record batch")
	// ErrInvalidRecord is returned when a batch has a good CRC but its
	// records are structurally invalid (bad varints, a wrong record count,
	// a decompressed size over the bound). The handler maps it to
	// INVALID_RECORD.
	ErrInvalidRecord = errors.New("broker/records: invalid record")
	// ErrUnsupportedMagic is returned for batches whose magic is not 2.
	// The handler maps it to UNSUPPORTED_VERSION.
	ErrUnsupportedMagic = errors.New("broker/records: unsupported magic")
	// ErrUnsupportedCompression is returned for a codec other than none,
	// gzip, snappy, lz4 and zstd. The handler maps it to
	// UNSUPPORTED_COMPRESSION_TYPE.
	ErrUnsupportedCompression = errors.New("broker/records: unsupported compression codec")
)

// HeaderSize is the size of a v2 batch header, up to the first record.
const HeaderSize = 61

// Compression codecs as stored in the low three attribute bits.
const (
	CodecNone   byte = 0
	CodecGzip   byte = 1
	CodecSnappy byte = 2
	CodecLz4    byte = 3
	CodecZstd   byte = 4
)

// Attribute bits.
const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

// Byte offsets of header fields.
const (
	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offFirstTimestamp  = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offNumRecords      = 57

	// lengthOverhead is the part of the header that Length does not count.
	lengthOverhead = 12
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BatchHeader is the decoded fixed header of a v2 record batch.
type BatchHeader struct {
	BaseOffset           int64
	Length               int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Compression returns the codec of the records section (CodecNone..CodecZstd,
// or an unsupported value).
func (h *BatchHeader) Compression() byte { return byte(h.Attributes & attrCodecMask) }

// IsTransactional reports whether the batch belongs to a transaction.
func (h *BatchHeader) IsTransactional() bool { return h.Attributes&attrTransactional != 0 }

// IsControl reports whether the batch holds transaction control records.
func (h *BatchHeader) IsControl() bool { return h.Attributes&attrControl != 0 }

// LogAppendTime reports whether the timestamp type is LogAppendTime, in which
// case every record's timestamp is MaxTimestamp.
func (h *BatchHeader) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// LastOffset returns the offset of the last record of the batch.
func (h *BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// TotalSize returns the size of the whole batch in bytes: 12 + Length.
func (h *BatchHeader) TotalSize() int { return lengthOverhead + int(h.Length) }

// ParseHeader decodes the fixed header at the start of b. It checks only
// what the header itself can tell: that b holds HeaderSize bytes and that
// Length is at least the header's own size. b may hold more than one batch,
// or less than the whole batch. It returns ErrCorrupt for a short b or a bad
// length.
func ParseHeader(b []byte) (BatchHeader, error) {
	if len(b) < HeaderSize {
		return BatchHeader{}, fmt.Errorf("%w: %d bytes, less than a batch header", ErrCorrupt, len(b))
	}
	be := binary.BigEndian
	h := BatchHeader{
		BaseOffset:           int64(be.Uint64(b[offBaseOffset:])),
		Length:               int32(be.Uint32(b[offLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		FirstTimestamp:       int64(be.Uint64(b[offFirstTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(be.Uint32(b[offNumRecords:])),
	}
	if h.Length < HeaderSize-lengthOverhead {
		return h, fmt.Errorf("%w: batch length %d shorter than its header", ErrCorrupt, h.Length)
	}
	return h, nil
}

// CheckCRC parses the header of b, which must be exactly one batch, and
// verifies the magic, the length and the CRC, but not the records. It is
// what recovery checks for each stored batch.
func CheckCRC(b []byte) (BatchHeader, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if h.Magic != 2 {
		return h, fmt.Errorf("%w: magic %d", ErrUnsupportedMagic, h.Magic)
	}
	if h.TotalSize() != len(b) {
		return h, fmt.Errorf("%w: batch length %d does not match the %d bytes given", ErrCorrupt, h.Length, len(b))
	}
	if got := crc32.Checksum(b[offAttributes:], castagnoli); got != h.CRC {
		return h, fmt.Errorf("%w: crc %#08x, computed %#08x", ErrCorrupt, h.CRC, got)
	}
	return h, nil
}

// Validate checks that b is exactly one well-formed v2 batch: magic 2, a
// length matching len(b), a correct CRC-32C, NumRecords >= 0 with
// LastOffsetDelta == NumRecords-1, and a records section that decodes to
// exactly NumRecords records. Compressed sections are decompressed into
// pooled memory, rejecting more than maxDecompressed bytes.
//
// Validate does not allocate for uncompressed batches. Errors wrap
// ErrCorrupt, ErrInvalidRecord, ErrUnsupportedMagic or
// ErrUnsupportedCompression.
func Validate(b []byte, maxDecompressed int) (BatchHeader, error) {
	h, err := CheckCRC(b)
	if err != nil {
		return h, err
	}
	if h.NumRecords < 0 {
		return h, fmt.Errorf("%w: negative record count %d", ErrInvalidRecord, h.NumRecords)
	}
	if h.NumRecords > 0 && h.LastOffsetDelta != h.NumRecords-1 {
		return h, fmt.Errorf("%w: last offset delta %d with %d records", ErrInvalidRecord, h.LastOffsetDelta, h.NumRecords)
	}
	if h.NumRecords == 0 && h.LastOffsetDelta < 0 {
		return h, fmt.Errorf("%w: negative last offset delta %d", ErrInvalidRecord, h.LastOffsetDelta)
	}
	codec := h.Compression()
	if codec == CodecNone {
		return h, walk(b[HeaderSize:], &h, true, nil)
	}
	d := getDecompressor()
	defer putDecompressor(d)
	raw, err := d.Decompress(codec, b[HeaderSize:], maxDecompressed)
	if err != nil {
		return h, err
	}
	return h, walk(raw, &h, true, nil)
}

// SetBaseOffset overwrites the base offset of the batch at the start of b.
// The base offset is outside the CRC, so nothing else changes. b must hold
// at least HeaderSize bytes (it panics otherwise, like a slice index).
func SetBaseOffset(b []byte, off int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(off))
}

// SetLogAppendTime rewrites the batch b (exactly one whole batch) for
// message.timestamp.type=LogAppendTime: it sets the timestamp-type bit and
// sets MaxTimestamp to ts, which is what Kafka's in-place path does and
// what readers take as every record's timestamp. It also sets
// FirstTimestamp to ts, as Kafka's rebuilding path does, so that readers
// ignoring the type bit see a close value. The CRC is recomputed.
// b must hold at least HeaderSize bytes.
func SetLogAppendTime(b []byte, ts int64) {
	be := binary.BigEndian
	attrs := be.Uint16(b[offAttributes:]) | attrLogAppendTime
	be.PutUint16(b[offAttributes:], attrs)
	be.PutUint64(b[offFirstTimestamp:], uint64(ts))
	be.PutUint64(b[offMaxTimestamp:], uint64(ts))
	be.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
}

// SetPartitionLeaderEpoch overwrites the partition leader epoch, which is
// outside the CRC. b must hold at least HeaderSize bytes.
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
}

// UpdateCRC recomputes the CRC of the whole batch b after an in-place edit.
func UpdateCRC(b []byte) {
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
}
