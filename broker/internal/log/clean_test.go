package log_test

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluicehq/sluice/broker/internal/log"
	"github.com/sluicehq/sluice/broker/internal/records"
	"github.com/sluicehq/sluice/broker/internal/records/recordstest"
	"github.com/sluicehq/sluice/broker/internal/vfs"
)

func compactConfig() log.Config {
	c := log.DefaultConfig()
	c.SegmentBytes = 2048
	c.IndexIntervalBytes = 128
	c.Compact = true
	c.NoDelete = true
	c.DeleteRetentionMs = 1000
	return c
}

// rec is one record as a reader sees it.
type rec struct {
	Offset    int64
	Key       string
	Value     string
	Tombstone bool
	Timestamp int64
}

// readRecords decodes every record of the log, in offset order, checking
// that every batch is well formed and offsets increase.
func readRecords(t testing.TB, l *log.Log) []rec {
	t.Helper()
	var out []rec
	last := int64(-1)
	for _, b := range readAll(t, l, l.StartOffset(), 1<<20) {
		h, err := records.CheckCRC(b)
		if err != nil {
			t.Fatal(err)
		}
		if h.BaseOffset <= last {
			t.Fatalf("batch at %d after offset %d", h.BaseOffset, last)
		}
		err = records.Records(b, nil, 1<<26, func(r records.Record) bool {
			o := h.BaseOffset + int64(r.OffsetDelta)
			if o <= last {
				t.Fatalf("record at %d after offset %d", o, last)
			}
			last = o
			ts := h.FirstTimestamp + r.TimestampDelta
			if h.LogAppendTime() {
				ts = h.MaxTimestamp
			}
			out = append(out, rec{o, string(r.Key), string(r.Value), r.ValueNull, ts})
			return true
		})
		if err != nil {
			t.Fatalf("batch at %d: %v", h.BaseOffset, err)
		}
		last = max(last, h.LastOffset())
	}
	return out
}

// latestBelow is what a clean with the given clean end must leave: below
// end, the latest record of each key (without tombstones when
// dropTombstones); from end on, everything.
func latestBelow(all []rec, end int64, dropTombstones bool) []rec {
	latest := map[string]int64{}
	for _, r := range all {
		if r.Offset < end {
			latest[r.Key] = r.Offset
		}
	}
	var out []rec
	for _, r := range all {
		if r.Offset >= end || (latest[r.Key] == r.Offset && !(dropTombstones && r.Tombstone)) {
			out = append(out, r)
		}
	}
	return out
}

func equalRecs(t testing.TB, what string, got, want []rec) {
	t.Helper()
	if !slices.Equal(got, want) {
		n := min(len(got), len(want))
		for i := range n {
			if got[i] != want[i] {
				t.Fatalf("%s: record %d is %+v, want %+v (%d records, want %d)", what, i, got[i], want[i], len(got), len(want))
			}
		}
		t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
	}
}

var allCodecs = []int{recordstest.CodecNone, recordstest.CodecGzip, recordstest.CodecSnappy,
	recordstest.CodecSnappyXerial, recordstest.CodecLz4, recordstest.CodecZstd}

// appendRandom appends n random batches of keyed records (about one in six
// a tombstone) over nkeys keys, with random codecs, one ms apart.
func appendRandom(t testing.TB, l *log.Log, rng *rand.Rand, clk *clock, n, nkeys int) {
	t.Helper()
	seq := int32(0)
	for range n {
		b := recordstest.Batch{FirstTimestamp: clk.ms.Load(), Codec: allCodecs[rng.IntN(len(allCodecs))],
			ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
		if rng.IntN(2) == 0 {
			b.ProducerID, b.ProducerEpoch, b.BaseSequence = 7, 0, seq
		}
		for i := range 1 + rng.IntN(4) {
			r := recordstest.Record{TimestampDelta: int64(i), Key: fmt.Appendf(nil, "k%d", rng.IntN(nkeys))}
			if rng.IntN(6) != 0 {
				r.Value = fmt.Appendf(nil, "v%d-%s", rng.Int64(), strings.Repeat("x", rng.IntN(40)))
			}
			if i%3 == 1 {
				r.Headers = []recordstest.Header{{Key: []byte("h"), Value: []byte("v")}}
			}
			b.Records = append(b.Records, r)
		}
		seq += int32(len(b.Records))
		if _, err := l.Append(b.Encode()); err != nil {
			t.Fatal(err)
		}
		clk.advance(1)
	}
}

// checkReadable reads every record of want on its own, by offset.
func checkReadable(t testing.TB, l *log.Log, want []rec) {
	t.Helper()
	for _, r := range want {
		got, err := l.Read(nil, r.Offset, 1, l.EndOffset(), true)
		if err != nil {
			t.Fatalf("read %d: %v", r.Offset, err)
		}
		h, err := records.ParseHeader(got)
		if err != nil || h.BaseOffset > r.Offset || h.LastOffset() < r.Offset {
			t.Fatalf("read %d: batch %+v, %v", r.Offset, h, err)
		}
	}
}

// activeBase returns the active segment's base offset: the last segment
// file's name.
func activeBase(t testing.TB, l *log.Log, _ []rec) int64 {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(l.Dir(), "*.log"))
	slices.Sort(names)
	var base int64
	fmt.Sscanf(filepath.Base(names[len(names)-1]), "%d", &base)
	return base
}

