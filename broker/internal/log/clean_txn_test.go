package log_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/broker/internal/log"
	"github.com/sluicehq/sluice/broker/internal/records"
	"github.com/sluicehq/sluice/broker/internal/records/recordstest"
)

// txnWriter appends the batches of transactional producers, as the
// partition layer would (the log itself checks no sequence).
type txnWriter struct {
	t   testing.TB
	l   *log.Log
	clk *clock
	seq map[int64]int32
}

func newTxnWriter(t testing.TB, l *log.Log, clk *clock) *txnWriter {
	return &txnWriter{t: t, l: l, clk: clk, seq: map[int64]int32{}}
}

// data appends a batch of producer pid (transactional unless pid < 0) with
// the given key=value records.
func (w *txnWriter) data(pid int64, kvs ...string) int64 {
	w.t.Helper()
	b := recordstest.Batch{FirstTimestamp: w.clk.ms.Load(), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	if pid >= 0 {
		b.Transactional, b.ProducerID, b.ProducerEpoch, b.BaseSequence = true, pid, 0, w.seq[pid]
		w.seq[pid] += int32(len(kvs))
	}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		b.Records = append(b.Records, recordstest.Record{Key: []byte(k), Value: []byte(v)})
	}
	r, err := w.l.Append(b.Encode())
	if err != nil {
		w.t.Fatal(err)
	}
	w.clk.advance(1)
	return r.BaseOffset
}

// marker appends a COMMIT or ABORT marker of pid and returns its offset.
func (w *txnWriter) marker(pid int64, commit bool) int64 {
	w.t.Helper()
	r, err := w.l.Append(records.AppendMarker(nil, pid, 0, commit, 0, w.clk.ms.Load()))
	if err != nil {
		w.t.Fatal(err)
	}
	w.clk.advance(1)
	return r.BaseOffset
}

// roll closes the active segment (by segment.ms).
func roll(t testing.TB, l *log.Log, clk *clock) {
	t.Helper()
	n := l.NumSegments()
	c := l.Config()
	ms := c.SegmentMs
	c.SegmentMs = 1
	l.SetConfig(c)
	clk.advance(10)
	if _, err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	c.SegmentMs = ms
	l.SetConfig(c)
	if l.NumSegments() != n+1 {
		t.Fatalf("%d segments after a roll, want %d", l.NumSegments(), n+1)
	}
}

// batchInfo is a batch header as a test sees it.
type batchInfo struct {
	base    int64
	n       int32
	pid     int64
	control bool
	horizon bool
	commit  bool // for a control batch
	txn     bool
	segBase int64
	lastOff int64
}

// scanBatches returns the log's batches in order, with the base offset of
// the segment holding each (from the segment files' names).
func scanBatches(t testing.TB, l *log.Log) []batchInfo {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(l.Dir(), "*.log"))
	var bases []int64
	for _, n := range names {
		var b int64
		fmt.Sscanf(filepath.Base(n), "%d", &b)
		bases = append(bases, b)
	}
	slices.Sort(bases)
	var out []batchInfo
	for _, b := range readAll(t, l, l.StartOffset(), 1<<20) {
		h, err := records.CheckCRC(b)
		if err != nil {
			t.Fatal(err)
		}
		i, found := slices.BinarySearch(bases, h.BaseOffset)
		if !found {
			i--
		}
		bi := batchInfo{base: h.BaseOffset, n: h.NumRecords, pid: h.ProducerID, control: h.IsControl(),
			horizon: h.HasDeleteHorizon(), txn: h.IsTransactional(), segBase: bases[i], lastOff: h.LastOffset()}
		if h.IsControl() {
			typ, ok := records.ControlType(b)
			if !ok {
				t.Fatalf("control batch at %d without a control record", h.BaseOffset)
			}
			bi.commit = typ == records.ControlCommit
		}
		out = append(out, bi)
	}
	return out
}

