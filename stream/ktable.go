package stream

import (
	"fmt"

	"github.com/sluicehq/sluice/serde"
)

// KTable is a changelog stream seen as a table: the latest value per key.
// Its edges carry Change values (new and old value). Create tables with
// Table, an aggregation, or KStream.ToTable.
type KTable[K, V any] struct {
	b      *Builder
	n      *node
	out    *outs[K, Change[V]]
	kSerde serde.Serde[K]
	vSerde serde.Serde[V]
	store  string // materialized store, "" if none
}

// StoreName returns the name of the table's store, or "" when the table is
// not materialized (a Filter or MapValues of another table).
func (t KTable[K, V]) StoreName() string { return t.store }

// materialize returns a processor that keeps the table in a store and emits
// Changes with the old value read from it. Records with a null value (or
// Changes with no new value) delete the key.
func materialize[K, V any](b *Builder, parent *node, prefix string, o opOpts, ks serde.Serde[K], vs serde.Serde[V]) (*node, *outs[K, Change[V]], string, func(t *task) procFn[K, Change[V]]) {
	id := b.seq
	storeName := o.storeName(fmt.Sprintf("KTABLE-%s-STATE-STORE-%010d", prefix, id))
	n := b.newNode(kindProcessor, "KTABLE-"+prefix, o.name, parent)
	n.stores = []string{storeName}
	out := &outs[K, Change[V]]{}
	b.addStore(&storeDef{name: storeName, owner: n, persistent: !o.inMemory, changelog: !o.noLog, cached: !o.noCache})
	if ks == nil {
		n.missing = append(n.missing, "key")
	}
	if vs == nil {
		n.missing = append(n.missing, "value")
	}
	mk := func(t *task) procFn[K, Change[V]] {
		return memoize(t, n, func() procFn[K, Change[V]] {
			st := t.stores[storeName]
			name := n.name
			next := emitChanges(t, st, ks, vs, name, buildOuts(t, out))
			var kbuf []byte
			return func(r rec[K, Change[V]]) {
				t.procName = name
				old, hasOld, ok := readValue(t, st, ks, vs, &kbuf, r.key)
				if !ok {
					return
				}
				c := Change[V]{New: r.value.New, HasNew: r.value.HasNew, Old: old, HasOld: hasOld}
				if !c.HasNew {
					if !hasOld {
						return // deleting a missing key changes nothing
					}
					if err := st.delete(kbuf); err != nil {
						t.fail(fmt.Errorf("store %s: %w", storeName, err))
						return
					}
				} else if !writeValue(t, st, vs, kbuf, c.New, r.ts) {
					return
				}
				next(rec[K, Change[V]]{key: r.key, value: c, ts: r.ts, headers: r.headers})
			}
		})
	}
	return n, out, storeName, mk
}

// Table reads a topic as a table (the topic should be compacted): each
// record upserts its key, a null value deletes it. The table is materialized
// in a store (name it with Materialized to query it).
func Table[K, V any](b *Builder, topic string, k serde.Serde[K], v serde.Serde[V], opts ...Opt) KTable[K, V] {
	o := collect(opts)
	src := b.newNode(kindSource, "KTABLE-SOURCE", "")
	src.topics = []string{topic}
	if prev, dup := b.topicNodes[topic]; dup {
		b.fail(buildErr(src.name, "topic %q is already read by %s", topic, prev.name))
	}
	b.topicNodes[topic] = src
	n, out, store, mk := materialize[K, V](b, src, "SOURCE", o, k, v)
	src.entry = func(t *task) func(*inRecord) {
		next := mk(t)
		name := src.name
		return func(in *inRecord) {
			t.procName = name
			key, ok := decodeOr(t, k, in, true)
			if !ok {
				return
			}
			c := Change[V]{}
			if in.value != nil {
				val, ok := decodeOr(t, v, in, false)
				if !ok {
					return
				}
				c.New, c.HasNew = val, true
			}
			next(rec[K, Change[V]]{key: key, value: c, ts: in.ts, headers: in.headers})
		}
	}
	return KTable[K, V]{b: b, n: n, out: out, kSerde: k, vSerde: v, store: store}
}

