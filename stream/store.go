package stream

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/table"
	"github.com/sluicehq/sluice/window"
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

	// Window and session stores: seg lays records out by time segment
	// below the changelog (see table.Segmented), and data is the store
	// Restore writes to (seg, or base for other stores). cache is the
	// record cache layer (nil if uncached), read by fetches.
	seg   *table.Segmented
	data  table.Store
	cache *table.Cached

	// forward, set by the processor owning a cached store, receives the
	// entries leaving the cache (at eviction and commit) to send them
	// downstream: key, new value (nil: deleted) and old value (nil: none),
	// with the timestamp of the update that made the entry (putAt keeps it
	// in the cache entry), as Kafka Streams' cache keeps the record context.
	forward func(key, value, old []byte) error

	// logEnd is the next offset of the store's changelog partition, as far
	// as acknowledged produces tell (-1: unknown). Checkpoints record it.
	logEnd atomic.Int64
}

// newTaskStore stacks a task's store: base, then for window and session
// stores the segmented layout, then the changelog (if logged), then the
// record cache (if the operator caches and cache is not nil), as package
// table describes. It fails only if a persistent base cannot be read.
func newTaskStore(def *storeDef, base table.Store, p int32, out emitter, cache *table.Cache) (*taskStore, error) {
	st := &taskStore{def: def, base: base, data: base, partition: p, out: out}
	if l := def.layout(); l != 0 {
		seg, err := table.NewSegmented(base, l, def.retentionMs)
		if err != nil {
			return nil, fmt.Errorf("stream: store %s: %w", def.name, err)
		}
		st.seg, st.data = seg, seg
	}
	layer := st.data
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
		st.cache = table.NewCached(layer, cache, func(k, v, old []byte) error {
			if st.forward == nil {
				return nil
			}
			return st.forward(k, v, old)
		}, opts...)
		layer = st.cache
	}
	st.kv = layer
	st.query, _ = table.QueryView(st.data)
	if st.query == nil {
		st.query = st.data
	}
	if def.valueTimestamps {
		st.query = valueView{st.query}
	}
	st.persist, _ = base.(table.Persistent)
	st.logEnd.Store(-1)
	return st, nil
}

// layout returns the segmented layout of a window or session store, and
// 0 for other stores.
func (d *storeDef) layout() table.Layout {
	switch {
	case d.retentionMs <= 0:
		return 0
	case d.windowed:
		return table.WindowLayout
	case d.session:
		return table.SessionLayout
	}
	return 0
}

// expire drops the expired segments of a window or session store at stream
// time now. It runs at commit, after the cache was flushed, below the
// cache: expired records are past their grace period, so nothing updates
// them, and their removal is neither forwarded downstream nor logged (as in
// Kafka Streams, whose windowed changelogs are compact,delete topics;
// restoring drops what the changelog still holds of them).
func (s *taskStore) expire(now int64) error {
	if s.seg == nil || now < 0 {
		return nil
	}
	if err := s.seg.Expire(now); err != nil {
		return fmt.Errorf("store %s: %w", s.def.name, err)
	}
	return nil
}

// fetchWindows calls fn, in ascending start order, for the windows of a
// window store's key (the serialized record key) whose start is in
// [fromStart, toStart], reading through the record cache: a dirty cached
// window shadows the stored one, a cached delete hides it. It reads only
// the segments covering the range, plus the cache's dirty entries (see
// table.Cached.DirtyRange). v is valid only during the call; fn may write
// to the store.
func (s *taskStore) fetchWindows(key []byte, fromStart, toStart int64, fn func(start int64, v []byte) bool) error {
	if s.seg == nil || s.seg.Layout() != table.WindowLayout {
		return fmt.Errorf("stream: store %s is not a window store", s.def.name)
	}
	fromStart = max(fromStart, 0) // window starts are not negative
	if fromStart > toStart {
		return nil
	}
	var dirty []dirtyWindow
	if s.cache != nil {
		lw := s.seg.LowWater()
		lo := table.WindowLayout.External(nil, key, fromStart)
		hi := table.PrefixEnd(key)
		if toStart < math.MaxInt64 {
			hi = table.WindowLayout.External(nil, key, toStart+1)
		}
		s.cache.DirtyRange(lo, hi, func(k, v []byte, deleted bool) bool {
			if len(k) != len(key)+8 || !bytes.HasPrefix(k, key) {
				return true // another key that key is a prefix of
			}
			t := int64(binary.BigEndian.Uint64(k[len(key):]))
			if t >= fromStart && t <= toStart && t >= lw {
				dirty = append(dirty, dirtyWindow{win: window.Window{Start: t}, v: bytes.Clone(v), deleted: deleted})
			}
			return true
		})
	}
	return mergeFetch(s.seg.Fetch(key, fromStart, toStart), dirty,
		func(k []byte) (window.Window, bool) {
			return window.Window{Start: int64(binary.BigEndian.Uint64(k[len(k)-8:]))}, true
		},
		func(w window.Window, v []byte) bool { return fn(w.Start, v) })
}

