package stream

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/table"
	"github.com/sluicehq/sluice/window"
)

// SlidingWindowedKStream is a grouped stream cut into sliding windows,
// ready to aggregate. Create it with SlidingWindowedBy.
type SlidingWindowedKStream[K, V any] struct {
	g    KGroupedStream[K, V]
	spec window.SlidingSpec
}

// SlidingWindowedBy windows a grouped stream with sliding windows (Kafka
// Streams' windowedBy(SlidingWindows), KIP-450): every record has a window
// ending at it that aggregates the records of its key in the time
// difference before it, and a window starting just after it once later
// records fall there. The result is a WindowedKTable whose windows are
// closed intervals [Start, End] with End = Start + time difference (see
// window.SlidingSpec); write or read its keys with window.KeySerde and the
// time difference as the size.
//
// As in Kafka Streams, a record updates every existing window that holds
// it, and creates its own left window and, when needed, its right window
// and the right window of the record before it; windows never hold no
// record. A window takes updates while its end is at least stream time
// minus the grace period: a record none of whose windows are open is
// dropped, and each window update refused because the window has closed is
// counted in DroppedLateRecords (Kafka Streams counts both in
// dropped-records). Each update goes downstream with the timestamp of the
// window's latest record.
//
// The store holds, per window, the timestamp of its latest record (8 bytes,
// big-endian) followed by the aggregate (Kafka Streams' ValueAndTimestamp
// layout); interactive queries and streamtest.Store see the aggregate only.
// Unlike Kafka Streams, the store is not cached: every update is forwarded
// and logged at once (as for session windows).
func SlidingWindowedBy[K, V any](g KGroupedStream[K, V], spec window.SlidingSpec) SlidingWindowedKStream[K, V] {
	if err := spec.Validate(); err != nil {
		g.s.b.fail(buildErr("sliding-windowed-by", "%v", err))
	}
	return SlidingWindowedKStream[K, V]{g: g, spec: spec}
}

// SlidingCount counts the records of each key per sliding window.
func SlidingCount[K, V any](sw SlidingWindowedKStream[K, V], opts ...Opt) WindowedKTable[K, int64] {
	return slidingAggregation(sw, "AGGREGATE", serde.Int64(), opts, func(_ K, _ V, old int64, _ bool) int64 {
		return old + 1
	})
}

// Reduce combines the values of each key per sliding window (a window's
// first value is taken as it is).
func (sw SlidingWindowedKStream[K, V]) Reduce(fn func(agg, v V) V, opts ...Opt) WindowedKTable[K, V] {
	return slidingAggregation(sw, "REDUCE", sw.g.s.vSerde, opts, func(_ K, v V, old V, hasOld bool) V {
		if !hasOld {
			return v
		}
		return fn(old, v)
	})
}

// SlidingAggregate folds the values of each key per sliding window,
// starting from init() for each window.
func SlidingAggregate[K, V, A any](sw SlidingWindowedKStream[K, V], init func() A, fn func(k K, v V, agg A) A, aSerde serde.Serde[A], opts ...Opt) WindowedKTable[K, A] {
	return slidingAggregation(sw, "AGGREGATE", aSerde, opts, func(k K, v V, old A, hasOld bool) A {
		if !hasOld {
			old = init()
		}
		return fn(k, v, old)
	})
}

