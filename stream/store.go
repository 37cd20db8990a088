package stream

import (
	"bytes"
	"errors"
	"sync/atomic"

	"github.com/sluicehq/sluice/table"
)

// taskStore is a task's instance of a declared store: the bytes store
// (package table: pebble or memory), its query view, and its changelog.
type taskStore struct {
	def       *storeDef
	kv        table.Store
	query     table.ReadOnly // safe for other goroutines (interactive queries)
	persist   table.Persistent
	partition int32
	out       emitter

	// logEnd is the next offset of the store's changelog partition, as far
	// as acknowledged produces tell (-1: unknown). Checkpoints record it.
	logEnd atomic.Int64
}

func newTaskStore(def *storeDef, kv table.Store, p int32, out emitter) *taskStore {
	st := &taskStore{def: def, kv: kv, partition: p, out: out}
	st.query, _ = table.QueryView(kv)
	if st.query == nil {
		st.query = kv
	}
	st.persist, _ = kv.(table.Persistent)
	st.logEnd.Store(-1)
	return st
}

// get returns the value of k; the slice is valid until the next call on the
// store.
func (s *taskStore) get(k []byte) ([]byte, bool, error) {
	v, err := s.kv.Get(k)
	if errors.Is(err, table.ErrNotFound) {
		return nil, false, nil
	}
	return v, err == nil, err
}

func (s *taskStore) put(k, v []byte) error {
	if err := s.kv.Put(k, v); err != nil {
		return err
	}
	if s.def.changelog {
		// Callers reuse their key buffers; the changelog record outlives
		// the call.
		s.out.changelog(s, bytes.Clone(k), v)
	}
	return nil
}

func (s *taskStore) delete(k []byte) error {
	if err := s.kv.Delete(k); err != nil {
		return err
	}
	if s.def.changelog {
		s.out.changelog(s, bytes.Clone(k), nil)
	}
	return nil
}

// scan calls fn for the entries in [from, to) (nil: open) in key order.
func (s *taskStore) scan(r table.ReadOnly, from, to []byte, fn func(k, v []byte) bool) error {
	it := r.Range(from, to)
	for k, v := range it.All() {
		if !fn(k, v) {
			break
		}
	}
	return it.Err()
}
