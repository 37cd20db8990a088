package stream

import (
	"encoding/binary"
	"fmt"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/window"
)

// SessionWindowedKStream is a grouped stream cut into session windows.
// Create it with SessionWindowedBy.
type SessionWindowedKStream[K, V any] struct {
	g    KGroupedStream[K, V]
	spec window.Sessions
}

// SessionWindowedBy groups records of each key into sessions: a record
// within the inactivity gap of a session joins it, and a record bridging two
// sessions merges them.
func SessionWindowedBy[K, V any](g KGroupedStream[K, V], spec window.Sessions) SessionWindowedKStream[K, V] {
	if spec.Gap() <= 0 {
		g.s.b.fail(buildErr("session-windowed-by", "the inactivity gap must be positive"))
	}
	return SessionWindowedKStream[K, V]{g: g, spec: spec}
}

// SessionWindowedKTable is the result of a session aggregation, keyed by
// window.Windowed[K] with the session's first and last record times as the
// window. When sessions merge, the merged-away sessions are deleted
// downstream (null values), as in Kafka Streams.
type SessionWindowedKTable[K, V any] struct {
	t KTable[window.Windowed[K], V]
}

// ToStream turns the session table's updates into a stream; To writes keys
// in Kafka Streams' SessionWindowedSerde format.
func (w SessionWindowedKTable[K, V]) ToStream(opts ...Opt) WindowedKStream[K, V] {
	return WindowedKStream[K, V]{s: w.t.ToStream(opts...)}
}

// StoreName returns the session store's name.
func (w SessionWindowedKTable[K, V]) StoreName() string { return w.t.store }

// sessionKey is the store key of a session: length-prefixed key bytes, end,
// start (so a key's sessions are one prefix, in end order).
func sessionKey(k []byte, win window.Window) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(k)))
	b = append(b, k...)
	b = binary.BigEndian.AppendUint64(b, uint64(win.End))
	return binary.BigEndian.AppendUint64(b, uint64(win.Start))
}

func sessionAggregation[K, V, A any](sw SessionWindowedKStream[K, V], prefix string, aSerde serde.Serde[A], opts []Opt,
	init func() A, add func(K, V, A) A, merge func(K, A, A) A) SessionWindowedKTable[K, A] {
	g := sw.g
	o := g.o
	for _, op := range opts {
		op.applyOp(&o)
	}
	s := g.s
	b := s.b
	storeName := o.storeName(fmt.Sprintf("KSTREAM-SESSION-%s-STATE-STORE-%010d", prefix, b.seq))
	if s.keyChanged {
		s = repartition(s, storeName, o)
	}
	gap, grace := sw.spec.Gap(), sw.spec.GraceMs()
	ks := s.kSerde
	n, out := attach(s, "KSTREAM-SESSION-"+prefix, opOpts{name: o.name}, func(t *task, _ *node, next procFn[window.Windowed[K], Change[A]]) procFn[K, V] {
		st := t.stores[storeName]
		return func(r rec[K, V]) {
			kb, err := ks.AppendEncode(nil, r.key)
			if err != nil {
				t.fail(fmt.Errorf("session: serialize key: %w", err))
				return
			}
			merged := window.Window{Start: r.ts, End: r.ts}
			agg := init()
			type old struct {
				key []byte
				win window.Window
				agg A
			}
			var olds []old
			// The sessions this record joins or bridges: ending at most gap
			// before it, starting at most gap after it.
			err = st.fetchSessions(kb, r.ts-gap, r.ts+gap, func(win window.Window, sv []byte) bool {
				a, err := aSerde.Decode(sv)
				if err != nil {
					return true
				}
				olds = append(olds, old{sessionKey(kb, win), win, a})
				return true
			})
			if err != nil {
				t.fail(err)
				return
			}
			for _, ol := range olds {
				merged.Start = min(merged.Start, ol.win.Start)
				merged.End = max(merged.End, ol.win.End)
			}
			if merged.End+grace < t.streamTime-gap && len(olds) == 0 {
				// Every session this record could start or join is closed.
				t.dropLate()
				return
			}
			for i, ol := range olds {
				if i == 0 {
					agg = ol.agg
				} else {
					agg = merge(r.key, agg, ol.agg)
				}
			}
			agg = add(r.key, r.value, agg)
			for _, ol := range olds {
				if ol.win == merged {
					continue
				}
				if err := st.delete(ol.key); err != nil {
					t.fail(err)
					return
				}
				next(rec[window.Windowed[K], Change[A]]{key: window.Windowed[K]{Key: r.key, Window: ol.win},
					value: Change[A]{Old: ol.agg, HasOld: true}, ts: r.ts})
			}
			ab, err := aSerde.AppendEncode(nil, agg)
			if err != nil {
				t.fail(err)
				return
			}
			if err := st.put(sessionKey(kb, merged), ab); err != nil {
				t.fail(err)
				return
			}
			c := Change[A]{New: agg, HasNew: true}
			for _, ol := range olds {
				if ol.win == merged {
					c.Old, c.HasOld = ol.agg, true
				}
			}
			next(rec[window.Windowed[K], Change[A]]{key: window.Windowed[K]{Key: r.key, Window: merged}, value: c, ts: r.ts, headers: r.headers})
		}
	})
	n.stores = []string{storeName}
	if ks == nil {
		n.missing = append(n.missing, "key")
	}
	if aSerde == nil {
		n.missing = append(n.missing, "aggregate value")
	}
	b.addStore(&storeDef{name: storeName, owner: n, persistent: !o.inMemory, changelog: !o.noLog, session: true, retentionMs: gap + grace})
	var wks serde.Serde[window.Windowed[K]]
	if ks != nil {
		wks = window.SessionKeySerde(ks)
	}
	return SessionWindowedKTable[K, A]{t: KTable[window.Windowed[K], A]{b: b, n: n, out: out, kSerde: wks, vSerde: aSerde, store: storeName}}
}

// SessionCount counts the records of each session.
func SessionCount[K, V any](sw SessionWindowedKStream[K, V], opts ...Opt) SessionWindowedKTable[K, int64] {
	return sessionAggregation(sw, "COUNT", serde.Int64(), opts, func() int64 { return 0 },
		func(_ K, _ V, a int64) int64 { return a + 1 }, func(_ K, a, b int64) int64 { return a + b })
}

// SessionAggregate folds each session's values; merger combines the
// aggregates of sessions that a record merges.
func SessionAggregate[K, V, A any](sw SessionWindowedKStream[K, V], init func() A, agg func(K, V, A) A, merger func(K, A, A) A, aSerde serde.Serde[A], opts ...Opt) SessionWindowedKTable[K, A] {
	return sessionAggregation(sw, "AGGREGATE", aSerde, opts, init, agg, merger)
}
