package table

import (
	"bytes"
	"errors"
	"iter"
)

// Errors returned by the stores of this package. Match them with errors.Is.
var (
	// ErrNotFound is returned by Get when the key has no value. It is an
	// answer, not a failure: callers branch on it.
	ErrNotFound = errors.New("table: key not found")

	// ErrClosed is returned by every method of a store after Close, and by
	// reads of a query view whose store was closed. The store must be
	// reopened; retrying does not help.
	ErrClosed = errors.New("table: store closed")

	// ErrCorruption marks local state that cannot be trusted (a checkpoint
	// file that fails its checksum, for instance). Stores recover from it by
	// wiping the local copy and restoring from the changelog; it reaches
	// callers only from ReadCheckpoint.
	ErrCorruption = errors.New("table: corruption")

	// ErrBadKey is returned by the writes of a Segmented store given a key
	// that its Layout cannot read (too short, or a wrong length prefix). It
	// is a bug of the caller; retrying does not help.
	ErrBadKey = errors.New("table: key does not fit the store's layout")
)

// ReadOnly is the read half of a key-value store.
//
// Keys are compared as byte strings (bytes.Compare); the empty key is a
// valid key and sorts first. A nil key and an empty key are the same key.
//
// Ownership: arguments are not retained. Slices returned by Get, and keys
// and values yielded by scans, must not be modified. A slice from Get stays
// valid until the owning task's next call to a method of the same store (a
// Pebble store reuses one buffer for Get; a query view's Get returns a
// fresh copy); a key or value yielded by a scan is valid only until the
// loop body returns. Copy what must live longer.
//
// Concurrency: the ReadOnly views returned by QueryView are safe for
// concurrent use with each other and with the owning task's writes (see the
// package documentation for what they observe). The read methods of a Store
// itself are for the owning task only.
type ReadOnly interface {
	// Get returns the value of key, or ErrNotFound when key has none. Other
	// errors are I/O errors or ErrClosed.
	Get(key []byte) ([]byte, error)

	// Range scans the keys k with from <= k < to in ascending order: from is
	// inclusive and to is exclusive. A nil from starts at the first key; a
	// nil to means no upper bound (a non-nil empty to is an empty range).
	Range(from, to []byte) *Iter[[]byte, []byte]

	// Prefix scans, in ascending order, the keys that start with p. An empty
	// p scans every key.
	Prefix(p []byte) *Iter[[]byte, []byte]

	// All scans every key in ascending order.
	All() *Iter[[]byte, []byte]
}

// Store is a bytes-level key-value store owned by one stream task: one
// goroutine at a time calls its methods (see ReadOnly for the concurrent
// query view).
//
// Values are byte strings; an empty value is a value, distinct from no
// value (a nil value passed to Put stores an empty value). Deletion is
// Delete, never Put(k, nil).
//
// Writes made during a scan of the same store are allowed; the scan then
// may or may not observe them, but never yields a key twice or out of order.
type Store interface {
	ReadOnly

	// Put sets the value of key. It copies key and value.
	Put(key, value []byte) error

	// Delete removes key; deleting an absent key is not an error.
	Delete(key []byte) error

	// Flush makes every write so far durable in the store's own medium
	// (for pebble: its memtable written to an sstable). It is a no-op for
	// in-memory stores. Wrappers flush what they buffer first.
	Flush() error

	// Close releases the store. Writes not yet flushed may be lost: the
	// changelog is the source of truth. Close is idempotent; after it every
	// method returns ErrClosed.
	Close() error
}

// BatchWriter is an optional capability of a Store: it applies many writes
// at once, much faster than one Put each. Restore uses it when present and
// falls back to Put and Delete otherwise.
type BatchWriter interface {
	// WriteBatch applies records in order: a nil value deletes the key, any
	// other value (including an empty non-nil one) puts it. It returns how
	// many records it applied. Records are not retained. On error, a prefix
	// of the records may have been applied.
	WriteBatch(records iter.Seq2[[]byte, []byte]) (int, error)
}

// RangeDeleter is an optional capability of a Store: it deletes every key
// in [from, to) at once, much faster than one Delete each (pebble writes one
// range tombstone). from and to must be non-nil; from >= to deletes
// nothing. Segmented stores use it to drop expired segments.
type RangeDeleter interface {
	DeleteRange(from, to []byte) error
}

