package stream

import (
	"errors"
	"fmt"

	"github.com/sluicehq/sluice/serde"
)

// tableOp is a row leaving or entering a group, sent through the
// repartition topic of a table grouping: the subtractor applies to old rows,
// the adder to new ones.
type tableOp[V any] struct {
	value    V
	subtract bool
}

// tableOpSerde encodes a tableOp as one flag byte (0 add, 1 subtract) and
// the value.
type tableOpSerde[V any] struct{ inner serde.Serde[V] }

func (s tableOpSerde[V]) AppendEncode(dst []byte, op tableOp[V]) ([]byte, error) {
	flag := byte(0)
	if op.subtract {
		flag = 1
	}
	return s.inner.AppendEncode(append(dst, flag), op.value)
}

func (s tableOpSerde[V]) Decode(b []byte) (tableOp[V], error) {
	if len(b) < 1 || b[0] > 1 {
		return tableOp[V]{}, errors.New("stream: malformed table grouping record")
	}
	v, err := s.inner.Decode(b[1:])
	return tableOp[V]{value: v, subtract: b[0] == 1}, err
}

// KGroupedTable is a table regrouped by a new key, ready to aggregate with
// an adder and a subtractor. Create it with TableGroupBy.
type KGroupedTable[K, V any] struct {
	s KStream[K, tableOp[V]]
	o opOpts
}

// TableGroupBy regroups a table's rows under new keys (through a
// repartition topic): when a row changes, its old version leaves its old
// group (subtractor) and its new version enters its new group (adder).
func TableGroupBy[K, V, K2, V2 any](t KTable[K, V], fn func(K, V) (K2, V2), k2 serde.Serde[K2], v2 serde.Serde[V2], opts ...Opt) KGroupedTable[K2, V2] {
	o := collect(opts)
	n := t.b.newNode(kindProcessor, "KTABLE-SELECT", o.name, t.n)
	out := &outs[K2, tableOp[V2]]{}
	t.out.list = append(t.out.list, func(tk *task) procFn[K, Change[V]] {
		return memoize(tk, n, func() procFn[K, Change[V]] {
			next := buildOuts(tk, out)
			name := n.name
			return func(r rec[K, Change[V]]) {
				tk.procName = name
				if r.value.HasOld {
					k, v := fn(r.key, r.value.Old)
					next(rec[K2, tableOp[V2]]{key: k, value: tableOp[V2]{value: v, subtract: true}, ts: r.ts, headers: r.headers})
				}
				if r.value.HasNew {
					k, v := fn(r.key, r.value.New)
					next(rec[K2, tableOp[V2]]{key: k, value: tableOp[V2]{value: v}, ts: r.ts, headers: r.headers})
				}
			}
		})
	})
	var opS serde.Serde[tableOp[V2]]
	if v2 != nil {
		opS = tableOpSerde[V2]{inner: v2}
	} else {
		n.missing = append(n.missing, "value")
	}
	if k2 == nil {
		n.missing = append(n.missing, "key")
	}
	s := KStream[K2, tableOp[V2]]{b: t.b, n: n, out: out, kSerde: k2, vSerde: opS, keyChanged: true}
	return KGroupedTable[K2, V2]{s: s, o: o}
}

func tableAggregation[K, V, A any](g KGroupedTable[K, V], aSerde serde.Serde[A], opts []Opt,
	add func(K, V, A, bool) A, sub func(K, V, A) A) KTable[K, A] {
	o := g.o
	for _, op := range opts {
		op.applyOp(&o)
	}
	b := g.s.b
	storeName := o.storeName(fmt.Sprintf("KTABLE-AGGREGATE-STATE-STORE-%010d", b.seq))
	s := repartition(g.s, storeName, o)
	n, out := attach(s, "KTABLE-AGGREGATE", opOpts{name: o.name}, func(t *task, n *node, next procFn[K, Change[A]]) procFn[K, tableOp[V]] {
		st := t.stores[storeName]
		ks := s.kSerde
		next = emitChanges(t, st, ks, aSerde, n.name, next)
		var kbuf []byte
		return func(r rec[K, tableOp[V]]) {
			old, hasOld, ok := readValue(t, st, ks, aSerde, &kbuf, r.key)
			if !ok {
				return
			}
			var nv A
			if r.value.subtract {
				if !hasOld {
					return // nothing to take the row out of
				}
				nv = sub(r.key, r.value.value, old)
			} else {
				nv = add(r.key, r.value.value, old, hasOld)
			}
			if !writeValue(t, st, aSerde, kbuf, nv, r.ts) {
				return
			}
			next(rec[K, Change[A]]{key: r.key, value: Change[A]{New: nv, HasNew: true, Old: old, HasOld: hasOld}, ts: r.ts, headers: r.headers})
		}
	})
	n.stores = []string{storeName}
	if aSerde == nil {
		n.missing = append(n.missing, "aggregate value")
	}
	b.addStore(&storeDef{name: storeName, owner: n, persistent: !o.inMemory, changelog: !o.noLog, cached: !o.noCache})
	return KTable[K, A]{b: b, n: n, out: out, kSerde: s.kSerde, vSerde: aSerde, store: storeName}
}

// TableAggregate aggregates a grouped table: adder folds rows entering a
// group, subtractor takes rows leaving it out.
func TableAggregate[K, V, A any](g KGroupedTable[K, V], init func() A, adder, subtractor func(K, V, A) A, aSerde serde.Serde[A], opts ...Opt) KTable[K, A] {
	return tableAggregation(g, aSerde, opts, func(k K, v V, old A, hasOld bool) A {
		if !hasOld {
			old = init()
		}
		return adder(k, v, old)
	}, subtractor)
}

// Reduce combines the rows of each group: adder for rows entering it,
// subtractor for rows leaving it.
func (g KGroupedTable[K, V]) Reduce(adder, subtractor func(agg, v V) V, opts ...Opt) KTable[K, V] {
	var vs serde.Serde[V]
	if ts, ok := g.s.vSerde.(tableOpSerde[V]); ok {
		vs = ts.inner
	}
	return tableAggregation(g, vs, opts, func(_ K, v V, old V, hasOld bool) V {
		if !hasOld {
			return v
		}
		return adder(old, v)
	}, func(_ K, v V, old V) V { return subtractor(old, v) })
}

// TableCount counts the rows of each group.
func TableCount[K, V any](g KGroupedTable[K, V], opts ...Opt) KTable[K, int64] {
	return tableAggregation(g, serde.Int64(), opts,
		func(_ K, _ V, old int64, _ bool) int64 { return old + 1 },
		func(_ K, _ V, old int64) int64 { return old - 1 })
}
