package stream

import (
	"fmt"

	"github.com/sluicehq/sluice/serde"
)

// lookupTable reads the current value of a key from a materialized table's
// store in the task (the table and the stream are co-partitioned, so the
// key's row is in this task).
func lookupTable[K, V any](t *task, store string, ks serde.Serde[K], vs serde.Serde[V], kbuf *[]byte, k K) (V, bool) {
	var zero V
	st := t.stores[store]
	var err error
	if *kbuf, err = ks.AppendEncode((*kbuf)[:0], k); err != nil {
		t.fail(fmt.Errorf("join: serialize key: %w", err))
		return zero, false
	}
	b, ok, err := st.get(*kbuf)
	if err != nil {
		t.fail(fmt.Errorf("join: store %s: %w", store, err))
		return zero, false
	}
	if !ok {
		return zero, false
	}
	v, err := vs.Decode(b)
	if err != nil {
		t.fail(fmt.Errorf("join: store %s: decode: %w", store, err))
		return zero, false
	}
	return v, true
}

func streamTableJoin[K, V, VT, R any](s KStream[K, V], t KTable[K, VT], left bool, joiner func(K, V, VT, bool) (R, bool), o opOpts) KStream[K, R] {
	prefix := "KSTREAM-JOIN"
	if left {
		prefix = "KSTREAM-LEFTJOIN"
	}
	if s.keyChanged {
		s = repartition(s, o.name, o)
	}
	if t.store == "" {
		s.b.fail(buildErr(prefix, "the table of a stream-table join must be materialized (a source table, an aggregation, or ToTable)"))
	}
	if s.kSerde == nil && t.kSerde == nil {
		s.b.fail(buildErr(prefix, "no key serde on either side"))
	}
	ks := t.kSerde
	if ks == nil {
		ks = s.kSerde
	}
	store := t.store
	n, out := attach(s, prefix, o, func(tk *task, _ *node, next procFn[K, R]) procFn[K, V] {
		var kbuf []byte
		return func(r rec[K, V]) {
			tv, ok := lookupTable(tk, store, ks, t.vSerde, &kbuf, r.key)
			if !ok && !left {
				return
			}
			if res, keep := joiner(r.key, r.value, tv, ok); keep {
				next(rec[K, R]{key: r.key, value: res, ts: r.ts, headers: r.headers})
			}
		}
	})
	n.stores = []string{store}
	n.copartition = true
	return derive[K, V, K, R](s, n, out, s.kSerde, nil, false)
}

// Join joins each record of s with the current row of its key in table t
// (inner: records without a row are dropped). The stream and the table must
// be co-partitioned (same partition count, same partitioner), which the app
// checks at start; a stream whose key changed is repartitioned first.
func Join[K, V, VT, R any](s KStream[K, V], t KTable[K, VT], joiner func(V, VT) R, opts ...Opt) KStream[K, R] {
	return streamTableJoin(s, t, false, func(_ K, v V, tv VT, _ bool) (R, bool) { return joiner(v, tv), true }, collect(opts))
}

// LeftJoin is Join that also passes records without a row, with found set
// to false and the zero value for the row.
func LeftJoin[K, V, VT, R any](s KStream[K, V], t KTable[K, VT], joiner func(v V, row VT, found bool) R, opts ...Opt) KStream[K, R] {
	return streamTableJoin(s, t, true, func(_ K, v V, tv VT, ok bool) (R, bool) { return joiner(v, tv, ok), true }, collect(opts))
}

func streamGlobalJoin[K, V, KG, VG, R any](s KStream[K, V], g GlobalKTable[KG, VG], keyOf func(K, V) KG, left bool, joiner func(V, VG, bool) R, o opOpts) KStream[K, R] {
	prefix := "KSTREAM-GLOBALJOIN"
	if left {
		prefix = "KSTREAM-GLOBALLEFTJOIN"
	}
	name := g.def.name
	n, out := attach(s, prefix, o, func(tk *task, _ *node, next procFn[K, R]) procFn[K, V] {
		var kbuf []byte
		return func(r rec[K, V]) {
			st := tk.globals.get(name)
			var gv VG
			found := false
			if st != nil {
				var err error
				if kbuf, err = g.kSerde.AppendEncode(kbuf[:0], keyOf(r.key, r.value)); err != nil {
					tk.fail(fmt.Errorf("global join: serialize key: %w", err))
					return
				}
				b, ok, err := st.get(kbuf)
				if err != nil {
					tk.fail(err)
					return
				}
				if ok {
					if gv, err = g.vSerde.Decode(b); err != nil {
						tk.fail(fmt.Errorf("global join: decode: %w", err))
						return
					}
					found = true
				}
			}
			if !found && !left {
				return
			}
			next(rec[K, R]{key: r.key, value: joiner(r.value, gv, found), ts: r.ts, headers: r.headers})
		}
	})
	return derive[K, V, K, R](s, n, out, s.kSerde, nil, s.keyChanged)
}

