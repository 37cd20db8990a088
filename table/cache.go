package table

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
)

// DefaultCacheBytes is the size of a record cache when the runtime has no
// other setting: 10 MiB, the default of Kafka Streams'
// cache.max.bytes.buffering (statestore.cache.max.bytes).
const DefaultCacheBytes = 10 << 20

// entryOverhead approximates the bytes an entry costs beyond its key and
// value (the entry struct, the map slot and the key string).
const entryOverhead = 112

// Cache is a record cache: a byte budget shared by the Cached stores of
// one task (or of all the tasks of one goroutine). It is not safe for
// concurrent use: it belongs to the goroutine that runs those tasks.
//
// Semantics follow Kafka Streams' caching: repeated writes of a key between
// commits are absorbed; downstream (the FlushFunc, and with it the
// changelog when the store below is Logged) sees only the latest value of
// each key, when its entry is evicted or flushed. Reads are served from
// the cache first.
type Cache struct {
	max    int64
	used   int64
	stores []*Cached
}

// NewCache returns a cache of maxBytes. A maxBytes of 0 (or less) disables
// caching, as cache.max.bytes.buffering=0 does in Kafka Streams: every
// write goes through and is forwarded at once.
func NewCache(maxBytes int64) *Cache {
	return &Cache{max: max(maxBytes, 0)}
}

// Size returns the bytes the cache holds now (approximate: see
// entryOverhead). It is at most the budget after every write returns.
func (c *Cache) Size() int64 { return c.used }

// Max returns the budget.
func (c *Cache) Max() int64 { return c.max }

// evictFor evicts entries until the cache fits, preferring the least
// recently used entries of s (the store being written, as Kafka Streams
// does) and then those of the other stores, in creation order.
func (c *Cache) evictFor(s *Cached) error {
	for c.used > c.max {
		victim := s
		if victim.head == nil {
			victim = nil
			for _, o := range c.stores {
				if o.head != nil {
					victim = o
					break
				}
			}
			if victim == nil {
				return nil
			}
		}
		if err := victim.evict(victim.head); err != nil {
			return err
		}
	}
	return nil
}

// FlushFunc receives an entry that leaves the cache dirty, after it was
// written to the store below: key, its latest value (nil if the latest
// write was a Delete), and, when the Cached store was created with
// SendOldValues, the value the store held before (nil if none). The slices
// are valid only during the call. The runtime forwards the record to the
// next processor. It may write to other Cached stores (or this one); an
// error fails the write or Flush that caused the eviction.
type FlushFunc func(key, value, old []byte) error

// CachedOpt configures NewCached.
type CachedOpt func(*Cached)

// SendOldValues makes the Cached store read the store's previous value of a
// key before writing an evicted or flushed entry, and pass it to the
// FlushFunc (what KTable aggregations with a subtractor need). It costs one
// read per forwarded entry.
func SendOldValues() CachedOpt { return func(s *Cached) { s.oldValues = true } }

// entry is a cached key. It is in exactly one store's LRU list and map
// while cached.
type entry struct {
	key        []byte
	value      []byte
	dirty      bool // written since the last flush to the store below
	deleted    bool // the latest write was a Delete (only while dirty)
	hasTS      bool // ts was set by PutAt since the entry was last written below
	ts         int64
	prev, next *entry
}

func (e *entry) size() int64 { return int64(len(e.key)+cap(e.value)) + entryOverhead }

// Cached is a Store that caches another: writes stay in the cache (dirty)
// until they are evicted or flushed; then they are written to the store
// below and passed to the FlushFunc, oldest (least recently written or
// read) first. Reads look in the cache first; Get caches what it reads
// from below (clean entries, dropped silently when evicted). Scans merge
// dirty entries with the store below.
//
// Like every Store it belongs to one task; QueryView reads the store below,
// so concurrent readers see entries once they are flushed or evicted.
type Cached struct {
	c         *Cache
	next      Store
	onFlush   FlushFunc
	oldValues bool

	m          map[string]*entry
	head, tail *entry // LRU list: head is the least recently used
	scans      int    // scans in progress; values are not reused while > 0
	flushing   []*entry
	closed     bool

	flushTS    int64 // the flushing entry's PutAt timestamp, during onFlush
	flushHasTS bool
}

var (
	_ Store   = (*Cached)(nil)
	_ Wrapper = (*Cached)(nil)
)

// NewCached returns a store that caches next in c's budget and passes
// entries leaving the cache to onFlush (which may be nil).
func NewCached(next Store, c *Cache, onFlush FlushFunc, opts ...CachedOpt) *Cached {
	s := &Cached{c: c, next: next, onFlush: onFlush, m: map[string]*entry{}}
	for _, o := range opts {
		o(s)
	}
	c.stores = append(c.stores, s)
	return s
}