// fetchSessions calls fn, in ascending order of end then start, for the
// sessions of a session store's key (the serialized record key) that end
// at or after earliestEnd and start at or before latestStart (those a
// record at t with gap g may join: earliestEnd t-g, latestStart t+g),
// reading through the record cache as fetchWindows does.
func (s *taskStore) fetchSessions(key []byte, earliestEnd, latestStart int64, fn func(win window.Window, v []byte) bool) error {
	if s.seg == nil || s.seg.Layout() != table.SessionLayout {
		return fmt.Errorf("stream: store %s is not a session store", s.def.name)
	}
	earliestEnd = max(earliestEnd, 0)
	var dirty []dirtyWindow
	if s.cache != nil {
		lw := s.seg.LowWater()
		pre := binary.BigEndian.AppendUint32(nil, uint32(len(key)))
		pre = append(pre, key...)
		lo := binary.BigEndian.AppendUint64(bytes.Clone(pre), uint64(earliestEnd))
		s.cache.DirtyRange(lo, table.PrefixEnd(pre), func(k, v []byte, deleted bool) bool {
			if len(k) != len(pre)+16 {
				return true
			}
			w := window.Window{End: int64(binary.BigEndian.Uint64(k[len(pre):])), Start: int64(binary.BigEndian.Uint64(k[len(pre)+8:]))}
			if w.End >= earliestEnd && w.Start <= latestStart && w.End >= lw {
				dirty = append(dirty, dirtyWindow{win: w, v: bytes.Clone(v), deleted: deleted})
			}
			return true
		})
	}
	return mergeFetch(s.seg.Fetch(key, earliestEnd, math.MaxInt64), dirty,
		func(k []byte) (window.Window, bool) {
			w := window.Window{End: int64(binary.BigEndian.Uint64(k[len(k)-16:])), Start: int64(binary.BigEndian.Uint64(k[len(k)-8:]))}
			return w, w.Start <= latestStart
		}, fn)
}

// dirtyWindow is a window or session of a record cache, for mergeFetch.
type dirtyWindow struct {
	win     window.Window
	v       []byte
	deleted bool
}

// windowOrder orders windows by end then start: sessions as stored, and
// windows (whose End fetchWindows leaves 0) by start.
func windowOrder(a, b window.Window) int {
	if c := cmp.Compare(a.End, b.End); c != 0 {
		return c
	}
	return cmp.Compare(a.Start, b.Start)
}

// mergeFetch merges a segmented fetch (external keys, decoded by win,
// which also filters) with the sorted dirty entries of the cache above
// it, which shadow stored entries of the same window.
func mergeFetch(it *table.Iter[[]byte, []byte], dirty []dirtyWindow, win func(k []byte) (window.Window, bool), fn func(window.Window, []byte) bool) error {
	i := 0
	stopped := false
	emit := func(d dirtyWindow) bool {
		if d.deleted {
			return true
		}
		return fn(d.win, d.v)
	}
	for k, v := range it.All() {
		w, ok := win(k)
		if !ok {
			continue
		}
		for i < len(dirty) && windowOrder(dirty[i].win, w) < 0 {
			if stopped = !emit(dirty[i]); stopped {
				break
			}
			i++
		}
		if stopped {
			break
		}
		if i < len(dirty) && dirty[i].win == w {
			i++
			if stopped = !emit(dirty[i-1]); stopped {
				break
			}
			continue
		}
		if stopped = !fn(w, v); stopped {
			break
		}
	}
	if err := it.Err(); err != nil || stopped {
		return err
	}
	for ; i < len(dirty); i++ {
		if !emit(dirty[i]) {
			return nil
		}
	}
	return nil
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
	if s.cache != nil {
		return s.cache.PutAt(k, v, ts)
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
		ts, ok := st.cache.FlushingTimestamp()
		if !ok {
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
