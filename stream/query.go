package stream

import (
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"sort"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/table"
)

// registerStore records a task's store for interactive queries.
func (a *App) registerStore(name string, p int32, st *taskStore) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stores == nil {
		a.stores = map[string]map[int32]*taskStore{}
	}
	if a.stores[name] == nil {
		a.stores[name] = map[int32]*taskStore{}
	}
	a.stores[name][p] = st
}

func (a *App) unregisterStore(name string, p int32, st *taskStore) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stores[name][p] == st {
		delete(a.stores[name], p)
	}
}

func (a *App) localStores(name string) (map[int32]*taskStore, error) {
	if st := a.globals.get(name); st != nil {
		return map[int32]*taskStore{-1: st}, nil
	}
	if _, ok := a.topo.stores[name]; !ok {
		return nil, fmt.Errorf("stream: no store named %q (stores: %v)", name, a.topo.storeNames())
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[int32]*taskStore, len(a.stores[name]))
	for p, st := range a.stores[name] {
		out[p] = st
	}
	return out, nil
}

// QueryableStore reads a running app's store (interactive queries): the
// partitions whose tasks run in this instance. Reads are safe while the app
// writes; they see the latest values written (not only committed ones).
type QueryableStore[K, V any] struct {
	a    *App
	name string
	ks   serde.Serde[K]
	vs   serde.Serde[V]
}

// Query returns a typed view of the named store of a running app.
func Query[K, V any](a *App, store string, k serde.Serde[K], v serde.Serde[V]) *QueryableStore[K, V] {
	return &QueryableStore[K, V]{a: a, name: store, ks: k, vs: v}
}

// Get returns the value of k, if this instance holds its partition.
func (q *QueryableStore[K, V]) Get(k K) (V, bool, error) {
	var zero V
	stores, err := q.a.localStores(q.name)
	if err != nil {
		return zero, false, err
	}
	kb, err := q.ks.AppendEncode(nil, k)
	if err != nil {
		return zero, false, err
	}
	for _, st := range stores {
		b, err := st.query.Get(kb)
		if errors.Is(err, table.ErrNotFound) {
			continue
		}
		if err != nil {
			return zero, false, err
		}
		v, err := q.vs.Decode(b)
		return v, err == nil, err
	}
	return zero, false, nil
}

// All returns every entry of the local partitions, in key-byte order within
// each partition, partitions in order.
func (q *QueryableStore[K, V]) All() iter.Seq2[K, V] { return q.scanBytes(nil, nil) }

// Range returns the entries with from <= key < to (by key bytes; nil
// pointers leave a side open), partition by partition.
func (q *QueryableStore[K, V]) Range(from, to *K) iter.Seq2[K, V] {
	var fb, tb []byte
	if from != nil {
		fb, _ = q.ks.AppendEncode(nil, *from)
	}
	if to != nil {
		tb, _ = q.ks.AppendEncode(nil, *to)
	}
	return q.scanBytes(fb, tb)
}

// Prefix returns the entries whose key bytes start with prefix.
func (q *QueryableStore[K, V]) Prefix(prefix []byte) iter.Seq2[K, V] {
	return q.scanBytes(prefix, table.PrefixEnd(prefix))
}

func (q *QueryableStore[K, V]) scanBytes(from, to []byte) iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		stores, err := q.a.localStores(q.name)
		if err != nil {
			return
		}
		ps := make([]int32, 0, len(stores))
		for p := range stores {
			ps = append(ps, p)
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		for _, p := range ps {
			stop := false
			_ = stores[p].scan(stores[p].query, from, to, func(kb, vb []byte) bool {
				k, err1 := q.ks.Decode(kb)
				v, err2 := q.vs.Decode(vb)
				if err1 != nil || err2 != nil {
					return true
				}
				if !yield(k, v) {
					stop = true
					return false
				}
				return true
			})
			if stop {
				return
			}
		}
	}
}

// StoreHandler serves a store as JSON: GET ?key=K returns the value (404 if
// absent), GET without a key returns every entry as [{"key":..,"value":..}].
// parseKey turns the query parameter into a key. This is the one line that
// exposes a CQRS read model:
//
//	http.Handle("/totals", stream.StoreHandler(app, "totals", serde.String(), serde.Int64(), stream.StringKey))
func StoreHandler[K, V any](a *App, store string, k serde.Serde[K], v serde.Serde[V], parseKey func(string) (K, error)) http.Handler {
	q := Query(a, store, k, v)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "only GET", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if ks := r.URL.Query().Get("key"); ks != "" {
			key, err := parseKey(ks)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
				return
			}
			val, ok, err := q.Get(key)
			switch {
			case err != nil:
				w.WriteHeader(http.StatusInternalServerError)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			case !ok:
				w.WriteHeader(http.StatusNotFound)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": "no such key"})
			default:
				_ = json.NewEncoder(w).Encode(map[string]any{"key": key, "value": val})
			}
			return
		}
		type entry struct {
			Key   K `json:"key"`
			Value V `json:"value"`
		}
		entries := []entry{}
		for key, val := range q.All() {
			entries = append(entries, entry{key, val})
		}
		_ = json.NewEncoder(w).Encode(entries)
	})
}

// StringKey parses string keys for StoreHandler.
func StringKey(s string) (string, error) { return s, nil }
