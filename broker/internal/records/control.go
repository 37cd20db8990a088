package records

import "encoding/binary"

// Batch attribute bits of transactions (see BatchHeader).
const (
	// AttrTransactional marks a batch written inside a transaction.
	AttrTransactional int16 = attrTransactional
	// AttrControl marks a control batch (a transaction marker).
	AttrControl int16 = attrControl
)

// Control record types: the Type of a control record's key
// (kmsg.ControlRecordKey).
const (
	ControlAbort  int16 = 0
	ControlCommit int16 = 1
)

// AppendMarker appends a transaction marker to dst: a transactional control
// batch of one record whose key is ControlRecordKey{Version 0, Type} (ABORT
// or COMMIT) and whose value is EndTxnMarker{Version 0, CoordinatorEpoch},
// as Kafka's transaction coordinator writes it. The batch carries the
// producer's id and epoch and no sequence.
//
//	key   = int16 version (0) | int16 type (0 abort, 1 commit)
//	value = int16 version (0) | int32 coordinator epoch
func AppendMarker(dst []byte, pid int64, epoch int16, commit bool, coordinatorEpoch int32, ts int64) []byte {
	typ := ControlAbort
	if commit {
		typ = ControlCommit
	}
	key := binary.BigEndian.AppendUint16(make([]byte, 0, 4), 0)
	key = binary.BigEndian.AppendUint16(key, uint16(typ))
	val := binary.BigEndian.AppendUint16(make([]byte, 0, 6), 0)
	val = binary.BigEndian.AppendUint32(val, uint32(coordinatorEpoch))
	return AppendBatch(dst, BatchSpec{
		Timestamp: ts, Attributes: AttrTransactional | AttrControl,
		ProducerID: pid, ProducerEpoch: epoch, BaseSequence: -1,
	}, []KV{{Key: key, Value: val}})
}

// ControlType returns the type of the marker in control batch b (which must
// be a whole batch): ControlAbort, ControlCommit or another control type
// (ok is false when b holds no parsable control record).
func ControlType(b []byte) (typ int16, ok bool) {
	err := Records(b, nil, 1<<20, func(r Record) bool {
		if !r.KeyNull && len(r.Key) >= 4 {
			typ, ok = int16(binary.BigEndian.Uint16(r.Key[2:])), true
		}
		return false
	})
	return typ, ok && err == nil
}
