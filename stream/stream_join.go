package stream

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/serde"
)

// JoinWindows bound a stream-stream join: a record at time t joins the
// other side's records of the same key timestamped in [t-before, t+after].
type JoinWindows struct {
	before, after, grace int64
}

// JoinTimeDifference joins records at most d apart (either way), with no
// grace period (Kafka Streams' JoinWindows.ofTimeDifferenceWithNoGrace).
func JoinTimeDifference(d time.Duration) JoinWindows {
	return JoinWindows{before: d.Milliseconds(), after: d.Milliseconds()}
}

// Grace keeps accepting out-of-order records for d after their window
// closed (by stream time); left and outer joins emit unmatched records only
// once the window and its grace have passed.
func (w JoinWindows) Grace(d time.Duration) JoinWindows { w.grace = d.Milliseconds(); return w }

// Before sets how far back the other side is looked up.
func (w JoinWindows) Before(d time.Duration) JoinWindows { w.before = d.Milliseconds(); return w }

// After sets how far ahead the other side is looked up.
func (w JoinWindows) After(d time.Duration) JoinWindows { w.after = d.Milliseconds(); return w }

// joinKey encodes a join-store key: length-prefixed key bytes, timestamp,
// sequence (so equal keys and times stay distinct).
func joinKey(dst, k []byte, ts int64, seq uint32) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(k)))
	dst = append(dst, k...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	return binary.BigEndian.AppendUint32(dst, seq)
}

func joinKeyTS(b []byte) int64 { return int64(binary.BigEndian.Uint64(b[len(b)-12:])) }

// pendingKey orders unmatched records by time: ts, then the join key.
func pendingKey(ts int64, jk []byte) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(ts)), jk...)
}

func streamStreamJoin[K, V1, V2, R any](a KStream[K, V1], b KStream[K, V2], w JoinWindows, leftOuter, rightOuter bool,
	joiner func(v1 V1, ok1 bool, v2 V2, ok2 bool) R, o opOpts) KStream[K, R] {
	bld := a.b
	prefix := "KSTREAM-JOIN"
	switch {
	case leftOuter && rightOuter:
		prefix = "KSTREAM-OUTERJOIN"
	case leftOuter:
		prefix = "KSTREAM-LEFTJOIN"
	}
	name := o.name
	if name == "" {
		name = fmt.Sprintf("%s-%010d", prefix, bld.seq)
	}
	if a.keyChanged {
		a = repartition(a, name+"-left", o)
	}
	if b.keyChanged {
		b = repartition(b, name+"-right", o)
	}
	ks := a.kSerde
	if ks == nil {
		ks = b.kSerde
	}
	n := bld.newNode(kindProcessor, prefix, name, a.n, b.n)
	n.copartition = true
	if ks == nil {
		n.missing = append(n.missing, "key")
	}
	if a.vSerde == nil {
		n.missing = append(n.missing, "left value")
	}
	if b.vSerde == nil {
		n.missing = append(n.missing, "right value")
	}
	thisStore, otherStore, pendStore := name+"-this-join-store", name+"-other-join-store", name+"-outer-join-store"
	n.stores = []string{thisStore, otherStore}
	bld.addStore(&storeDef{name: thisStore, owner: n, persistent: !o.inMemory, changelog: !o.noLog})
	bld.addStore(&storeDef{name: otherStore, owner: n, persistent: !o.inMemory, changelog: !o.noLog})
	outer := leftOuter || rightOuter
	if outer {
		n.stores = append(n.stores, pendStore)
		bld.addStore(&storeDef{name: pendStore, owner: n, persistent: !o.inMemory, changelog: !o.noLog})
	}
	out := &outs[K, R]{}
	retention := w.before + w.after + w.grace

	// Left side: store, then look up the right side in [ts-before, ts+after].
	// Both sides share one state per task (whichever side is built first
	// creates it).
	newState := func(t *task) func() *joinSt[K, R] {
		return func() *joinSt[K, R] {
			js := &joinSt[K, R]{this: t.stores[thisStore], other: t.stores[otherStore], next: buildOuts(t, out)}
			if outer {
				js.pend = t.stores[pendStore]
				t.streamPunct = append(t.streamPunct, &punctuator{interval: 1, next: -1, name: name, fn: func(time.Time) {
					emitPending(t, js.pend, ks, a.vSerde, b.vSerde, w, joiner, js.next)
				}})
			}
			t.flushers = append(t.flushers, func() error { return expireJoinStores(t, retention, js.this, js.other) })
			return js
		}
	}
	a.out.list = append(a.out.list, func(t *task) procFn[K, V1] {
		st := joinState[K, R](t, n, newState(t))
		return func(r rec[K, V1]) {
			t.procName = name
			sideJoin(t, st, true, r.key, any(r.value), r.ts, r.headers, ks, a.vSerde, b.vSerde, w, leftOuter, joiner)
		}
	})
	b.out.list = append(b.out.list, func(t *task) procFn[K, V2] {
		st := joinState[K, R](t, n, newState(t))
		return func(r rec[K, V2]) {
			t.procName = name
			sideJoin(t, st, false, r.key, any(r.value), r.ts, r.headers, ks, a.vSerde, b.vSerde, w, rightOuter, joiner)
		}
	})
	return KStream[K, R]{b: bld, n: n, out: out, kSerde: ks}
}

