package stream

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/table"
)

// taskStore is a task's instance of a declared store: the bytes store
// (package table: pebble or memory), its query view, and its changelog.
type taskStore struct {
	def       *storeDef
	kv        table.Store    // the top of the stack: cache, changelog, store
	uncached  table.Store    // the stack without the cache: changelog, store
	base      table.Store    // the store itself (pebble or memory)
	query     table.ReadOnly // safe for other goroutines (interactive queries)
	persist   table.Persistent
	partition int32
	out       emitter
	cached    bool

	// forward, set by the processor owning a cached store, receives the
	// entries leaving the cache (at eviction and commit) to send them
	// downstream: key, new value (nil: deleted) and old value (nil: none).
	forward func(key, value, old []byte) error
	// tsOf remembers the record timestamp of each dirty cached key, so an
	// entry leaving the cache goes downstream with the time of the update
	// that made it (as Kafka Streams' cache keeps the record context).
	tsOf map[string]int64

	// logEnd is the next offset of the store's changelog partition, as far
	// as acknowledged produces tell (-1: unknown). Checkpoints record it.
	logEnd atomic.Int64
}

// newTaskStore stacks a task's store: base, then the changelog (if
// logged), then the record cache (if the operator caches and cache is not
// nil), as package table describes.
func newTaskStore(def *storeDef, base table.Store, p int32, out emitter, cache *table.Cache) *taskStore {
	st := &taskStore{def: def, base: base, partition: p, out: out}
	layer := base
	if def.changelog {
		layer = table.NewLogged(layer, table.ChangelogFunc(func(k, v []byte) error {
			if v != nil {
				v = bytes.Clone(v)
			}
			out.changelog(st, bytes.Clone(k), v)
			return nil
		}))
	}
	st.uncached = layer
	if def.cached && cache != nil && cache.Max() > 0 {
		st.cached = true
		// Old values cost a store read per forwarded entry: windowed
		// tables never use them (they are not regrouped or filtered).
		var opts []table.CachedOpt
		if !def.windowed {
			opts = append(opts, table.SendOldValues())
		}
		layer = table.NewCached(layer, cache, func(k, v, old []byte) error {
			if st.forward == nil {
				return nil
			}
			return st.forward(k, v, old)
		}, opts...)
	}
	st.kv = layer
	st.query, _ = table.QueryView(base)
	if st.query == nil {
		st.query = base
	}
	if def.valueTimestamps {
		st.query = valueView{st.query}
	}
	st.persist, _ = base.(table.Persistent)
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

func (s *taskStore) put(k, v []byte) error { return s.kv.Put(k, v) }

// putAt is put by a processor whose updates are forwarded from the cache:
// it records the update's timestamp for the forward.
func (s *taskStore) putAt(k, v []byte, ts int64) error {
	if s.cached {
		if s.tsOf == nil {
			s.tsOf = map[string]int64{}
		}
		s.tsOf[string(k)] = ts
	}
	return s.kv.Put(k, v)
}

func (s *taskStore) delete(k []byte) error { return s.kv.Delete(k) }

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

// emitChanges connects a cached store to its processor's children: entries
// leaving the cache become Change records (at the task's stream time), and
// commits flush the cache. For an uncached store it returns nil and the
// processor forwards each update itself.
func emitChanges[K, V any](t *task, st *taskStore, ks serde.Serde[K], vs serde.Serde[V], name string, next procFn[K, Change[V]]) func(r rec[K, Change[V]]) {
	if !st.cached {
		return next
	}
	st.forward = func(kb, vb, ob []byte) error {
		k, err := ks.Decode(kb)
		if err != nil {
			return fmt.Errorf("store %s: decode key: %w", st.def.name, err)
		}
		var c Change[V]
		if vb != nil {
			if c.New, err = vs.Decode(vb); err != nil {
				return fmt.Errorf("store %s: decode value: %w", st.def.name, err)
			}
			c.HasNew = true
		}
		if ob != nil {
			if c.Old, err = vs.Decode(ob); err != nil {
				return fmt.Errorf("store %s: decode old value: %w", st.def.name, err)
			}
			c.HasOld = true
		}
		ts, ok := st.tsOf[string(kb)]
		if ok {
			delete(st.tsOf, string(kb))
		} else {
			ts = max(t.streamTime, 0)
		}
		prev := t.procName
		t.procName = name
		next(rec[K, Change[V]]{key: k, value: c, ts: ts})
		t.procName = prev
		return nil
	}
	t.flushers = append(t.flushers, st.kv.Flush)
	return func(rec[K, Change[V]]) {} // forwarding happens at flush
}

// readValue encodes k into *kbuf and returns the store's current value for
// it, decoded. ok is false after a failure (reported to the task).
func readValue[K, V any](t *task, st *taskStore, ks serde.Serde[K], vs serde.Serde[V], kbuf *[]byte, k K) (v V, found, ok bool) {
	var err error
	if *kbuf, err = ks.AppendEncode((*kbuf)[:0], k); err != nil {
		t.fail(fmt.Errorf("serialize key: %w", err))
		return v, false, false
	}
	b, found, err := st.get(*kbuf)
	if err != nil {
		t.fail(fmt.Errorf("store %s: %w", st.def.name, err))
		return v, false, false
	}
	if found {
		if v, err = vs.Decode(b); err != nil {
			t.fail(fmt.Errorf("store %s: decode: %w", st.def.name, err))
			return v, false, false
		}
	}
	return v, found, true
}

// writeValue encodes v and stores it under key (an update at time ts).
func writeValue[V any](t *task, st *taskStore, vs serde.Serde[V], key []byte, v V, ts int64) bool {
	b, err := vs.AppendEncode(nil, v)
	if err != nil {
		t.fail(fmt.Errorf("serialize value for store %s: %w", st.def.name, err))
		return false
	}
	if err := st.putAt(key, b, ts); err != nil {
		t.fail(fmt.Errorf("store %s: %w", st.def.name, err))
		return false
	}
	return true
}