// JoinGlobal joins each record with the row of a global table under the key
// keyOf computes (no co-partitioning needed; records without a row are
// dropped).
func JoinGlobal[K, V, KG, VG, R any](s KStream[K, V], g GlobalKTable[KG, VG], keyOf func(K, V) KG, joiner func(V, VG) R, opts ...Opt) KStream[K, R] {
	return streamGlobalJoin(s, g, keyOf, false, func(v V, gv VG, _ bool) R { return joiner(v, gv) }, collect(opts))
}

// LeftJoinGlobal is JoinGlobal that also passes records without a row.
func LeftJoinGlobal[K, V, KG, VG, R any](s KStream[K, V], g GlobalKTable[KG, VG], keyOf func(K, V) KG, joiner func(v V, row VG, found bool) R, opts ...Opt) KStream[K, R] {
	return streamGlobalJoin(s, g, keyOf, true, joiner, collect(opts))
}

// JoinKind selects inner, left or outer table-table joins.
type JoinKind int

// Table-table join kinds.
const (
	InnerJoin JoinKind = iota
	LeftOuterJoin
	FullOuterJoin
)

// TableJoin joins two co-partitioned, materialized tables: whenever a row
// of either side changes, the joined row of its key is recomputed from both
// stores and emitted as a change (a delete when the kind no longer has a
// row for the key). joiner gets each side's value and whether it exists.
func TableJoin[K, V1, V2, R any](a KTable[K, V1], b KTable[K, V2], kind JoinKind, joiner func(v1 V1, ok1 bool, v2 V2, ok2 bool) R, opts ...Opt) KTable[K, R] {
	o := collect(opts)
	bld := a.b
	if a.store == "" || b.store == "" {
		bld.fail(buildErr("KTABLE-JOIN", "both tables of a table-table join must be materialized"))
	}
	n := bld.newNode(kindProcessor, "KTABLE-JOIN", o.name, a.n, b.n)
	n.stores = []string{a.store, b.store}
	n.copartition = true
	out := &outs[K, Change[R]]{}
	ks := a.kSerde
	has := func(ok1, ok2 bool) bool {
		switch kind {
		case InnerJoin:
			return ok1 && ok2
		case LeftOuterJoin:
			return ok1
		}
		return ok1 || ok2
	}
	var kbuf []byte
	a.out.list = append(a.out.list, func(tk *task) procFn[K, Change[V1]] {
		next := memoize(tk, n, func() procFn[K, Change[R]] { return buildOuts(tk, out) })
		name := n.name
		return func(r rec[K, Change[V1]]) {
			tk.procName = name
			v2, ok2 := lookupTable(tk, b.store, ks, b.vSerde, &kbuf, r.key)
			c := Change[R]{}
			if r.value.HasNew && has(true, ok2) {
				c.New, c.HasNew = joiner(r.value.New, true, v2, ok2), true
			} else if !r.value.HasNew && has(false, ok2) {
				var z V1
				c.New, c.HasNew = joiner(z, false, v2, ok2), true
			}
			if r.value.HasOld && has(true, ok2) {
				c.Old, c.HasOld = joiner(r.value.Old, true, v2, ok2), true
			} else if !r.value.HasOld && has(false, ok2) {
				var z V1
				c.Old, c.HasOld = joiner(z, false, v2, ok2), true
			}
			if c.HasNew || c.HasOld {
				next(rec[K, Change[R]]{key: r.key, value: c, ts: r.ts, headers: r.headers})
			}
		}
	})
	var kbuf2 []byte
	b.out.list = append(b.out.list, func(tk *task) procFn[K, Change[V2]] {
		next := memoize(tk, n, func() procFn[K, Change[R]] { return buildOuts(tk, out) })
		name := n.name
		return func(r rec[K, Change[V2]]) {
			tk.procName = name
			v1, ok1 := lookupTable(tk, a.store, ks, a.vSerde, &kbuf2, r.key)
			c := Change[R]{}
			if r.value.HasNew && has(ok1, true) {
				c.New, c.HasNew = joiner(v1, ok1, r.value.New, true), true
			} else if !r.value.HasNew && has(ok1, false) {
				var z V2
				c.New, c.HasNew = joiner(v1, ok1, z, false), true
			}
			if r.value.HasOld && has(ok1, true) {
				c.Old, c.HasOld = joiner(v1, ok1, r.value.Old, true), true
			} else if !r.value.HasOld && has(ok1, false) {
				var z V2
				c.Old, c.HasOld = joiner(v1, ok1, z, false), true
			}
			if c.HasNew || c.HasOld {
				next(rec[K, Change[R]]{key: r.key, value: c, ts: r.ts, headers: r.headers})
			}
		}
	})
	return KTable[K, R]{b: bld, n: n, out: out, kSerde: ks}
}