type joinSt[K, R any] struct {
	this, other, pend *taskStore
	seq               uint32
	next              procFn[K, R]
}

func joinState[K, R any](t *task, n *node, mk func() *joinSt[K, R]) *joinSt[K, R] {
	if v, ok := t.memo[n]; ok {
		return v.(*joinSt[K, R])
	}
	js := mk()
	t.memo[n] = js
	return js
}

// sideJoin handles a record of one side of a stream-stream join: it is
// stored in its side's window store, joined with the other side's records
// of the key in the window, and, for an outer side with no match yet, kept
// pending until its window closes. Matching a pending record of the other
// side removes it from the pending store (it was joined after all).
func sideJoin[K, V1, V2, R any](t *task, js *joinSt[K, R], left bool, key K, value any, ts int64, hs []Header,
	ks serde.Serde[K], v1s serde.Serde[V1], v2s serde.Serde[V2], w JoinWindows, outer bool,
	joiner func(v1 V1, ok1 bool, v2 V2, ok2 bool) R) {
	// Too late for its window: drop (Kafka Streams does, after grace).
	before, after := w.before, w.after
	if !left {
		before, after = w.after, w.before
	}
	if ts+after+w.grace < t.streamTime {
		t.dropLate()
		return
	}
	kb, err := ks.AppendEncode(nil, key)
	if err != nil {
		t.fail(fmt.Errorf("join: serialize key: %w", err))
		return
	}
	var vb []byte
	if left {
		vb, err = v1s.AppendEncode(nil, value.(V1))
	} else {
		vb, err = v2s.AppendEncode(nil, value.(V2))
	}
	if err != nil {
		t.fail(fmt.Errorf("join: serialize value: %w", err))
		return
	}
	mine, theirs := js.this, js.other
	if !left {
		mine, theirs = js.other, js.this
	}
	js.seq++
	jk := joinKey(nil, kb, ts, js.seq)
	if err := mine.put(jk, vb); err != nil {
		t.fail(err)
		return
	}
	from := joinKey(nil, kb, max(ts-before, 0), 0)
	to := joinKey(nil, kb, ts+after, ^uint32(0))
	to = append(to, 0) // inclusive of the last sequence
	matched := false
	type hit struct {
		k, v []byte
	}
	var hits []hit
	_ = mine.scan(theirs.kv, from, to, func(k, v []byte) bool {
		hits = append(hits, hit{bytes.Clone(k), bytes.Clone(v)})
		return true
	})
	for _, h := range hits {
		matched = true
		ots := joinKeyTS(h.k)
		var r R
		if left {
			ov, err := v2s.Decode(h.v)
			if err != nil {
				t.fail(fmt.Errorf("join: decode: %w", err))
				return
			}
			r = joiner(value.(V1), true, ov, true)
		} else {
			ov, err := v1s.Decode(h.v)
			if err != nil {
				t.fail(fmt.Errorf("join: decode: %w", err))
				return
			}
			r = joiner(ov, true, value.(V2), true)
		}
		if js.pend != nil {
			// The other record may wait as unmatched: it is matched now.
			_ = js.pend.delete(pendingKey(ots+before+w.grace, append([]byte{sideByte(!left)}, h.k...)))
		}
		js.next(rec[K, R]{key: key, value: r, ts: max(ts, ots), headers: hs})
	}
	if !matched && outer && js.pend != nil {
		closeAt := ts + after + w.grace
		pk := pendingKey(closeAt, append([]byte{sideByte(left)}, jk...))
		if err := js.pend.put(pk, vb); err != nil {
			t.fail(err)
		}
	}
}