// abortedTxn is an entry of the aborted-transaction index.
type abortedTxn struct{ pid, first, last int64 }

// rebuildTxns rebuilds the transaction state from the batch headers the
// way the partition layer does at startup (cluster.newPartition): a
// transactional data batch opens its producer's transaction, the
// producer's next marker closes it (an ABORT recording it in the aborted
// index). It returns the last stable offset and the aborted index.
func rebuildTxns(t testing.TB, l *log.Log) (lso int64, aborted []abortedTxn) {
	t.Helper()
	ongoing := map[int64]int64{}
	for _, b := range scanBatches(t, l) {
		switch {
		case b.pid < 0:
		case b.control:
			if first, ok := ongoing[b.pid]; ok {
				if !b.commit {
					aborted = append(aborted, abortedTxn{b.pid, first, b.base})
				}
				delete(ongoing, b.pid)
			}
		case b.txn:
			if _, ok := ongoing[b.pid]; !ok {
				ongoing[b.pid] = b.base
			}
		}
	}
	lso = l.EndOffset()
	for _, f := range ongoing {
		lso = min(lso, f)
	}
	return lso, aborted
}

// readCommitted returns the records a read_committed consumer reads below
// the last stable offset (Kafka's consumer algorithm with the aborted
// index of rebuildTxns): no control records, no records of aborted
// transactions.
func readCommitted(t testing.TB, l *log.Log) []rec {
	t.Helper()
	lso, aborted := rebuildTxns(t, l)
	var out []rec
	for _, b := range readAll(t, l, l.StartOffset(), 1<<20) {
		h, _ := records.ParseHeader(b)
		if h.BaseOffset >= lso || h.IsControl() {
			continue
		}
		if h.IsTransactional() && slices.ContainsFunc(aborted, func(a abortedTxn) bool {
			return a.pid == h.ProducerID && a.first <= h.BaseOffset && h.BaseOffset < a.last
		}) {
			continue
		}
		err := records.Records(b, nil, 1<<26, func(r records.Record) bool {
			out = append(out, rec{h.BaseOffset + int64(r.OffsetDelta), string(r.Key), string(r.Value), r.ValueNull,
				h.FirstTimestamp + r.TimestampDelta})
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func markersAt(bs []batchInfo) []int64 {
	var out []int64
	for _, b := range bs {
		if b.control {
			out = append(out, b.base)
		}
	}
	return out
}

func findBatch(t testing.TB, bs []batchInfo, base int64) (batchInfo, bool) {
	t.Helper()
	for _, b := range bs {
		if b.base == base {
			return b, true
		}
	}
	return batchInfo{}, false
}

// TestCleanTxnMarkers checks the marker rules on one closed segment: the
// markers of transactions whose data all went (superseded, or aborted) are
// stamped by a first pass and removed by a pass at their delete horizon;
// a marker whose transaction keeps data stays, and so does the last batch
// of a producer in its segment.
func TestCleanTxnMarkers(t *testing.T) {
	clk := newClock(1_000_000)
	cfg := compactConfig()
	cfg.SegmentBytes = 1 << 20
	dir := t.TempDir()
	l := open(t, dir, cfg, withClock(clk))
	w := newTxnWriter(t, l, clk)

	w.data(1, "a=1", "b=1")
	c1 := w.marker(1, true) // a and b superseded: empty
	w.data(1, "a=2")
	c2 := w.marker(1, true) // empty
	w.data(2, "e=1")
	c5 := w.marker(2, true) // empty, but producer 2's last batch here
	w.data(1, "c=x")
	a3 := w.marker(1, false) // aborted: its data goes, so empty
	w.data(1, "d=1")
	c4 := w.marker(1, true) // d stays: kept
	w.data(-1, "e=2")
	w.data(1, "a=3", "b=3")
	c6 := w.marker(1, true) // kept (data), and producer 1's last
	roll(t, l, clk)
	w.data(-1, "z=1") // the active segment

	beforeView := readCommitted(t, l)
	active := activeBase(t, l, nil)
	wantView := latestBelow(beforeView, active, false)
	check := func(what string, wantMarkers []int64, stamped []int64) {
		t.Helper()
		bs := scanBatches(t, l)
		if got := markersAt(bs); !slices.Equal(got, wantMarkers) {
			t.Fatalf("%s: markers at %v, want %v", what, got, wantMarkers)
		}
		for _, m := range wantMarkers {
			b, _ := findBatch(t, bs, m)
			if b.horizon != slices.Contains(stamped, m) {
				t.Fatalf("%s: marker at %d: delete horizon %v", what, m, b.horizon)
			}
		}
		if lso, _ := rebuildTxns(t, l); lso != l.EndOffset() {
			t.Fatalf("%s: last stable offset %d, end offset %d", what, lso, l.EndOffset())
		}
		equalRecs(t, what+": read_committed", readCommitted(t, l), wantView)
	}

	st, err := l.Clean()
	if err != nil {
		t.Fatal(err)
	}
	if st.MarkersRemoved != 0 {
		t.Fatalf("first pass removed %d markers", st.MarkersRemoved)
	}
	if !slices.Equal(st.EmptyAborts, []int64{a3}) {
		t.Fatalf("first pass: empty aborts %v, want [%d]", st.EmptyAborts, a3)
	}
	all := []int64{c1, c2, c5, a3, c4, c6}
	check("first pass", all, []int64{c1, c2, a3})
	if _, must := l.CleanableRatio(); must {
		t.Fatal("mustClean before the markers' horizon")
	}

	// Before the horizon, across a reopen: nothing changes.
	l.Close()
	l = open(t, dir, cfg, withClock(clk))
	clk.advance(cfg.DeleteRetentionMs - 1)
	if st, err = l.Clean(); err != nil || st.MarkersRemoved != 0 || !slices.Equal(st.EmptyAborts, []int64{a3}) {
		t.Fatalf("before the horizon: %+v, %v", st, err)
	}
	check("before the horizon", all, []int64{c1, c2, a3})

	// At the horizon, the pass is due by itself and removes them.
	clk.advance(1)
	if _, must := l.CleanableRatio(); !must {
		t.Fatal("markers' horizon reached but not mustClean")
	}
	st, ran, err := l.MaybeClean()
	if err != nil || !ran {
		t.Fatalf("at the horizon: ran %v, %v", ran, err)
	}
	if st.MarkersRemoved != 3 || !slices.Equal(st.EmptyAborts, []int64{a3}) {
		t.Fatalf("at the horizon: %+v, want 3 markers removed and empty aborts [%d]", st, a3)
	}
	check("at the horizon", []int64{c5, c4, c6}, nil)
	if _, must := l.CleanableRatio(); must {
		t.Fatal("mustClean with nothing left to do")
	}

	l.Close()
	l = open(t, dir, cfg, withClock(clk))
	check("reopened", []int64{c5, c4, c6}, nil)
}

// TestCleanTxnMarkerAfterEmptyBatch checks that a marker stays while an
// empty batch of its transaction (kept for producer state: the producer's
// last batch in its segment) is before it, and goes once that batch has.
func TestCleanTxnMarkerAfterEmptyBatch(t *testing.T) {
	clk := newClock(1_000_000)
	cfg := compactConfig()
	cfg.SegmentBytes = 1 << 20
	dir := t.TempDir()
	l := open(t, dir, cfg, withClock(clk))
	w := newTxnWriter(t, l, clk)

	d := w.data(3, "f=1") // producer 3's last batch in the first segment
	roll(t, l, clk)
	m := w.marker(3, true)
	w.data(3, "g=1")
	w.marker(3, true) // producer 3's last batch in the second segment
	w.data(-1, "f=2")
	roll(t, l, clk)
	w.data(-1, "z=1")
	view := readCommitted(t, l)
	wantView := latestBelow(view, activeBase(t, l, nil), false)

	if _, err := l.Clean(); err != nil {
		t.Fatal(err)
	}
	bs := scanBatches(t, l)
	if b, ok := findBatch(t, bs, d); !ok || b.n != 0 || !b.txn {
		t.Fatalf("first pass: batch at %d: %+v, %v; want an empty transactional batch", d, b, ok)
	}
	if b, ok := findBatch(t, bs, m); !ok || b.horizon {
		t.Fatalf("first pass: marker at %d: %+v, %v; want it untouched", m, b, ok)
	}
	if lso, _ := rebuildTxns(t, l); lso != l.EndOffset() {
		t.Fatalf("first pass: last stable offset %d, end offset %d", lso, l.EndOffset())
	}
	equalRecs(t, "first pass", readCommitted(t, l), wantView)

	// The two segments are now one: the empty batch goes, the marker is
	// stamped, then removed at its horizon.
	if _, err := l.Clean(); err != nil {
		t.Fatal(err)
	}
	bs = scanBatches(t, l)
	if _, ok := findBatch(t, bs, d); ok {
		t.Fatalf("second pass: empty batch at %d kept", d)
	}
	if b, ok := findBatch(t, bs, m); !ok || !b.horizon {
		t.Fatalf("second pass: marker at %d: %+v, %v; want it stamped", m, b, ok)
	}
	clk.advance(cfg.DeleteRetentionMs)
	if _, err := l.Clean(); err != nil {
		t.Fatal(err)
	}
	if _, ok := findBatch(t, scanBatches(t, l), m); ok {
		t.Fatalf("third pass: marker at %d kept", m)
	}
	l.Close()
	l = open(t, dir, cfg, withClock(clk))
	if lso, _ := rebuildTxns(t, l); lso != l.EndOffset() {
		t.Fatalf("reopened: last stable offset %d, end offset %d", lso, l.EndOffset())
	}
	equalRecs(t, "reopened", readCommitted(t, l), wantView)
}

// TestCleanTxnOpen checks that markers at or past the start of an open
// transaction are left alone, and the open transaction stays open.
func TestCleanTxnOpen(t *testing.T) {
	clk := newClock(1_000_000)
	cfg := compactConfig()
	cfg.SegmentBytes = 1 << 20
	l := open(t, t.TempDir(), cfg, withClock(clk))
	w := newTxnWriter(t, l, clk)
	w.data(1, "a=1")
	w.marker(1, true) // a=1 stays: a=2 is past the dirty section
	w.data(1, "q=0")
	w.marker(1, true)          // producer 1's last
	openAt := w.data(2, "a=2") // never committed
	w.data(1, "a=3")
	late := w.marker(1, true) // past the first unstable offset
	w.data(1, "q=1")
	w.marker(1, true)
	roll(t, l, clk)
	w.data(-1, "z=1")
	for range 3 {
		if _, err := l.Clean(); err != nil {
			t.Fatal(err)
		}
		clk.advance(cfg.DeleteRetentionMs)
	}
	bs := scanBatches(t, l)
	if lso, _ := rebuildTxns(t, l); lso != openAt {
		t.Fatalf("last stable offset %d, want %d", lso, openAt)
	}
	if b, ok := findBatch(t, bs, late); !ok || b.horizon {
		t.Fatalf("marker at %d past the open transaction: %+v, %v", late, b, ok)
	}
}

// TestCleanTxnProperty runs passes over random interleavings of
// transactional producers (committing or aborting) and plain writes and
// checks after each pass and a reopen that the rebuilt transaction state
// has nothing open, read_committed reads are the compaction of those
// before, and, once the horizons have passed, that the only markers left
// are those whose transaction kept a batch and producers' last batches in
// their segments.
func TestCleanTxnProperty(t *testing.T) {
	for seed := range uint64(12) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 9))
			clk := newClock(1_000_000)
			cfg := compactConfig()
			dir := t.TempDir()
			l := open(t, dir, cfg, withClock(clk))
			appendRandomTxn(t, l, rng, clk, 200+rng.IntN(200), 3+rng.IntN(20))
			if l.NumSegments() < 4 {
				t.Fatalf("only %d segments", l.NumSegments())
			}
			view := readCommitted(t, l)
			want := latestBelow(view, activeBase(t, l, nil), false)
			nMarkers := len(markersAt(scanBatches(t, l)))
			for pass := range 4 {
				if _, err := l.Clean(); err != nil {
					t.Fatal(err)
				}
				if pass%2 == 1 {
					l.Close()
					l = open(t, dir, cfg, withClock(clk))
				}
				if lso, _ := rebuildTxns(t, l); lso != l.EndOffset() {
					t.Fatalf("pass %d: last stable offset %d, end offset %d", pass, lso, l.EndOffset())
				}
				equalRecs(t, fmt.Sprint("pass ", pass), readCommitted(t, l), want)
				checkReadable(t, l, want)
				clk.advance(cfg.DeleteRetentionMs)
			}
			// Passes merge the cleaned segments, which can make more
			// markers removable: let it settle.
			for range 6 {
				if _, err := l.Clean(); err != nil {
					t.Fatal(err)
				}
				clk.advance(cfg.DeleteRetentionMs)
			}
			if lso, _ := rebuildTxns(t, l); lso != l.EndOffset() {
				t.Fatalf("settled: last stable offset %d, end offset %d", lso, l.EndOffset())
			}
			equalRecs(t, "settled", readCommitted(t, l), want)
			bs := scanBatches(t, l)
			lastOf := map[[2]int64]int64{} // segment, pid -> last batch
			for _, b := range bs {
				if b.pid >= 0 {
					lastOf[[2]int64{b.segBase, b.pid}] = b.base
				}
			}
			kept := map[int64]bool{}
			left := 0
			for _, b := range bs {
				switch {
				case b.pid < 0:
				case b.control:
					left++
					if !kept[b.pid] && lastOf[[2]int64{b.segBase, b.pid}] != b.base {
						t.Fatalf("marker at %d of an empty transaction left", b.base)
					}
					delete(kept, b.pid)
				case b.txn:
					kept[b.pid] = true
				}
			}
			if left >= nMarkers {
				t.Fatalf("%d markers left of %d", left, nMarkers)
			}
			t.Logf("%d markers left of %d", left, nMarkers)
		})
	}
}

