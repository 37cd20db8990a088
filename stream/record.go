package stream

import "time"

// Header is a record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is a record as the Processor API sees it: key, value, event time
// and headers.
type Record[K, V any] struct {
	Key       K
	Value     V
	Timestamp time.Time
	Headers   []Header
}

// rec is what flows between processors of a task: a record without the
// allocation of a time.Time per hop.
type rec[K, V any] struct {
	key     K
	value   V
	ts      int64 // event time, ms
	headers []Header
	null    bool // the value is null (a tombstone from a table)
}

// Change is the update a KTable emits for a key: the new value and, where
// the table knows it, the old one. A delete has no new value.
type Change[V any] struct {
	New, Old       V
	HasNew, HasOld bool
}