func TestCleanProperty(t *testing.T) {
	for seed := range uint64(16) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			clk := newClock(1_000_000)
			cfg := compactConfig()
			dir := t.TempDir()
			l := open(t, dir, cfg, withClock(clk))
			appendRandom(t, l, rng, clk, 150+rng.IntN(150), 5+rng.IntN(40))
			if l.NumSegments() < 4 {
				t.Fatalf("only %d segments", l.NumSegments())
			}
			before := readRecords(t, l)
			active := activeBase(t, l, before)

			st, err := l.Clean()
			if err != nil {
				t.Fatal(err)
			}
			if st.FirstDirty != 0 || st.CleanEnd != active || st.RecordsRemoved == 0 || st.SegmentsRead == 0 {
				t.Fatalf("stats %+v, active segment at %d", st, active)
			}
			want := latestBelow(before, active, false)
			equalRecs(t, "after clean", readRecords(t, l), want)
			checkReadable(t, l, want)
			if l.FirstDirtyOffset() != active {
				t.Fatalf("first dirty %d, want %d", l.FirstDirtyOffset(), active)
			}

			// Tombstones stay until delete.retention.ms has passed since
			// the first clean, across a reopen.
			l.Close()
			l = open(t, dir, cfg, withClock(clk))
			equalRecs(t, "after reopen", readRecords(t, l), want)
			clk.advance(cfg.DeleteRetentionMs - 1)
			if _, err := l.Clean(); err != nil {
				t.Fatal(err)
			}
			equalRecs(t, "before the horizon", readRecords(t, l), want)
			clk.advance(1)
			st, err = l.Clean()
			if err != nil {
				t.Fatal(err)
			}
			want = latestBelow(before, active, true)
			equalRecs(t, "after the horizon", readRecords(t, l), want)
			checkReadable(t, l, want)
			if l.EndOffset() != before[len(before)-1].Offset+1 {
				t.Fatalf("end offset %d moved", l.EndOffset())
			}

			// More data, then a clean of the new dirty section merges the
			// small cleaned segments and keeps compacting correctly.
			appendRandom(t, l, rng, clk, 100, 20)
			all := readRecords(t, l)
			active = activeBase(t, l, all)
			if _, err := l.Clean(); err != nil {
				t.Fatal(err)
			}
			equalRecs(t, "second round", readRecords(t, l), latestBelow(all, active, false))
			l.Close()
			l = open(t, dir, cfg, withClock(clk))
			equalRecs(t, "second round reopened", readRecords(t, l), latestBelow(all, active, false))
			checkReadable(t, l, latestBelow(all, active, false))
		})
	}
}

func TestCleanNotCompacted(t *testing.T) {
	cfg := compactConfig()
	cfg.Compact = false
	l := open(t, t.TempDir(), cfg)
	appendRandom(t, l, rand.New(rand.NewPCG(1, 1)), newClock(0), 100, 5)
	before := readRecords(t, l)
	if st, err := l.Clean(); err != nil || st.SegmentsRead != 0 {
		t.Fatalf("%+v, %v", st, err)
	}
	if r, must := l.CleanableRatio(); r != 0 || must {
		t.Fatalf("ratio %v, %v", r, must)
	}
	equalRecs(t, "unchanged", readRecords(t, l), before)
}