// appendRandomTxn appends n random batches: plain ones and those of three
// transactional producers, each of whose transactions ends with a COMMIT
// (or one time in four an ABORT) marker, over nkeys keys; every
// transaction is closed at the end, and then the active segment rolled.
func appendRandomTxn(t testing.TB, l *log.Log, rng *rand.Rand, clk *clock, n, nkeys int) {
	t.Helper()
	w := newTxnWriter(t, l, clk)
	open := map[int64]bool{}
	kvs := func() []string {
		var out []string
		for range 1 + rng.IntN(3) {
			out = append(out, fmt.Sprintf("k%d=v%d-%s", rng.IntN(nkeys), rng.Int64(), strings.Repeat("x", rng.IntN(30))))
		}
		return out
	}
	for range n {
		pid := int64(rng.IntN(4)) - 1 // -1: plain
		switch {
		case pid < 0:
			w.data(-1, kvs()...)
		case open[pid] && rng.IntN(3) == 0:
			w.marker(pid, rng.IntN(4) != 0)
			delete(open, pid)
		default:
			w.data(pid, kvs()...)
			open[pid] = true
		}
	}
	pids := make([]int64, 0, len(open))
	for pid := range open {
		pids = append(pids, pid)
	}
	slices.SortFunc(pids, cmp.Compare)
	for _, pid := range pids {
		w.marker(pid, true)
	}
	roll(t, l, clk)
	w.data(-1, "last=1")
}
