package table

import (
	"bytes"
	"iter"
	"sync"
)

// scanChunk is how many entries a Memory scan copies out per read-lock
// acquisition, so a slow reader never holds the task's writes up for long.
const scanChunk = 128

// writeChunk is how many records Memory.WriteBatch applies per lock
// acquisition.
const writeChunk = 1024

// Memory is an in-memory, ordered Store: a skiplist behind a RWMutex. It is
// not persistent and has no checkpoint: after a restart it is restored from
// the whole changelog.
//
// The owning task writes; any goroutine may read through Query (or through
// the read methods, which are the same). Get returns the stored slice
// itself: stored values are immutable (an overwrite installs a new slice),
// so it stays valid and unchanged for as long as the caller keeps it.
//
// A scan copies up to 128 entries out under the read lock, releases it, and
// yields them; it then continues after the last key it yielded. It is
// therefore not a point-in-time snapshot: every key is yielded at most once
// and in order, with a value it had at some moment during the scan.
type Memory struct {
	mu struct {
		sync.RWMutex
		list    *skiplist // nil once closed
		version uint64    // bumped by every structural change
	}
}

var (
	_ Store        = (*Memory)(nil)
	_ BatchWriter  = (*Memory)(nil)
	_ Queryable    = (*Memory)(nil)
	_ RangeDeleter = (*Memory)(nil)
)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	m := &Memory{}
	m.mu.list = newSkiplist()
	return m
}

// Get implements ReadOnly. It is safe for concurrent use.
func (m *Memory) Get(key []byte) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.mu.list == nil {
		return nil, ErrClosed
	}
	n := m.mu.list.get(key)
	if n == nil {
		return nil, ErrNotFound
	}
	return n.value, nil
}

// Put implements Store.
func (m *Memory) Put(key, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.list == nil {
		return ErrClosed
	}
	m.mu.list.put(key, value)
	m.mu.version++
	return nil
}

// Delete implements Store.
func (m *Memory) Delete(key []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.list == nil {
		return ErrClosed
	}
	if m.mu.list.del(key) {
		m.mu.version++
	}
	return nil
}

// DeleteRange implements RangeDeleter. It unlinks the range from the
// skiplist's towers at once; counting what it removed walks the range.
func (m *Memory) DeleteRange(from, to []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.list == nil {
		return ErrClosed
	}
	if bytes.Compare(from, to) < 0 && m.mu.list.delRange(from, to) > 0 {
		m.mu.version++
	}
	return nil
}

// WriteBatch implements BatchWriter, taking the write lock once per 1024
// records.
func (m *Memory) WriteBatch(records iter.Seq2[[]byte, []byte]) (int, error) {
	n, inLock := 0, 0
	var err error
	records(func(k, v []byte) bool {
		if inLock == 0 {
			m.mu.Lock()
			if m.mu.list == nil {
				m.mu.Unlock()
				err = ErrClosed
				return false
			}
		}
		if v == nil {
			m.mu.list.del(k)
		} else {
			m.mu.list.put(k, v)
		}
		n++
		inLock++
		if inLock == writeChunk {
			m.mu.version++
			m.mu.Unlock()
			inLock = 0
		}
		return true
	})
	if inLock > 0 {
		m.mu.version++
		m.mu.Unlock()
	}
	return n, err
}

// Flush implements Store; it has nothing to do.
func (m *Memory) Flush() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.mu.list == nil {
		return ErrClosed
	}
	return nil
}

// Close implements Store and drops the contents.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.list = nil
	return nil
}

// Len returns the number of keys, and 0 once closed.
func (m *Memory) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.mu.list == nil {
		return 0
	}
	return m.mu.list.len
}

// Query implements Queryable: a Memory is its own concurrent view.
func (m *Memory) Query() ReadOnly { return m }

// Range implements ReadOnly. It is safe for concurrent use.
func (m *Memory) Range(from, to []byte) *Iter[[]byte, []byte] {
	from, to = cloneBound(from), cloneBound(to)
	return NewIter(func(yield func(k, v []byte) bool) error {
		return m.scan(from, to, yield)
	})
}

// Prefix implements ReadOnly.
func (m *Memory) Prefix(p []byte) *Iter[[]byte, []byte] {
	return m.Range(bytes.Clone(p), PrefixEnd(p))
}

// All implements ReadOnly.
func (m *Memory) All() *Iter[[]byte, []byte] { return m.Range(nil, nil) }

// cloneBound copies a scan bound, keeping nil nil and empty empty.
func cloneBound(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// scan yields [from, to) in chunks; see the Memory doc for what it observes.
func (m *Memory) scan(from, to []byte, yield func(k, v []byte) bool) error {
	var (
		chunk   [scanChunk]node
		last    *node  // last node copied out, valid while version is unchanged
		version uint64 // version when last was read
		lastKey []byte // key of last (immutable, so aliasing it is safe)
		started bool
	)
	for {
		m.mu.RLock()
		if m.mu.list == nil {
			m.mu.RUnlock()
			return ErrClosed
		}
		var n *node
		switch {
		case !started:
			n = m.mu.list.findGE(from, nil)
		case m.mu.version == version:
			n = last.next[0]
		default:
			// The list changed while we were yielding: last may have been
			// unlinked, so find our place again by key.
			n = m.mu.list.findGE(lastKey, nil)
			if n != nil && bytes.Equal(n.key, lastKey) {
				n = n.next[0]
			}
		}
		started = true
		c := 0
		for ; n != nil && c < scanChunk; n = n.next[0] {
			if to != nil && bytes.Compare(n.key, to) >= 0 {
				n = nil
				break
			}
			chunk[c] = node{key: n.key, value: n.value}
			last = n
			c++
		}
		version = m.mu.version
		m.mu.RUnlock()
		for i := range c {
			if !yield(chunk[i].key, chunk[i].value) {
				return nil
			}
		}
		if c == 0 || n == nil {
			return nil
		}
		lastKey = chunk[c-1].key
	}
}