func TestCleanMinCompactionLag(t *testing.T) {
	clk := newClock(1_000_000)
	cfg := compactConfig()
	cfg.MinCompactionLagMs = 10_000
	l := open(t, t.TempDir(), cfg, withClock(clk))
	rng := rand.New(rand.NewPCG(2, 2))
	appendRandom(t, l, rng, clk, 100, 5) // old
	firstNew := l.EndOffset()
	clk.advance(20_000)
	appendRandom(t, l, rng, clk, 100, 5) // new: within the lag
	before := readRecords(t, l)
	st, err := l.Clean()
	if err != nil {
		t.Fatal(err)
	}
	if st.CleanEnd != firstNew {
		t.Fatalf("clean end %d, want %d (first batch within min.compaction.lag.ms)", st.CleanEnd, firstNew)
	}
	equalRecs(t, "after clean", readRecords(t, l), latestBelow(before, firstNew, false))

	// Once old enough, the rest of the closed segments gets cleaned.
	clk.advance(20_000)
	active := activeBase(t, l, before)
	if _, err := l.Clean(); err != nil {
		t.Fatal(err)
	}
	equalRecs(t, "later", readRecords(t, l), latestBelow(before, active, false))
}

func TestCleanableRatio(t *testing.T) {
	clk := newClock(1_000_000)
	cfg := compactConfig()
	cfg.MaxCompactionLagMs = 1 << 40
	l := open(t, t.TempDir(), cfg, withClock(clk))
	if r, must := l.CleanableRatio(); r != 0 || must {
		t.Fatalf("empty log: %v %v", r, must)
	}
	if _, ran, err := l.MaybeClean(); ran || err != nil {
		t.Fatalf("empty log cleaned: %v", err)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	appendRandom(t, l, rng, clk, 100, 5)
	if r, must := l.CleanableRatio(); r != 1 || must {
		t.Fatalf("never cleaned: ratio %v, must %v", r, must)
	}
	if _, ran, err := l.MaybeClean(); !ran || err != nil {
		t.Fatalf("not cleaned: %v", err)
	}
	if r, _ := l.CleanableRatio(); r != 0 {
		t.Fatalf("just cleaned: ratio %v", r)
	}
	appendRandom(t, l, rng, clk, 30, 5)
	r, must := l.CleanableRatio()
	if r <= 0 || r >= 1 || must {
		t.Fatalf("after a few appends: ratio %v, must %v", r, must)
	}
	c := l.Config()
	c.MinCleanableDirtyRatio = 1
	l.SetConfig(c)
	if _, ran, _ := l.MaybeClean(); ran {
		t.Fatal("cleaned below min.cleanable.dirty.ratio")
	}
	// max.compaction.lag.ms forces it.
	c.MaxCompactionLagMs = 100
	l.SetConfig(c)
	clk.advance(1000)
	if _, must := l.CleanableRatio(); !must {
		t.Fatal("max.compaction.lag.ms passed but not mustClean")
	}
	if _, ran, err := l.MaybeClean(); !ran || err != nil {
		t.Fatalf("not cleaned: %v", err)
	}
}

func TestCompactRejectsNullKeys(t *testing.T) {
	for _, codec := range allCodecs {
		l := open(t, t.TempDir(), compactConfig())
		b := recordstest.Batch{Codec: codec, ProducerID: -1, BaseSequence: -1,
			Records: []recordstest.Record{{Key: []byte("k"), Value: []byte("v")}, {Value: []byte("no key")}}}
		_, err := l.Append(b.Encode())
		if !errors.Is(err, log.ErrInvalidRecord) || !strings.Contains(err.Error(), "null key") {
			t.Fatalf("codec %d: %v", codec, err)
		}
		b.Records[1].Key = []byte{}
		if _, err := l.Append(b.Encode()); err != nil {
			t.Fatalf("codec %d, empty key: %v", codec, err)
		}
	}
	cfg := compactConfig()
	cfg.Compact = false
	l := open(t, t.TempDir(), cfg)
	if _, err := l.Append(recordstest.Batch{Records: []recordstest.Record{{Value: []byte("v")}}}.Encode()); err != nil {
		t.Fatal(err)
	}
}

func TestCleanupPolicyRetention(t *testing.T) {
	for _, tc := range []struct {
		name          string
		compact, del  bool
		wantDeleted   bool
		wantCompacted bool
	}{
		{"delete", false, true, true, false},
		{"compact", true, false, false, true},
		{"compact,delete", true, true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock(1_000_000)
			cfg := compactConfig()
			cfg.Compact, cfg.NoDelete = tc.compact, !tc.del
			cfg.RetentionMs = 50_000
			l := open(t, t.TempDir(), cfg, withClock(clk))
			rng := rand.New(rand.NewPCG(4, 4))
			appendRandom(t, l, rng, clk, 100, 5)
			clk.advance(100_000)
			appendRandom(t, l, rng, clk, 100, 5)
			before := readRecords(t, l)
			st, err := l.Clean()
			if err != nil {
				t.Fatal(err)
			}
			if (st.RecordsRemoved > 0) != tc.wantCompacted {
				t.Fatalf("clean stats %+v", st)
			}
			n, err := l.EnforceRetention()
			if err != nil {
				t.Fatal(err)
			}
			if (n > 0) != tc.wantDeleted {
				t.Fatalf("retention deleted %d segments", n)
			}
			if tc.wantDeleted && l.StartOffset() == 0 {
				t.Fatal("start offset did not move")
			}
			if !tc.wantDeleted && !tc.wantCompacted {
				equalRecs(t, "unchanged", readRecords(t, l), before)
			}
		})
	}
}