func slidingAggregation[K, V, A any](sw SlidingWindowedKStream[K, V], prefix string, aSerde serde.Serde[A], opts []Opt,
	add func(k K, v V, old A, hasOld bool) A) WindowedKTable[K, A] {
	g := sw.g
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
	ks := s.kSerde
	diff, grace := sw.spec.TimeDifference(), sw.spec.GraceMs()
	n, out := attach(s, "KSTREAM-"+prefix, opOpts{name: o.name}, func(t *task, _ *node, next procFn[window.Windowed[K], Change[A]]) procFn[K, V] {
		p := &slidingProc[K, V, A]{t: t, st: t.stores[storeName], ks: ks, as: aSerde, diff: diff, grace: grace, add: add, next: next}
		return p.process
	})
	n.stores = []string{storeName}
	if ks == nil {
		n.missing = append(n.missing, "key")
	}
	if aSerde == nil {
		n.missing = append(n.missing, "aggregate value")
	}
	b.addStore(&storeDef{name: storeName, owner: n, persistent: !o.inMemory, changelog: !o.noLog,
		windowed: true, retentionMs: sw.spec.RetentionMs(), windowSizeMs: diff, valueTimestamps: true})
	var wks serde.Serde[window.Windowed[K]]
	if ks != nil {
		wks = window.KeySerde(ks, msDuration(diff))
	}
	tbl := KTable[window.Windowed[K], A]{b: b, n: n, out: out, kSerde: wks, vSerde: aSerde, store: storeName}
	// Suppress(UntilWindowCloses) emits a window once stream time reaches
	// End + grace. A sliding window includes its end, so it still takes
	// records at stream time End + grace and closes 1 ms later: the
	// suppression waits for End + grace + 1. Only Suppress reads this spec.
	closing := window.Tumbling(msDuration(diff)).Grace(msDuration(grace + 1))
	return WindowedKTable[K, A]{t: tbl, spec: closing}
}

// slidingWin is one stored sliding window of the record's key.
type slidingWin[A any] struct {
	start int64
	maxTs int64 // timestamp of the window's latest record
	agg   A
}

// slidingProc is the per-task processor of a sliding-window aggregation.
// It follows Kafka Streams' KStreamSlidingWindowAggregate (its forward-
// iterating variant), so the same input gives the same windows, values and
// timestamps.
type slidingProc[K, V, A any] struct {
	t          *task
	st         *taskStore
	ks         serde.Serde[K]
	as         serde.Serde[A]
	diff       int64
	grace      int64
	add        func(k K, v V, old A, hasOld bool) A
	next       procFn[window.Windowed[K], Change[A]]
	kb, keyBuf []byte
	valBuf     []byte
	wins       []slidingWin[A]
}

func (p *slidingProc[K, V, A]) process(r rec[K, V]) {
	t := p.t
	if r.ts < 0 {
		// No window holds negative time (tumbling and hopping windows
		// skip such records too).
		return
	}
	closeTime := t.streamTime - p.grace
	if r.ts+1+p.diff <= closeTime {
		// Even the record's right window, the latest one it can be in,
		// has closed.
		t.dropLate()
		return
	}
	var err error
	if p.kb, err = p.ks.AppendEncode(p.kb[:0], r.key); err != nil {
		t.fail(fmt.Errorf("sliding window: serialize key: %w", err))
		return
	}
	// The windows that can matter: those ending up to a time difference
	// before the record's left window starts, up to its right window.
	p.wins = p.wins[:0]
	err = fetchWindows(p.st, p.kb, max(0, r.ts-2*p.diff), r.ts+1, func(start int64, v []byte) error {
		if len(v) < 8 {
			return fmt.Errorf("window value of %d bytes, want at least 8", len(v))
		}
		agg, err := p.as.Decode(bytes.Clone(v[8:]))
		if err != nil {
			return err
		}
		p.wins = append(p.wins, slidingWin[A]{start: start, maxTs: int64(binary.BigEndian.Uint64(v)), agg: agg})
		return nil
	})
	if err != nil {
		t.fail(fmt.Errorf("sliding window: store %s: %w", p.st.def.name, err))
		return
	}
	if r.ts < p.diff {
		p.early(r, closeTime)
	} else {
		p.regular(r, closeTime)
	}
}