// ToTable turns a stream into a table: each record upserts its key.
func (s KStream[K, V]) ToTable(opts ...Opt) KTable[K, V] {
	o := collect(opts)
	if s.keyChanged {
		s = repartition(s, o.name, o)
	}
	n, out, store, mk := materialize[K, V](s.b, s.n, "TOTABLE", o, s.kSerde, s.vSerde)
	s.out.list = append(s.out.list, func(t *task) procFn[K, V] {
		next := mk(t)
		return func(r rec[K, V]) {
			next(rec[K, Change[V]]{key: r.key, value: Change[V]{New: r.value, HasNew: !r.null}, ts: r.ts, headers: r.headers})
		}
	})
	return KTable[K, V]{b: s.b, n: n, out: out, kSerde: s.kSerde, vSerde: s.vSerde, store: store}
}

func attachTable[K, V, K2, V2 any](t KTable[K, V], prefix string, o opOpts, mk func(tk *task, next procFn[K2, Change[V2]]) procFn[K, Change[V]]) (*node, *outs[K2, Change[V2]]) {
	n := t.b.newNode(kindProcessor, prefix, o.name, t.n)
	out := &outs[K2, Change[V2]]{}
	t.out.list = append(t.out.list, func(tk *task) procFn[K, Change[V]] {
		return memoize(tk, n, func() procFn[K, Change[V]] {
			fn := mk(tk, buildOuts(tk, out))
			name := n.name
			return func(r rec[K, Change[V]]) {
				tk.procName = name
				fn(r)
			}
		})
	})
	return n, out
}

// Filter keeps the rows for which keep returns true; a row that stops
// matching is deleted downstream.
func (t KTable[K, V]) Filter(keep func(K, V) bool, opts ...Opt) KTable[K, V] {
	n, out := attachTable(t, "KTABLE-FILTER", collect(opts), func(_ *task, next procFn[K, Change[V]]) procFn[K, Change[V]] {
		return func(r rec[K, Change[V]]) {
			c := r.value
			newOK := c.HasNew && keep(r.key, c.New)
			oldOK := c.HasOld && keep(r.key, c.Old)
			if !newOK && !oldOK {
				return // neither before nor after in the filtered table
			}
			r.value = Change[V]{New: c.New, HasNew: newOK, Old: c.Old, HasOld: oldOK}
			next(r)
		}
	})
	return KTable[K, V]{b: t.b, n: n, out: out, kSerde: t.kSerde, vSerde: t.vSerde}
}

// TableMapValues maps each row's value.
func TableMapValues[K, V, V2 any](t KTable[K, V], fn func(K, V) V2, opts ...Opt) KTable[K, V2] {
	n, out := attachTable(t, "KTABLE-MAPVALUES", collect(opts), func(_ *task, next procFn[K, Change[V2]]) procFn[K, Change[V]] {
		return func(r rec[K, Change[V]]) {
			c := r.value
			var nc Change[V2]
			if c.HasNew {
				nc.New, nc.HasNew = fn(r.key, c.New), true
			}
			if c.HasOld {
				nc.Old, nc.HasOld = fn(r.key, c.Old), true
			}
			next(rec[K, Change[V2]]{key: r.key, value: nc, ts: r.ts, headers: r.headers})
		}
	})
	return KTable[K, V2]{b: t.b, n: n, out: out, kSerde: t.kSerde}
}

// WithSerdes returns the table with its serdes set (after TableMapValues).
func (t KTable[K, V]) WithSerdes(k serde.Serde[K], v serde.Serde[V]) KTable[K, V] {
	t.kSerde, t.vSerde = k, v
	return t
}

// ToStream turns the table's updates into a stream: (key, new value), and
// (key, null) for deletes, which a sink writes as a tombstone.
func (t KTable[K, V]) ToStream(opts ...Opt) KStream[K, V] {
	n := t.b.newNode(kindProcessor, "KTABLE-TOSTREAM", collect(opts).name, t.n)
	out := &outs[K, V]{}
	t.out.list = append(t.out.list, func(tk *task) procFn[K, Change[V]] {
		return memoize(tk, n, func() procFn[K, Change[V]] {
			next := buildOuts(tk, out)
			name := n.name
			return func(r rec[K, Change[V]]) {
				tk.procName = name
				next(rec[K, V]{key: r.key, value: r.value.New, null: !r.value.HasNew, ts: r.ts, headers: r.headers})
			}
		})
	})
	return KStream[K, V]{b: t.b, n: n, out: out, kSerde: t.kSerde, vSerde: t.vSerde}
}
