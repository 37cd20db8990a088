package stream

import (
	"bytes"
	"sort"
	"sync"
)

// kvStore is the bytes-level store a task writes through. Implementations
// come from package table (pebble, memory); memStore below serves until a
// store is plugged in.
type kvStore interface {
	Get(key []byte) (value []byte, ok bool, err error)
	Put(key, value []byte) error
	Delete(key []byte) error
	// Scan calls fn for keys in [from, to) in order (nil bounds are open).
	Scan(from, to []byte, fn func(k, v []byte) bool) error
	Close() error
}

// taskStore is a task's instance of a declared store: the store itself and
// its changelog.
type taskStore struct {
	def       *storeDef
	kv        kvStore
	partition int32
	out       emitter
}

func (s *taskStore) get(k []byte) ([]byte, bool, error) { return s.kv.Get(k) }

func (s *taskStore) put(k, v []byte) error {
	if err := s.kv.Put(k, v); err != nil {
		return err
	}
	if s.def.changelog {
		// Callers reuse their key buffers; the changelog record outlives
		// the call.
		s.out.changelog(s.def.name, s.partition, bytes.Clone(k), v)
	}
	return nil
}

func (s *taskStore) delete(k []byte) error {
	if err := s.kv.Delete(k); err != nil {
		return err
	}
	if s.def.changelog {
		s.out.changelog(s.def.name, s.partition, bytes.Clone(k), nil)
	}
	return nil
}

// memStore is a sorted in-memory store, safe for concurrent readers.
type memStore struct {
	mu   sync.RWMutex
	keys [][]byte
	vals map[string][]byte
}

func newMemStore() *memStore { return &memStore{vals: map[string][]byte{}} }

func (m *memStore) Get(k []byte) ([]byte, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok := m.vals[string(k)]
	return v, ok, nil
}

func (m *memStore) Put(k, v []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.vals[string(k)]; !ok {
		i := sort.Search(len(m.keys), func(i int) bool { return bytes.Compare(m.keys[i], k) >= 0 })
		m.keys = append(m.keys, nil)
		copy(m.keys[i+1:], m.keys[i:])
		m.keys[i] = bytes.Clone(k)
	}
	m.vals[string(k)] = bytes.Clone(v)
	return nil
}

func (m *memStore) Delete(k []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.vals[string(k)]; !ok {
		return nil
	}
	delete(m.vals, string(k))
	i := sort.Search(len(m.keys), func(i int) bool { return bytes.Compare(m.keys[i], k) >= 0 })
	m.keys = append(m.keys[:i], m.keys[i+1:]...)
	return nil
}

func (m *memStore) Scan(from, to []byte, fn func(k, v []byte) bool) error {
	m.mu.RLock()
	i := 0
	if from != nil {
		i = sort.Search(len(m.keys), func(i int) bool { return bytes.Compare(m.keys[i], from) >= 0 })
	}
	type kv struct{ k, v []byte }
	var out []kv
	for ; i < len(m.keys); i++ {
		k := m.keys[i]
		if to != nil && bytes.Compare(k, to) >= 0 {
			break
		}
		out = append(out, kv{k, m.vals[string(k)]})
	}
	m.mu.RUnlock()
	for _, e := range out {
		if !fn(e.k, e.v) {
			break
		}
	}
	return nil
}

func (m *memStore) Close() error { return nil }
