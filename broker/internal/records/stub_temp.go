package records

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// TEMPORARY stand-in until the real package lands from the log branch.

const HeaderSize = 61

var (
	ErrCorrupt       = errors.New("broker/records: corrupt batch")
	ErrInvalidRecord = errors.New("broker/records: invalid record")
)

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

func (h BatchHeader) IsTransactional() bool { return h.Attributes&0x10 != 0 }
func (h BatchHeader) IsControl() bool       { return h.Attributes&0x20 != 0 }
func (h BatchHeader) LastOffset() int64     { return h.BaseOffset + int64(h.LastOffsetDelta) }
func (h BatchHeader) TotalSize() int        { return 12 + int(h.Length) }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func ParseHeader(b []byte) (BatchHeader, error) {
	if len(b) < HeaderSize {
		return BatchHeader{}, ErrCorrupt
	}
	be := binary.BigEndian
	return BatchHeader{
		BaseOffset:           int64(be.Uint64(b[0:])),
		Length:               int32(be.Uint32(b[8:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[12:])),
		Magic:                int8(b[16]),
		CRC:                  be.Uint32(b[17:]),
		Attributes:           int16(be.Uint16(b[21:])),
		LastOffsetDelta:      int32(be.Uint32(b[23:])),
		FirstTimestamp:       int64(be.Uint64(b[27:])),
		MaxTimestamp:         int64(be.Uint64(b[35:])),
		ProducerID:           int64(be.Uint64(b[43:])),
		ProducerEpoch:        int16(be.Uint16(b[51:])),
		BaseSequence:         int32(be.Uint32(b[53:])),
		NumRecords:           int32(be.Uint32(b[57:])),
	}, nil
}

func Validate(b []byte, _ int) (BatchHeader, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if h.TotalSize() != len(b) || h.Magic != 2 || crc32.Checksum(b[21:], castagnoli) != h.CRC {
		return h, ErrCorrupt
	}
	return h, nil
}
