package records

import (
	"encoding/binary"
	"hash/crc32"
)

// KV is one record to encode with AppendBatch. A nil Key or Value is
// encoded as null (a nil Value is a tombstone in a compacted topic).
type KV struct {
	Key, Value []byte
}

// BatchSpec is the header of a batch built by AppendBatch.
type BatchSpec struct {
	BaseOffset    int64 // usually 0: the log assigns offsets on append
	Timestamp     int64 // every record's timestamp (CreateTime), in ms
	Attributes    int16 // codec bits must be 0: AppendBatch does not compress
	ProducerID    int64 // -1 for none
	ProducerEpoch int16 // -1 for none
	BaseSequence  int32 // -1 for none
}

var castagnoliTable = crc32.MakeTable(crc32.Castagnoli)

// AppendBatch appends an uncompressed magic-2 record batch holding recs to
// dst, with a correct length and CRC, and returns the extended slice. It is
// how the broker writes its own records (group metadata, committed offsets,
// transaction markers).
func AppendBatch(dst []byte, spec BatchSpec, recs []KV) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, uint64(spec.BaseOffset))
	dst = append(dst, 0, 0, 0, 0)                        // length, set below
	dst = binary.BigEndian.AppendUint32(dst, 0xffffffff) // partition leader epoch -1
	dst = append(dst, 2)                                 // magic
	dst = append(dst, 0, 0, 0, 0)                        // crc, set below
	dst = binary.BigEndian.AppendUint16(dst, uint16(spec.Attributes&^attrCodecMask))
	dst = binary.BigEndian.AppendUint32(dst, uint32(max(len(recs)-1, 0)))
	dst = binary.BigEndian.AppendUint64(dst, uint64(spec.Timestamp))
	dst = binary.BigEndian.AppendUint64(dst, uint64(spec.Timestamp))
	dst = binary.BigEndian.AppendUint64(dst, uint64(spec.ProducerID))
	dst = binary.BigEndian.AppendUint16(dst, uint16(spec.ProducerEpoch))
	dst = binary.BigEndian.AppendUint32(dst, uint32(spec.BaseSequence))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(recs)))
	var rec []byte
	for i, r := range recs {
		rec = rec[:0]
		rec = append(rec, 0)                     // attributes
		rec = binary.AppendVarint(rec, 0)        // timestamp delta
		rec = binary.AppendVarint(rec, int64(i)) // offset delta
		rec = appendNullable(rec, r.Key)
		rec = appendNullable(rec, r.Value)
		rec = binary.AppendUvarint(rec, 0) // no headers
		dst = binary.AppendVarint(dst, int64(len(rec)))
		dst = append(dst, rec...)
	}
	b := dst[start:]
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-lengthOverhead))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoliTable))
	return dst
}

func appendNullable(dst, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(v)))
	return append(dst, v...)
}