// Queryable is an optional capability of a Store: a read-only view that
// other goroutines (an HTTP handler, say) may use while the task writes.
// The Memory and Pebble stores implement it; use QueryView to find it
// through wrappers.
type Queryable interface {
	Query() ReadOnly
}

// Wrapper is implemented by stores that decorate another store (Logged,
// Cached). Unwrap returns the decorated store.
type Wrapper interface {
	Unwrap() Store
}

// Innermost follows Unwrap from s to the store that holds the data.
func Innermost(s Store) Store {
	for {
		w, ok := s.(Wrapper)
		if !ok {
			return s
		}
		s = w.Unwrap()
	}
}

// QueryView returns the concurrent read-only view of the store under s's
// wrappers, and false if that store has none. The view reads the underlying
// store, not a record cache: it sees writes once the cache has flushed or
// evicted them (at the latest at the next commit).
func QueryView(s Store) (ReadOnly, bool) {
	for {
		if q, ok := s.(Queryable); ok {
			return q.Query(), true
		}
		w, ok := s.(Wrapper)
		if !ok {
			return nil, false
		}
		s = w.Unwrap()
	}
}

// PrefixEnd returns the smallest key greater than every key that starts
// with p, or nil when there is none (p empty or all 0xff bytes). It is the
// exclusive upper bound of a prefix scan: Prefix(p) is Range(p, PrefixEnd(p))
// when PrefixEnd(p) is non-nil.
func PrefixEnd(p []byte) []byte {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] != 0xff {
			end := make([]byte, i+1)
			copy(end, p)
			end[i]++
			return end
		}
	}
	return nil
}

// inRange reports whether k is within [from, to), with a nil to unbounded.
func inRange(k, from, to []byte) bool {
	return bytes.Compare(k, from) >= 0 && (to == nil || bytes.Compare(k, to) < 0)
}

// Iter is one ordered scan: range over All, then check Err.
//
//	it := st.Range(from, to)
//	for k, v := range it.All() {
//		...
//	}
//	if err := it.Err(); err != nil {
//		...
//	}
//
// Nothing is read before All is ranged over, and breaking out of the loop
// releases what the scan holds (pebble iterators, snapshots). Ranging over
// All again rescans from the start. An Iter is for one goroutine.
type Iter[K, V any] struct {
	run func(yield func(K, V) bool) error
	err error
}

// NewIter returns an Iter whose All runs run. run yields entries in order,
// stops when yield returns false, and returns the error that ended the scan
// early (nil on success or when yield stopped it). Store implementations
// outside this package use it.
func NewIter[K, V any](run func(yield func(K, V) bool) error) *Iter[K, V] {
	return &Iter[K, V]{run: run}
}

// errIter returns an Iter that yields nothing and reports err.
func errIter[K, V any](err error) *Iter[K, V] {
	return &Iter[K, V]{run: func(func(K, V) bool) error { return err }}
}

// All returns the scan as an iterator for a range-over-func loop.
func (it *Iter[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		it.err = it.run(yield)
	}
}

// Err returns the error that ended the last scan early, or nil. Check it
// after the loop: a scan that failed looks like a scan that ended.
func (it *Iter[K, V]) Err() error { return it.err }

// KeyRange is the half-open key range [From, To).
type KeyRange struct{ From, To []byte }

// MultiRanger is an optional capability of a ReadOnly: Ranges scans
// several ranges, ascending and disjoint, in order, through one iterator
// (for pebble, one iterator and a seek per range instead of an iterator per
// range). yield's slices are valid during the call only.
type MultiRanger interface {
	Ranges(rs []KeyRange, yield func(k, v []byte) bool) error
}

// ScanRanges scans rs (ascending, disjoint) in order through r, with one
// iterator when r is a MultiRanger.
func ScanRanges(r ReadOnly, rs []KeyRange, yield func(k, v []byte) bool) error {
	if m, ok := r.(MultiRanger); ok {
		return m.Ranges(rs, yield)
	}
	for _, kr := range rs {
		it := r.Range(kr.From, kr.To)
		stopped := false
		for k, v := range it.All() {
			if !yield(k, v) {
				stopped = true
				break
			}
		}
		if err := it.Err(); err != nil || stopped {
			return err
		}
	}
	return nil
}