// Unwrap implements Wrapper.
func (s *Cached) Unwrap() Store { return s.next }

// Dirty returns the number of dirty entries.
func (s *Cached) Dirty() int {
	n := 0
	for e := s.head; e != nil; e = e.next {
		if e.dirty {
			n++
		}
	}
	return n
}

func (s *Cached) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (s *Cached) pushBack(e *entry) {
	e.prev = s.tail
	if s.tail != nil {
		s.tail.next = e
	} else {
		s.head = e
	}
	s.tail = e
}

func (s *Cached) touch(e *entry) {
	if s.tail != e {
		s.unlink(e)
		s.pushBack(e)
	}
}

// remove drops e from the cache without writing it.
func (s *Cached) remove(e *entry) {
	s.unlink(e)
	delete(s.m, string(e.key))
	s.c.used -= e.size()
}

// evict removes e and, if it is dirty, writes it below and forwards it.
// The entry is out of the cache before anything is called, so a FlushFunc
// that writes to the cache sees a consistent state.
func (s *Cached) evict(e *entry) error {
	s.remove(e)
	if !e.dirty {
		return nil
	}
	e.dirty = false
	return s.write(e)
}

// write writes a dirty entry to the store below and forwards it.
func (s *Cached) write(e *entry) error {
	var old []byte
	if s.oldValues {
		v, err := s.next.Get(e.key)
		switch {
		case err == nil:
			old = bytes.Clone(v)
		case !errors.Is(err, ErrNotFound):
			return err
		}
	}
	var value []byte
	if e.deleted {
		if err := s.next.Delete(e.key); err != nil {
			return err
		}
	} else {
		value = e.value
		if value == nil {
			value = emptyValue
		}
		if err := s.next.Put(e.key, value); err != nil {
			return err
		}
	}
	// The entry's timestamp goes with this write: a later write gives it
	// a new one (or none).
	s.flushTS, s.flushHasTS = e.ts, e.hasTS
	e.hasTS = false
	if s.onFlush != nil {
		err := s.onFlush(e.key, value, old)
		s.flushHasTS = false
		if err != nil {
			return fmt.Errorf("table: cache flush: %w", err)
		}
	}
	return nil
}

// set records a write of key in the cache.
func (s *Cached) set(key, value []byte, deleted bool, ts int64, hasTS bool) error {
	if s.closed {
		return ErrClosed
	}
	e := s.m[string(key)]
	if e == nil {
		e = &entry{key: bytes.Clone(key)}
		if e.key == nil {
			e.key = emptyValue
		}
		s.m[string(e.key)] = e
		s.pushBack(e)
	} else {
		s.c.used -= e.size()
		s.touch(e)
	}
	if deleted {
		e.value = nil
	} else if s.scans > 0 || cap(e.value) < len(value) {
		// A scan may hold the old slice: leave it as it is.
		e.value = append(make([]byte, 0, len(value)), value...)
	} else {
		e.value = append(e.value[:0], value...)
	}
	if !deleted && e.value == nil {
		e.value = emptyValue // zero capacity: never written into
	}
	e.dirty, e.deleted = true, deleted
	if hasTS {
		e.ts, e.hasTS = ts, true
	}
	s.c.used += e.size()
	return s.c.evictFor(s)
}

// Put implements Store.
func (s *Cached) Put(key, value []byte) error { return s.set(key, value, false, 0, false) }

// PutAt is Put remembering ts (a record timestamp) with the entry: a
// FlushFunc sees it through FlushingTimestamp when the entry leaves the
// cache. Writes without a timestamp keep the last one given.
func (s *Cached) PutAt(key, value []byte, ts int64) error { return s.set(key, value, false, ts, true) }

// FlushingTimestamp returns, during a FlushFunc call, the timestamp the
// entry being flushed was last given by PutAt (false if none).
func (s *Cached) FlushingTimestamp() (int64, bool) { return s.flushTS, s.flushHasTS }

// Delete implements Store: the cache keeps a dirty tombstone until it is
// flushed, hiding the key in the store below.
func (s *Cached) Delete(key []byte) error { return s.set(key, nil, true, 0, false) }

// Get implements ReadOnly.
func (s *Cached) Get(key []byte) ([]byte, error) {
	if s.closed {
		return nil, ErrClosed
	}
	if e := s.m[string(key)]; e != nil {
		s.touch(e)
		if e.deleted {
			return nil, ErrNotFound
		}
		return e.value, nil
	}
	v, err := s.next.Get(key)
	if err != nil || s.c.max == 0 {
		return v, err
	}
	e := &entry{key: bytes.Clone(key), value: bytes.Clone(v)}
	if e.key == nil {
		e.key = emptyValue
	}
	if e.value == nil {
		e.value = emptyValue
	}
	s.m[string(e.key)] = e
	s.pushBack(e)
	s.c.used += e.size()
	// Evicting clean entries writes nothing, but over budget the cache may
	// have to push dirty ones out: reads can forward records downstream,
	// as in Kafka Streams.
	return e.value, s.c.evictFor(s)
}