// regular handles a record at or after the time difference: its left
// window [ts-diff, ts] fits in non-negative time.
func (p *slidingProc[K, V, A]) regular(r rec[K, V], closeTime int64) {
	ts := r.ts
	var (
		before      *slidingWin[A] // the latest window ending before ts
		after       *slidingWin[A] // the latest-starting window holding ts and ending after it
		leftExists  bool           // [ts-diff, ts] is stored (another record's right window)
		rightExists bool           // [ts+1, ts+1+diff] is stored
		prev        int64          // the latest record before ts, as far as the windows tell
		hasPrev     bool
	)
	for i := range p.wins {
		w := &p.wins[i]
		switch end := w.start + p.diff; {
		case end < ts:
			before = w
			prev, hasPrev = w.maxTs, true
		case end == ts:
			leftExists = true
			if w.maxTs < ts {
				prev, hasPrev = w.maxTs, true
			}
			if !p.update(r, w.start, w, true, closeTime) {
				return
			}
		case w.start <= ts:
			after = w
			if !p.update(r, w.start, w, true, closeTime) {
				return
			}
		case w.start == ts+1:
			rightExists = true
		default:
			p.t.fail(fmt.Errorf("sliding window: store %s holds window [%d,%d] outside the fetched range for a record at %d", p.st.def.name, w.start, end, ts))
			return
		}
	}
	// The previous record's right window, if missing, holds only this
	// record: a later record in it would have created it.
	if hasPrev && prev+1+p.diff >= ts && !p.hasWindow(prev+1) {
		if !p.update(r, prev+1, nil, false, closeTime) {
			return
		}
	}
	if !leftExists {
		// The window ending before ts holds exactly the records before ts
		// within the time difference when the latest of them is in range.
		var base *slidingWin[A]
		if hasPrev && prev >= ts-p.diff {
			base = before
		}
		if !p.update(r, ts-p.diff, base, false, closeTime) {
			return
		}
	}
	if !rightExists && after != nil && after.maxTs > ts {
		// after holds no record at or before ts other than those after ts
		// (or a window would start later), so it is the right window's
		// content, without this record.
		p.put(r, ts+1, after.agg, after.maxTs, nil)
	}
}

// early handles a record before the time difference, whose left window
// would start before 0: such records share the window [0, diff] (as in
// Kafka Streams), and get right windows like any other.
func (p *slidingProc[K, V, A]) early(r rec[K, V], closeTime int64) {
	ts := r.ts
	var (
		combined    *slidingWin[A] // [0, diff]
		after       *slidingWin[A]
		rightExists bool
		prev        int64
		hasPrev     bool
	)
	for i := range p.wins {
		w := &p.wins[i]
		switch {
		case w.start == 0:
			combined = w
			if w.maxTs < ts {
				// Otherwise a later record in [0, diff] already created
				// the previous record's right window.
				prev, hasPrev = w.maxTs, true
			}
		case w.start <= ts:
			after = w
			if !p.update(r, w.start, w, true, closeTime) {
				return
			}
		case w.start == ts+1:
			rightExists = true
		default:
			p.t.fail(fmt.Errorf("sliding window: store %s holds window [%d,%d] outside the fetched range for an early record at %d", p.st.def.name, w.start, w.start+p.diff, ts))
			return
		}
	}
	// With no other window holding ts, [0, diff] holds only records
	// after ts if its latest one is after ts: records before and after ts
	// would have made a window starting in (0, ts].
	if after == nil && combined != nil && combined.maxTs > ts {
		after = combined
	}
	if !rightExists && after != nil && after.maxTs > ts {
		p.put(r, ts+1, after.agg, after.maxTs, nil)
	}
	if hasPrev && !p.hasWindow(prev+1) {
		if !p.update(r, prev+1, nil, false, closeTime) {
			return
		}
	}
	p.update(r, 0, combined, combined != nil, closeTime)
}

// hasWindow reports whether a window starting at start was fetched.
func (p *slidingProc[K, V, A]) hasWindow(start int64) bool {
	_, ok := slices.BinarySearchFunc(p.wins, start, func(w slidingWin[A], s int64) int {
		switch {
		case w.start < s:
			return -1
		case w.start > s:
			return 1
		}
		return 0
	})
	return ok
}

