package stream

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/window"
)

// TimeWindowedKStream is a grouped stream cut into fixed-size time windows
// (tumbling or hopping), ready to aggregate. Create it with WindowedBy.
type TimeWindowedKStream[K, V any] struct {
	g    KGroupedStream[K, V]
	spec window.Spec
}

// WindowedBy windows a grouped stream by event time.
func WindowedBy[K, V any](g KGroupedStream[K, V], spec window.Spec) TimeWindowedKStream[K, V] {
	if err := spec.Validate(); err != nil {
		g.s.b.fail(buildErr("windowed-by", "%v", err))
	}
	return TimeWindowedKStream[K, V]{g: g, spec: spec}
}

// WindowedKTable is the result of a windowed aggregation: a table keyed by
// window.Windowed[K]. Leave the windowed world with ToStream then Unwindow,
// or write it with ToStream().To (keys in Kafka Streams' windowed format).
type WindowedKTable[K, V any] struct {
	t    KTable[window.Windowed[K], V]
	spec window.Spec
}

// StoreName returns the window store's name.
func (w WindowedKTable[K, V]) StoreName() string { return w.t.store }

// WindowedKStream is a stream of windowed results.
type WindowedKStream[K, V any] struct {
	s KStream[window.Windowed[K], V]
}

// ToStream turns the windowed table's updates into a stream.
func (w WindowedKTable[K, V]) ToStream(opts ...Opt) WindowedKStream[K, V] {
	return WindowedKStream[K, V]{s: w.t.ToStream(opts...)}
}

// To writes the windowed results to a topic: keys in Kafka Streams'
// TimeWindowedSerde format (key bytes, then the window start).
func (w WindowedKStream[K, V]) To(topic string, opts ...Opt) { w.s.To(topic, opts...) }

// Peek calls fn for every windowed result.
func (w WindowedKStream[K, V]) Peek(fn func(window.Windowed[K], V)) WindowedKStream[K, V] {
	return WindowedKStream[K, V]{s: w.s.Peek(fn)}
}

// Foreach calls fn for every windowed result.
func (w WindowedKStream[K, V]) Foreach(fn func(window.Windowed[K], V)) { w.s.Foreach(fn) }

// Unwindow maps windowed results to plain records, leaving the windowed
// world (e.g. key = the page, value = the count with its window start).
func Unwindow[K, V, K2, V2 any](w WindowedKStream[K, V], fn func(window.Windowed[K], V) (K2, V2), opts ...Opt) KStream[K2, V2] {
	return Map(w.s, fn, opts...)
}

// windowedAggregation expands each record into the windows it falls in,
// drops records too late for a window (stream time past window end +
// grace, counted in the app's metrics), and aggregates per window.
func windowedAggregation[K, V, A any](w TimeWindowedKStream[K, V], prefix string, aSerde serde.Serde[A], opts []Opt,
	apply func(k window.Windowed[K], v V, old A, hasOld bool) A) WindowedKTable[K, A] {
	g := w.g
	o := g.o
	for _, op := range opts {
		op.applyOp(&o)
	}
	s := g.s
	b := s.b
	storeName := o.storeName(fmt.Sprintf("KSTREAM-%s-STATE-STORE-%010d", prefix, b.seq))
	if s.keyChanged {
		s = repartition(s, storeName, o)
	}
	spec := w.spec
	n, out := attach(s, "KSTREAM-WINDOWED", opOpts{}, func(t *task, _ *node, next procFn[window.Windowed[K], V]) procFn[K, V] {
		return func(r rec[K, V]) {
			for _, win := range spec.WindowsFor(r.ts) {
				if win.End+spec.GraceMs() <= t.streamTime {
					t.dropLate()
					continue
				}
				next(rec[window.Windowed[K], V]{key: window.Windowed[K]{Key: r.key, Window: win}, value: r.value, ts: r.ts, headers: r.headers})
			}
		}
	})
	var wks serde.Serde[window.Windowed[K]]
	if s.kSerde != nil {
		wks = window.KeySerde(s.kSerde, msDuration(spec.Size()))
	}
	expanded := KStream[window.Windowed[K], V]{b: b, n: n, out: out, kSerde: wks, vSerde: s.vSerde}
	o.store = storeName
	tbl := aggregation(KGroupedStream[window.Windowed[K], V]{s: expanded, o: o}, prefix, aSerde, nil, apply)
	if sd := b.stores[storeName]; sd != nil {
		sd.retentionMs = spec.RetentionMs()
		sd.windowSizeMs = spec.Size()
		sd.windowed = true
	}
	return WindowedKTable[K, A]{t: tbl, spec: spec}
}

// WindowedCount counts the records of each key per window.
func WindowedCount[K, V any](w TimeWindowedKStream[K, V], opts ...Opt) WindowedKTable[K, int64] {
	return windowedAggregation(w, "AGGREGATE", serde.Int64(), opts, func(_ window.Windowed[K], _ V, old int64, _ bool) int64 {
		return old + 1
	})
}

// Reduce combines the values of each key per window.
func (w TimeWindowedKStream[K, V]) Reduce(fn func(agg, v V) V, opts ...Opt) WindowedKTable[K, V] {
	return windowedAggregation(w, "REDUCE", w.g.s.vSerde, opts, func(_ window.Windowed[K], v V, old V, hasOld bool) V {
		if !hasOld {
			return v
		}
		return fn(old, v)
	})
}

// WindowedAggregate folds the values of each key per window, starting from
// init().
func WindowedAggregate[K, V, A any](w TimeWindowedKStream[K, V], init func() A, fn func(k K, v V, agg A) A, aSerde serde.Serde[A], opts ...Opt) WindowedKTable[K, A] {
	return windowedAggregation(w, "AGGREGATE", aSerde, opts, func(k window.Windowed[K], v V, old A, hasOld bool) A {
		if !hasOld {
			old = init()
		}
		return fn(k.Key, v, old)
	})
}

func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