// Flush implements Store: it writes and forwards every dirty entry, least
// recently used first, then flushes the store below. Entries stay cached,
// clean (tombstones are dropped).
func (s *Cached) Flush() error {
	if s.closed {
		return ErrClosed
	}
	s.flushing = s.flushing[:0]
	for e := s.head; e != nil; e = e.next {
		if e.dirty {
			s.flushing = append(s.flushing, e)
		}
	}
	// A FlushFunc may write to this store: entries it dirties again after
	// we passed them wait for the next Flush; entries it evicts are written
	// by the eviction, and are no longer dirty when we get to them.
	for i, e := range s.flushing {
		s.flushing[i] = nil
		if !e.dirty {
			continue
		}
		e.dirty = false
		if e.deleted {
			s.remove(e)
		}
		if err := s.write(e); err != nil {
			return err
		}
	}
	return s.next.Flush()
}

// Close implements Store: it drops the cache without flushing it and
// closes the store below.
func (s *Cached) Close() error {
	if s.closed {
		return nil
	}
	for e := s.head; e != nil; e = e.next {
		s.c.used -= e.size()
	}
	s.m, s.head, s.tail, s.closed = nil, nil, nil, true
	s.c.stores = slices.DeleteFunc(s.c.stores, func(o *Cached) bool { return o == s })
	return s.next.Close()
}

// Range implements ReadOnly. It collects and sorts the dirty entries in
// range when the scan starts (O(cached entries)), then merges them with a
// scan of the store below.
func (s *Cached) Range(from, to []byte) *Iter[[]byte, []byte] {
	from, to = cloneBound(from), cloneBound(to)
	return NewIter(func(yield func(k, v []byte) bool) error {
		return s.scan(from, to, yield)
	})
}

// Prefix implements ReadOnly.
func (s *Cached) Prefix(p []byte) *Iter[[]byte, []byte] {
	return s.Range(bytes.Clone(p), PrefixEnd(p))
}

// All implements ReadOnly.
func (s *Cached) All() *Iter[[]byte, []byte] { return s.Range(nil, nil) }

type cachedKV struct {
	key, value []byte
	deleted    bool
}

// dirtyIn returns the dirty entries in [from, to), sorted by key.
func (s *Cached) dirtyIn(from, to []byte) []cachedKV {
	var dirty []cachedKV
	for e := s.head; e != nil; e = e.next {
		if e.dirty && inRange(e.key, from, to) {
			dirty = append(dirty, cachedKV{e.key, e.value, e.deleted})
		}
	}
	slices.SortFunc(dirty, func(a, b cachedKV) int { return bytes.Compare(a.key, b.key) })
	return dirty
}

// DirtyRange calls fn, in key order, for each dirty entry with from <= key
// < to (a nil to: unbounded): the writes not yet passed to the store
// below. deleted reports a pending Delete (value nil then). It costs
// O(entries cached by s) plus sorting those in range. key and value are
// valid only during the call; fn must not write to s. It lets a store
// below with its own way of scanning (Segmented.Fetch) be read through
// the cache.
func (s *Cached) DirtyRange(from, to []byte, fn func(key, value []byte, deleted bool) bool) {
	if s.closed {
		return
	}
	for _, d := range s.dirtyIn(from, to) {
		v := d.value
		if !d.deleted && v == nil {
			v = emptyValue
		}
		if !fn(d.key, v, d.deleted) {
			return
		}
	}
}

func (s *Cached) scan(from, to []byte, yield func(k, v []byte) bool) error {
	if s.closed {
		return ErrClosed
	}
	dirty := s.dirtyIn(from, to)
	s.scans++
	defer func() { s.scans-- }()

	// emit yields a cached entry (skipping tombstones).
	emit := func(c cachedKV) bool {
		if c.deleted {
			return true
		}
		v := c.value
		if v == nil {
			v = emptyValue
		}
		return yield(c.key, v)
	}
	i, stopped := 0, false
	it := s.next.Range(from, to)
	for k, v := range it.All() {
		for i < len(dirty) && bytes.Compare(dirty[i].key, k) < 0 {
			if !emit(dirty[i]) {
				stopped = true
				break
			}
			i++
		}
		if stopped {
			return nil
		}
		if i < len(dirty) && bytes.Equal(dirty[i].key, k) {
			// The cache has a newer write of k.
			if !emit(dirty[i]) {
				return nil
			}
			i++
			continue
		}
		if !yield(k, v) {
			return nil
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	for ; i < len(dirty); i++ {
		if !emit(dirty[i]) {
			return nil
		}
	}
	return nil
}
