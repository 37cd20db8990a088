package stream

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"iter"
	"math"
	"net/http"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/table"
	"github.com/sluicehq/sluice/window"
)

// segmentedStores returns the local partitions of a window or session
// store, in partition order, or an error if the app has no such store or
// it has another layout.
func (a *App) segmentedStores(name string, l table.Layout) ([]*taskStore, error) {
	stores, err := a.localStores(name)
	if err != nil {
		return nil, err
	}
	if sd := a.topo.stores[name]; sd == nil || sd.layout() != l {
		return nil, fmt.Errorf("stream: store %q is not a %s store", name, l)
	}
	ps := make([]int32, 0, len(stores))
	for p := range stores {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	out := make([]*taskStore, 0, len(ps))
	for _, p := range ps {
		if st := stores[p]; st.seg != nil {
			out = append(out, st)
		}
	}
	return out, nil
}

// queryErr remembers the error that ended a query's last scan.
type queryErr struct {
	err atomic.Pointer[error]
}

func (e *queryErr) set(err error) {
	if err == nil {
		e.err.Store(nil)
		return
	}
	e.err.Store(&err)
}

// Err returns the error that ended the last scan of the query early (nil
// if it ran to its end): no such store, a store of another kind, a value
// that does not decode, or table.ErrClosed when a partition moved away
// during the scan (a rebalance; scan again). A scan that failed looks like
// a scan that ended: check Err after the loop.
func (e *queryErr) Err() error {
	if p := e.err.Load(); p != nil {
		return *p
	}
	return nil
}

// scan runs one query over the local partitions of a window or session
// store: the records read(st) yields, keys turned by key (ok false: skip
// the record) and values decoded with vs, partition by partition. What
// ends the scan early is kept for Err.
func scan[T, V any](e *queryErr, a *App, name string, l table.Layout, vs serde.Serde[V],
	read func(st *taskStore) *table.Iter[[]byte, []byte], key func(st *taskStore, kb []byte) (T, bool, error),
	yield func(T, V) bool) {
	e.set(nil)
	stores, err := a.segmentedStores(name, l)
	if err != nil {
		e.set(err)
		return
	}
	for _, st := range stores {
		it := read(st)
		for kb, vb := range it.All() {
			k, ok, err := key(st, kb)
			if err != nil {
				e.set(fmt.Errorf("stream: query %s: decode key: %w", name, err))
				continue
			}
			if !ok {
				continue
			}
			v, err := vs.Decode(st.def.userValue(vb))
			if err != nil {
				e.set(fmt.Errorf("stream: query %s: decode value: %w", name, err))
				continue
			}
			if !yield(k, v) {
				return
			}
		}
		if err := it.Err(); err != nil {
			e.set(err)
			return
		}
	}
}

// QueryableWindowStore reads a running app's window store (the store of a
// windowed aggregation: WindowedCount, Reduce, WindowedAggregate) from any
// goroutine, like Kafka Streams' ReadOnlyWindowStore. It reads the
// partitions whose tasks run in this instance, as QueryableStore does, and
// sees a window's latest value once it left the record cache (at the next
// commit at the latest). Windows older than the store's retention (by
// start, behind stream time) are gone.
type QueryableWindowStore[K, V any] struct {
	queryErr
	a    *App
	name string
	ks   serde.Serde[K]
	vs   serde.Serde[V]
}

// QueryWindows returns a typed view of the named window store of a running
// app; k and v are the serdes of the aggregation's key and value.
func QueryWindows[K, V any](a *App, store string, k serde.Serde[K], v serde.Serde[V]) *QueryableWindowStore[K, V] {
	return &QueryableWindowStore[K, V]{a: a, name: store, ks: k, vs: v}
}

// Fetch returns the windows of key whose start is in [from, to] (both
// inclusive), in ascending start order. It reads only the store segments
// that cover the range.
func (q *QueryableWindowStore[K, V]) Fetch(key K, from, to time.Time) iter.Seq2[window.Window, V] {
	return q.fetch(key, from.UnixMilli(), to.UnixMilli())
}

// fetch is Fetch with times in ms.
func (q *QueryableWindowStore[K, V]) fetch(key K, from, to int64) iter.Seq2[window.Window, V] {
	return func(yield func(window.Window, V) bool) {
		kb, err := q.ks.AppendEncode(nil, key)
		if err != nil {
			q.set(fmt.Errorf("stream: query %s: encode key: %w", q.name, err))
			return
		}
		scan(&q.queryErr, q.a, q.name, table.WindowLayout, q.vs,
			func(st *taskStore) *table.Iter[[]byte, []byte] { return st.seg.View().Fetch(kb, from, to) },
			func(st *taskStore, k []byte) (window.Window, bool, error) {
				start := int64(binary.BigEndian.Uint64(k[len(k)-8:]))
				return window.Window{Start: start, End: start + st.def.windowSizeMs}, true, nil
			}, yield)
	}
}

// FetchAll returns the windows of every key whose start is in [from, to]:
// partition by partition, and within a partition by store segment, then by
// key bytes (shorter keys first), then start.
func (q *QueryableWindowStore[K, V]) FetchAll(from, to time.Time) iter.Seq2[window.Windowed[K], V] {
	return q.fetchAll(from.UnixMilli(), to.UnixMilli())
}

// All returns every window of the store, in FetchAll's order.
func (q *QueryableWindowStore[K, V]) All() iter.Seq2[window.Windowed[K], V] {
	return q.fetchAll(math.MinInt64, math.MaxInt64)
}

func (q *QueryableWindowStore[K, V]) fetchAll(from, to int64) iter.Seq2[window.Windowed[K], V] {
	return func(yield func(window.Windowed[K], V) bool) {
		scan(&q.queryErr, q.a, q.name, table.WindowLayout, q.vs,
			func(st *taskStore) *table.Iter[[]byte, []byte] { return st.seg.View().FetchAll(from, to) },
			func(st *taskStore, kb []byte) (window.Windowed[K], bool, error) {
				k, err := window.KeySerde(q.ks, msDuration(st.def.windowSizeMs)).Decode(kb)
				return k, err == nil, err
			}, yield)
	}
}

// QueryableSessionStore reads a running app's session store (the store of
// SessionCount or SessionAggregate) from any goroutine, like Kafka
// Streams' ReadOnlySessionStore, with QueryableWindowStore's locality and
// freshness. A session's Window is [first record time, last record time],
// both inclusive. Sessions that ended more than the inactivity gap plus
// grace behind stream time are gone.
type QueryableSessionStore[K, V any] struct {
	queryErr
	a    *App
	name string
	ks   serde.Serde[K]
	vs   serde.Serde[V]
}

// QuerySessions returns a typed view of the named session store of a
// running app.
func QuerySessions[K, V any](a *App, store string, k serde.Serde[K], v serde.Serde[V]) *QueryableSessionStore[K, V] {
	return &QueryableSessionStore[K, V]{a: a, name: store, ks: k, vs: v}
}

// Fetch returns every session of key, in ascending order of end, then
// start.
func (q *QueryableSessionStore[K, V]) Fetch(key K) iter.Seq2[window.Window, V] {
	return q.find(key, math.MinInt64, math.MaxInt64)
}

// FindSessions returns the sessions of key that end at or after
// earliestEnd and start at or before latestStart, in ascending order of
// end, then start. It reads only the segments from earliestEnd on.
func (q *QueryableSessionStore[K, V]) FindSessions(key K, earliestEnd, latestStart time.Time) iter.Seq2[window.Window, V] {
	return q.find(key, earliestEnd.UnixMilli(), latestStart.UnixMilli())
}

func (q *QueryableSessionStore[K, V]) find(key K, earliestEnd, latestStart int64) iter.Seq2[window.Window, V] {
	return func(yield func(window.Window, V) bool) {
		kb, err := q.ks.AppendEncode(nil, key)
		if err != nil {
			q.set(fmt.Errorf("stream: query %s: encode key: %w", q.name, err))
			return
		}
		scan(&q.queryErr, q.a, q.name, table.SessionLayout, q.vs,
			func(st *taskStore) *table.Iter[[]byte, []byte] {
				return st.seg.View().Fetch(kb, earliestEnd, math.MaxInt64)
			},
			func(_ *taskStore, k []byte) (window.Window, bool, error) {
				w := window.Window{End: int64(binary.BigEndian.Uint64(k[len(k)-16:])), Start: int64(binary.BigEndian.Uint64(k[len(k)-8:]))}
				return w, w.Start <= latestStart, nil
			}, yield)
	}
}

// All returns every session of the store: partition by partition, then by
// store segment (of session ends), key bytes (shorter keys first), end and
// start.
func (q *QueryableSessionStore[K, V]) All() iter.Seq2[window.Windowed[K], V] {
	return func(yield func(window.Windowed[K], V) bool) {
		scan(&q.queryErr, q.a, q.name, table.SessionLayout, q.vs,
			func(st *taskStore) *table.Iter[[]byte, []byte] {
				return st.seg.View().FetchAll(math.MinInt64, math.MaxInt64)
			},
			func(_ *taskStore, kb []byte) (window.Windowed[K], bool, error) {
				n := int(binary.BigEndian.Uint32(kb))
				k, err := q.ks.Decode(kb[4 : 4+n])
				w := window.Window{End: int64(binary.BigEndian.Uint64(kb[4+n:])), Start: int64(binary.BigEndian.Uint64(kb[4+n+8:]))}
				return window.Windowed[K]{Key: k, Window: w}, err == nil, err
			}, yield)
	}
}

// WindowStoreHandler serves a window store as JSON:
//
//	GET ?key=K&from=T&to=T  the windows of K starting in [from, to]:
//	                        [{"start":ms,"end":ms,"value":..}]
//	GET ?from=T&to=T        the windows of every key:
//	                        [{"key":..,"start":ms,"end":ms,"value":..}]
//
// T is RFC 3339 or milliseconds since the epoch; a missing from or to
// leaves that side open. Bad parameters get 400, a failed read 500.
func WindowStoreHandler[K, V any](a *App, store string, k serde.Serde[K], v serde.Serde[V], parseKey func(string) (K, error)) http.Handler {
	fail := func(w http.ResponseWriter, code int, err error) {
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "only GET", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		from, err := parseQueryTime(r.URL.Query().Get("from"), math.MinInt64)
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		to, err := parseQueryTime(r.URL.Query().Get("to"), math.MaxInt64)
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		type entry struct {
			Key   *K    `json:"key,omitempty"`
			Start int64 `json:"start"`
			End   int64 `json:"end"`
			Value V     `json:"value"`
		}
		entries := []entry{}
		// Err belongs to a query value and requests run concurrently:
		// one query per request.
		rq := QueryWindows(a, store, k, v)
		if ks := r.URL.Query().Get("key"); ks != "" {
			key, err := parseKey(ks)
			if err != nil {
				fail(w, http.StatusBadRequest, err)
				return
			}
			for win, val := range rq.fetch(key, from, to) {
				entries = append(entries, entry{Start: win.Start, End: win.End, Value: val})
			}
		} else {
			for wk, val := range rq.fetchAll(from, to) {
				entries = append(entries, entry{Key: &wk.Key, Start: wk.Window.Start, End: wk.Window.End, Value: val})
			}
		}
		if err := rq.Err(); err != nil {
			fail(w, http.StatusInternalServerError, err)
			return
		}
		_ = json.NewEncoder(w).Encode(entries)
	})
}

// parseQueryTime parses an HTTP query's time: RFC 3339 or ms since the
// epoch; empty is def.
func parseQueryTime(s string, def int64) (int64, error) {
	if s == "" {
		return def, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("stream: time %q is neither RFC 3339 nor milliseconds", s)
	}
	return t.UnixMilli(), nil
}