// TestCleanEmptyBatches checks the empty-batch rule: a producer's last
// batch in a segment survives as an empty batch, others go.
func TestCleanEmptyBatches(t *testing.T) {
	clk := newClock(1_000_000)
	cfg := compactConfig()
	cfg.SegmentBytes = 1 << 20
	l := open(t, t.TempDir(), cfg, withClock(clk))
	enc := func(pid int64, seq int32, key string) []byte {
		return recordstest.Batch{FirstTimestamp: clk.ms.Load(), ProducerID: pid, ProducerEpoch: 3, BaseSequence: seq,
			Records: []recordstest.Record{{Key: []byte(key), Value: []byte("v")}}}.Encode()
	}
	for _, b := range [][]byte{enc(5, 0, "a"), enc(-1, -1, "a"), enc(5, 1, "a"), enc(-1, -1, "a"), enc(6, 0, "a"), enc(-1, -1, "b")} {
		if _, err := l.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	// Roll by segment.ms so that the six batches are in a closed segment.
	c := l.Config()
	c.SegmentMs = 1
	l.SetConfig(c)
	clk.advance(10)
	l.EnforceRetention()
	if l.NumSegments() != 2 {
		t.Fatalf("%d segments", l.NumSegments())
	}
	if _, err := l.Clean(); err != nil {
		t.Fatal(err)
	}
	type got struct {
		base      int64
		n         int32
		pid       int64
		seq       int32
		lastDelta int32
	}
	var batches []got
	l.ScanBatches(0, func(h records.BatchHeader) bool {
		batches = append(batches, got{h.BaseOffset, h.NumRecords, h.ProducerID, h.BaseSequence, h.LastOffsetDelta})
		return true
	})
	want := []got{
		{2, 0, 5, 1, 0}, // producer 5's last batch, emptied
		{4, 1, 6, 0, 0}, // latest "a"
		{5, 1, -1, -1, 0},
	}
	if !slices.Equal(batches, want) {
		t.Fatalf("batches %+v, want %+v", batches, want)
	}
}

// TestCleanConcurrent runs cleans alongside appends, reads, syncs and
// retention (run it with -race).
func TestCleanConcurrent(t *testing.T) {
	clk := newClock(1_000_000)
	cfg := compactConfig()
	l := open(t, t.TempDir(), cfg, withClock(clk))
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(5, 5))
		for i := range 1500 {
			b := recordstest.Batch{FirstTimestamp: int64(i), ProducerID: -1, BaseSequence: -1, Codec: allCodecs[i%len(allCodecs)],
				Records: []recordstest.Record{{Key: fmt.Appendf(nil, "k%d", rng.IntN(30)), Value: fmt.Appendf(nil, "%d", i)}}}
			if _, err := l.Append(b.Encode()); err != nil {
				errs <- err
				return
			}
		}
		stop.Store(true)
	})
	for range 2 {
		wg.Go(func() {
			var buf []byte
			for !stop.Load() {
				off := l.StartOffset()
				for off < l.EndOffset() {
					got, err := l.Read(buf[:0], off, 4096, l.EndOffset(), true)
					if errors.Is(err, log.ErrOffsetOutOfRange) {
						break // cleaned or deleted under us: start again
					}
					if err != nil {
						errs <- fmt.Errorf("read %d: %w", off, err)
						return
					}
					if len(got) == 0 {
						break
					}
					for len(got) > 0 {
						h, err := records.CheckCRC(got[:12+int(be32(got[8:]))])
						if err != nil || h.LastOffset() < off {
							errs <- fmt.Errorf("read %d: batch %+v: %v", off, h, err)
							return
						}
						off = h.LastOffset() + 1
						got = got[h.TotalSize():]
					}
					buf = got[:0]
				}
			}
		})
	}
	wg.Go(func() {
		for !stop.Load() {
			if _, err := l.Clean(); err != nil {
				errs <- err
				return
			}
			l.Sync(l.EndOffset())
			if _, err := l.EnforceRetention(); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	before := readRecords(t, l)
	if _, err := l.Clean(); err != nil {
		t.Fatal(err)
	}
	active := activeBase(t, l, before)
	equalRecs(t, "final", readRecords(t, l), latestBelow(before, active, false))
}

// crashFS fails every mutating operation from the n-th on (counting from
// 0), as if the process died there; n < 0 counts without failing.
type crashFS struct {
	vfs.FS
	n   atomic.Int64
	ops atomic.Int64
}

var errCrash = errors.New("crashed")

func (c *crashFS) op(what string) error {
	i := c.ops.Add(1) - 1
	if n := c.n.Load(); n >= 0 && i >= n {
		return fmt.Errorf("%s: %w", what, errCrash)
	}
	return nil
}

func (c *crashFS) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	if flag&(os.O_CREATE|os.O_TRUNC) != 0 {
		if err := c.op("create " + name); err != nil {
			return nil, err
		}
	}
	f, err := c.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &crashFile{f, c}, nil
}
func (c *crashFS) Create(name string) (vfs.File, error) {
	return c.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
}
func (c *crashFS) Open(name string) (vfs.File, error) { return c.OpenFile(name, os.O_RDONLY, 0) }
func (c *crashFS) Remove(name string) error {
	if err := c.op("remove " + name); err != nil {
		return err
	}
	return c.FS.Remove(name)
}
func (c *crashFS) Rename(a, b string) error {
	if err := c.op("rename " + a); err != nil {
		return err
	}
	return c.FS.Rename(a, b)
}
func (c *crashFS) SyncDir(name string) error {
	if err := c.op("syncdir"); err != nil {
		return err
	}
	return c.FS.SyncDir(name)
}

type crashFile struct {
	vfs.File
	c *crashFS
}

func (f *crashFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.c.op("write"); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}
func (f *crashFile) Write(p []byte) (int, error) {
	if err := f.c.op("write"); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}
func (f *crashFile) Truncate(n int64) error {
	if err := f.c.op("truncate"); err != nil {
		return err
	}
	return f.File.Truncate(n)
}
func (f *crashFile) Sync() error {
	if err := f.c.op("sync"); err != nil {
		return err
	}
	return f.File.Sync()
}

func copyDir(t testing.TB, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(to, 0o755)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCleanCrash fails a clean at every mutating file operation in turn
// (each create, write, fsync, rename and remove), abandons the log, and
// reopens it: every group of segments must be wholly old or wholly
// cleaned, so the records read are a subset of those before the clean and
// a superset of those after it, and exactly one of the two when the clean
// is a single group.
func TestCleanCrash(t *testing.T) {
	for _, tc := range []struct {
		name         string
		segmentBytes int64
		batches      int
		// txn writes transactions (appendRandomTxn) and runs a first
		// pass before the crashed one, past the markers' delete
		// horizon: the crashed pass removes markers.
		txn bool
	}{
		{"one group", 1 << 20, 200, false}, // one closed segment: the clean is one group
		{"many groups", 2048, 80, false},
		{"transactions one group", 1 << 20, 200, true},
		{"transactions many groups", 2048, 120, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock(1_000_000)
			cfg := compactConfig()
			cfg.SegmentBytes = tc.segmentBytes
			template := filepath.Join(t.TempDir(), "template")
			l := open(t, template, cfg, withClock(clk))
			if tc.txn {
				appendRandomTxn(t, l, rand.New(rand.NewPCG(6, 6)), clk, tc.batches, 15)
				if _, err := l.Clean(); err != nil {
					t.Fatal(err)
				}
				clk.advance(cfg.DeleteRetentionMs)
			} else {
				appendRandom(t, l, rand.New(rand.NewPCG(6, 6)), clk, tc.batches, 15)
			}
			if tc.segmentBytes > 2048 && !tc.txn {
				c := cfg
				c.SegmentBytes = 100 // roll once
				l.SetConfig(c)
				l.Append(recordstest.Batch{ProducerID: -1, BaseSequence: -1,
					Records: []recordstest.Record{{Key: []byte("last"), Value: []byte("v")}}}.Encode())
			}
			pre := readRecords(t, l)
			l.Close()

			// The full clean, counting its operations.
			dir := filepath.Join(t.TempDir(), "full")
			copyDir(t, template, dir)
			cfs := &crashFS{FS: vfs.Default}
			cfs.n.Store(-1)
			l = open(t, dir, cfg, withClock(clk), func(o *log.Options) { o.FS = cfs })
			cfs.ops.Store(0)
			st, err := l.Clean()
			if err != nil {
				t.Fatal(err)
			}
			ops := cfs.ops.Load()
			post := readRecords(t, l)
			l.Close()
			if st.SegmentsWritten == 0 || len(post) >= len(pre) {
				t.Fatalf("clean did nothing: %+v", st)
			}
			if tc.segmentBytes > 2048 && st.SegmentsWritten != 1 {
				t.Fatalf("%d groups, want 1", st.SegmentsWritten)
			}
			if tc.txn && st.MarkersRemoved == 0 {
				t.Fatalf("no marker removed: %+v", st)
			}
			t.Logf("%d groups, %d mutating operations", st.SegmentsWritten, ops)

			preSet := map[rec]bool{}
			for _, r := range pre {
				preSet[r] = true
			}
			for n := range ops + 1 {
				dir := filepath.Join(t.TempDir(), fmt.Sprint("crash", n))
				copyDir(t, template, dir)
				cfs := &crashFS{FS: vfs.Default}
				cfs.n.Store(-1)
				l, err := log.Open(log.Options{Dir: dir, Config: cfg, Now: clk.now, FS: cfs})
				if err != nil {
					t.Fatal(err)
				}
				cfs.ops.Store(0)
				cfs.n.Store(n)
				_, cerr := l.Clean()
				if n < ops && cerr == nil {
					t.Fatalf("crash at op %d: clean succeeded", n)
				}
				l.Close() // fails too: the process is dead
				l = open(t, dir, cfg, withClock(clk))
				got := readRecords(t, l)
				for _, r := range got {
					if !preSet[r] {
						t.Fatalf("crash at op %d: %+v was not in the log before", n, r)
					}
				}
				gotSet := map[rec]bool{}
				for _, r := range got {
					gotSet[r] = true
				}
				for _, r := range post {
					if !gotSet[r] {
						t.Fatalf("crash at op %d: %+v lost", n, r)
					}
				}
				if st.SegmentsWritten == 1 && !slices.Equal(got, pre) && !slices.Equal(got, post) {
					t.Fatalf("crash at op %d: neither the old nor the cleaned log", n)
				}
				checkReadable(t, l, got)
				if lso, _ := rebuildTxns(t, l); lso != l.EndOffset() {
					t.Fatalf("crash at op %d: last stable offset %d, end offset %d", n, lso, l.EndOffset())
				}
				// And a clean after the crash finishes the job.
				if _, err := l.Clean(); err != nil {
					t.Fatalf("crash at op %d: clean after reopen: %v", n, err)
				}
				equalRecs(t, fmt.Sprint("crash at op ", n, ", cleaned again"), readRecords(t, l), post)
				l.Close()
				leftovers, _ := filepath.Glob(filepath.Join(dir, "*.swap"))
				cleaned, _ := filepath.Glob(filepath.Join(dir, "*.cleaned"))
				if len(leftovers)+len(cleaned) > 0 {
					t.Fatalf("crash at op %d: leftovers %v %v", n, leftovers, cleaned)
				}
			}
		})
	}
}

// TestCleanLogAppendTime checks that a LogAppendTime topic keeps its
// records' timestamps through rebuilds.
func TestCleanLogAppendTime(t *testing.T) {
	clk := newClock(5_000_000)
	cfg := compactConfig()
	cfg.LogAppendTime = true
	l := open(t, t.TempDir(), cfg, withClock(clk))
	appendRandom(t, l, rand.New(rand.NewPCG(7, 7)), clk, 150, 10)
	before := readRecords(t, l)
	active := activeBase(t, l, before)
	if _, err := l.Clean(); err != nil {
		t.Fatal(err)
	}
	equalRecs(t, "after clean", readRecords(t, l), latestBelow(before, active, false))
}