func sideByte(left bool) byte {
	if left {
		return 0
	}
	return 1
}

// emitPending emits the unmatched records of outer sides whose window (and
// grace) has closed, oldest first, joined with "nothing".
func emitPending[K, V1, V2, R any](t *task, pend *taskStore, ks serde.Serde[K], v1s serde.Serde[V1], v2s serde.Serde[V2],
	w JoinWindows, joiner func(v1 V1, ok1 bool, v2 V2, ok2 bool) R, next procFn[K, R]) {
	type due struct{ k, v []byte }
	var ready []due
	_ = pend.scan(pend.kv, nil, nil, func(k, v []byte) bool {
		if len(k) < 8+1+4 || int64(binary.BigEndian.Uint64(k)) >= t.streamTime {
			return false // ordered by close time: nothing later is due
		}
		ready = append(ready, due{bytes.Clone(k), bytes.Clone(v)})
		return true
	})
	for _, d := range ready {
		_ = pend.delete(d.k)
		side, jk := d.k[8], d.k[9:]
		klen := int(binary.BigEndian.Uint32(jk))
		if 4+klen+12 != len(jk) {
			continue
		}
		key, err := ks.Decode(jk[4 : 4+klen])
		if err != nil {
			t.fail(fmt.Errorf("join: decode pending key: %w", err))
			continue
		}
		ts := joinKeyTS(jk)
		var r R
		if side == 0 {
			v, err := v1s.Decode(d.v)
			if err != nil {
				t.fail(err)
				continue
			}
			var z V2
			r = joiner(v, true, z, false)
		} else {
			v, err := v2s.Decode(d.v)
			if err != nil {
				t.fail(err)
				continue
			}
			var z V1
			r = joiner(z, false, v, true)
		}
		next(rec[K, R]{key: key, value: r, ts: ts})
	}
}

// expireJoinStores drops buffered records older than the join's retention
// (window + grace) behind stream time.
func expireJoinStores(t *task, retention int64, stores ...*taskStore) error {
	if t.streamTime < 0 {
		return nil
	}
	cutoff := t.streamTime - retention
	for _, st := range stores {
		var old [][]byte
		if err := st.scan(st.uncached, nil, nil, func(k, _ []byte) bool {
			if len(k) >= 12 && joinKeyTS(k) < cutoff {
				old = append(old, bytes.Clone(k))
			}
			return true
		}); err != nil {
			return err
		}
		for _, k := range old {
			if err := st.uncached.Delete(k); err != nil {
				return err
			}
		}
	}
	return nil
}

// StreamJoin joins two streams within join windows: each pair of records of
// the same key at most the window apart yields joiner(v1, v2), at the later
// of the two timestamps. Both streams must be co-partitioned.
func StreamJoin[K, V1, V2, R any](a KStream[K, V1], b KStream[K, V2], w JoinWindows, joiner func(V1, V2) R, opts ...Opt) KStream[K, R] {
	return streamStreamJoin(a, b, w, false, false, func(v1 V1, _ bool, v2 V2, _ bool) R { return joiner(v1, v2) }, collect(opts))
}

// StreamLeftJoin is StreamJoin that also emits left records that found no
// match, with ok2 false, once their window (and grace) has closed.
func StreamLeftJoin[K, V1, V2, R any](a KStream[K, V1], b KStream[K, V2], w JoinWindows, joiner func(v1 V1, v2 V2, ok2 bool) R, opts ...Opt) KStream[K, R] {
	return streamStreamJoin(a, b, w, true, false, func(v1 V1, _ bool, v2 V2, ok2 bool) R { return joiner(v1, v2, ok2) }, collect(opts))
}

// StreamOuterJoin emits matches and, once their windows close, unmatched
// records of either side (with ok false for the missing one).
func StreamOuterJoin[K, V1, V2, R any](a KStream[K, V1], b KStream[K, V2], w JoinWindows, joiner func(v1 V1, ok1 bool, v2 V2, ok2 bool) R, opts ...Opt) KStream[K, R] {
	return streamStreamJoin(a, b, w, true, true, joiner, collect(opts))
}
