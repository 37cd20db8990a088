package stream

import (
	"fmt"

	"github.com/sluicehq/sluice/serde"
)

// KGroupedStream is a stream grouped by key, ready to aggregate. Create it
// with GroupByKey or GroupBy.
type KGroupedStream[K, V any] struct {
	s KStream[K, V]
	o opOpts
}

// GroupByKey groups a stream by its key. When an earlier operator changed
// the key, records first go through a repartition topic so that all records
// of a key meet in one task.
func GroupByKey[K, V any](s KStream[K, V], opts ...Opt) KGroupedStream[K, V] {
	return KGroupedStream[K, V]{s: s, o: collect(opts)}
}

// GroupBy groups a stream by a new key computed from each record (always
// through a repartition topic). keySerde encodes the new key.
func GroupBy[K, V, K2 any](s KStream[K, V], fn func(K, V) K2, keySerde serde.Serde[K2], opts ...Opt) KGroupedStream[K2, V] {
	o := collect(opts)
	sk := SelectKey(s, fn)
	sk.kSerde = keySerde
	return KGroupedStream[K2, V]{s: sk, o: o}
}

// aggregation wires an aggregating processor over a grouped stream: it
// repartitions if needed, declares the store, and returns the table of
// results.
func aggregation[K, V, A any](g KGroupedStream[K, V], prefix string, aSerde serde.Serde[A], opts []Opt,
	apply func(k K, v V, old A, hasOld bool) A) KTable[K, A] {
	o := g.o
	for _, op := range opts {
		op.applyOp(&o)
	}
	s := g.s
	b := s.b
	id := b.seq
	storeName := o.storeName(fmt.Sprintf("KSTREAM-%s-STATE-STORE-%010d", prefix, id))
	if s.keyChanged {
		s = repartition(s, storeName, o)
	}
	n, out := attach(s, "KSTREAM-"+prefix, opOpts{name: o.name}, func(t *task, n *node, next procFn[K, Change[A]]) procFn[K, V] {
		st := t.stores[storeName]
		ks := s.kSerde
		next = emitChanges(t, st, ks, aSerde, n.name, next)
		var kbuf []byte
		return func(r rec[K, V]) {
			old, hasOld, ok := readValue(t, st, ks, aSerde, &kbuf, r.key)
			if !ok {
				return
			}
			nv := apply(r.key, r.value, old, hasOld)
			if !writeValue(t, st, aSerde, kbuf, nv, r.ts) {
				return
			}
			next(rec[K, Change[A]]{key: r.key, value: Change[A]{New: nv, HasNew: true, Old: old, HasOld: hasOld}, ts: r.ts, headers: r.headers})
		}
	})
	n.stores = []string{storeName}
	if s.kSerde == nil {
		n.missing = append(n.missing, "key")
	}
	if aSerde == nil {
		n.missing = append(n.missing, "aggregate value")
	}
	b.addStore(&storeDef{name: storeName, owner: n, persistent: !o.inMemory, changelog: !o.noLog, cached: !o.noCache})
	return KTable[K, A]{b: b, n: n, out: out, kSerde: s.kSerde, vSerde: aSerde, store: storeName}
}

// Count counts the records of each key into a table.
func Count[K, V any](g KGroupedStream[K, V], opts ...Opt) KTable[K, int64] {
	return aggregation(g, "AGGREGATE", serde.Int64(), opts, func(_ K, _ V, old int64, _ bool) int64 {
		return old + 1
	})
}

// Reduce combines the values of each key with fn (the first value of a key
// is taken as it is). The stream's value serde stores the result.
func (g KGroupedStream[K, V]) Reduce(fn func(agg, v V) V, opts ...Opt) KTable[K, V] {
	return aggregation(g, "REDUCE", g.s.vSerde, opts, func(_ K, v V, old V, hasOld bool) V {
		if !hasOld {
			return v
		}
		return fn(old, v)
	})
}

// Aggregate folds the values of each key into an aggregate of type A,
// starting from init(), with aSerde storing it.
func Aggregate[K, V, A any](g KGroupedStream[K, V], init func() A, fn func(k K, v V, agg A) A, aSerde serde.Serde[A], opts ...Opt) KTable[K, A] {
	return aggregation(g, "AGGREGATE", aSerde, opts, func(k K, v V, old A, hasOld bool) A {
		if !hasOld {
			old = init()
		}
		return fn(k, v, old)
	})
}