// update adds the record to the window starting at start, whose content so
// far is base's (nil: no record), and stores and forwards the result;
// existed says whether the window is stored. A closed window is left alone
// and the refusal counted as late. It returns false after a failure.
func (p *slidingProc[K, V, A]) update(r rec[K, V], start int64, base *slidingWin[A], existed bool, closeTime int64) bool {
	if start+p.diff < closeTime {
		p.t.dropLate()
		return true
	}
	var old A
	maxTs := r.ts
	if base != nil {
		old = base.agg
		maxTs = max(maxTs, base.maxTs)
	}
	agg := p.add(r.key, r.value, old, base != nil)
	var prev *A
	if existed {
		prev = &old
	}
	return p.put(r, start, agg, maxTs, prev)
}

// put stores a window and forwards it, with the timestamp of its latest
// record; old is the value it replaces (nil: a new window).
func (p *slidingProc[K, V, A]) put(r rec[K, V], start int64, agg A, maxTs int64, old *A) bool {
	p.keyBuf = binary.BigEndian.AppendUint64(append(p.keyBuf[:0], p.kb...), uint64(start))
	var err error
	p.valBuf = binary.BigEndian.AppendUint64(p.valBuf[:0], uint64(maxTs))
	if p.valBuf, err = p.as.AppendEncode(p.valBuf, agg); err != nil {
		p.t.fail(fmt.Errorf("sliding window: serialize aggregate for store %s: %w", p.st.def.name, err))
		return false
	}
	if err := p.st.put(p.keyBuf, p.valBuf); err != nil {
		p.t.fail(fmt.Errorf("sliding window: store %s: %w", p.st.def.name, err))
		return false
	}
	c := Change[A]{New: agg, HasNew: true}
	if old != nil {
		c.Old, c.HasOld = *old, true
	}
	p.next(rec[window.Windowed[K], Change[A]]{
		key:   window.Windowed[K]{Key: r.key, Window: window.Window{Start: start, End: start + p.diff}},
		value: c, ts: maxTs, headers: r.headers,
	})
	return true
}

// fetchWindows calls fn, in start order, for the stored windows of the
// encoded key kb that start in [from, to], with their start and stored
// value (valid during the call), through the segmented window store's
// fetch by key and time range.
func fetchWindows(st *taskStore, kb []byte, from, to int64, fn func(start int64, v []byte) error) error {
	var ferr error
	err := st.fetchWindows(kb, from, to, func(start int64, v []byte) bool {
		ferr = fn(start, v)
		return ferr == nil
	})
	if ferr != nil {
		return ferr
	}
	return err
}

// userValue returns what readers outside the owning operator (queries,
// streamtest.Store) see of a stored value: for stores with value
// timestamps, the value after its 8-byte timestamp.
func (d *storeDef) userValue(v []byte) []byte {
	if d.valueTimestamps && len(v) >= 8 {
		return v[8:]
	}
	return v
}

// valueView is a store's query view with the value timestamps stripped.
type valueView struct{ r table.ReadOnly }

func (q valueView) Get(k []byte) ([]byte, error) {
	v, err := q.r.Get(k)
	if err != nil || len(v) < 8 {
		return v, err
	}
	return v[8:], nil
}

func (q valueView) Range(from, to []byte) *table.Iter[[]byte, []byte] {
	return q.strip(q.r.Range(from, to))
}

func (q valueView) Prefix(p []byte) *table.Iter[[]byte, []byte] { return q.strip(q.r.Prefix(p)) }

func (q valueView) All() *table.Iter[[]byte, []byte] { return q.strip(q.r.All()) }

func (valueView) strip(it *table.Iter[[]byte, []byte]) *table.Iter[[]byte, []byte] {
	return table.NewIter(func(yield func(k, v []byte) bool) error {
		for k, v := range it.All() {
			if len(v) >= 8 {
				v = v[8:]
			}
			if !yield(k, v) {
				break
			}
		}
		return it.Err()
	})
}
