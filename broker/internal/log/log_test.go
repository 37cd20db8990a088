package log_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker/internal/log"
	"github.com/sluicehq/sluice/broker/internal/records"
	"github.com/sluicehq/sluice/broker/internal/records/recordstest"
	"github.com/sluicehq/sluice/broker/internal/vfs"
)

// clock is an injectable clock.
type clock struct{ ms atomic.Int64 }

func (c *clock) now() time.Time  { return time.UnixMilli(c.ms.Load()) }
func (c *clock) advance(d int64) { c.ms.Add(d) }
func newClock(ms int64) *clock   { c := &clock{}; c.ms.Store(ms); return c }
func smallConfig() log.Config {
	c := log.DefaultConfig()
	c.SegmentBytes = 4096
	c.IndexIntervalBytes = 256
	return c
}

func open(t testing.TB, dir string, cfg log.Config, opts ...func(*log.Options)) *log.Log {
	t.Helper()
	o := log.Options{Dir: dir, Config: cfg}
	for _, f := range opts {
		f(&o)
	}
	l, err := log.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func withClock(c *clock) func(*log.Options) { return func(o *log.Options) { o.Now = c.now } }

// appendN appends n batches of recs records each with timestamps ts, ts+1...
// and returns the stored batches (as the log should store them).
func appendN(t testing.TB, l *log.Log, n, recs int, ts int64) [][]byte {
	t.Helper()
	var out [][]byte
	for i := range n {
		b := recordstest.Simple(0, ts+int64(i), recs, 20+i%13)
		res, err := l.Append(b)
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if res.LastOffset-res.BaseOffset != int64(recs-1) {
			t.Fatalf("append %d: %+v", i, res)
		}
		out = append(out, b)
	}
	return out
}

// readAll reads every batch from offset from to the end with maxBytes per
// call.
func readAll(t testing.TB, l *log.Log, from int64, maxBytes int) [][]byte {
	t.Helper()
	var out [][]byte
	off := from
	for off < l.EndOffset() {
		got, err := l.Read(nil, off, maxBytes, l.EndOffset(), true)
		if err != nil {
			t.Fatalf("read %d: %v", off, err)
		}
		if len(got) == 0 {
			t.Fatalf("read %d: nothing", off)
		}
		for len(got) > 0 {
			h, err := records.CheckCRC(got[:min(len(got), 12+int(int32(be32(got[8:]))))])
			if err != nil {
				t.Fatalf("read %d: stored batch: %v", off, err)
			}
			out = append(out, got[:h.TotalSize()])
			got = got[h.TotalSize():]
			off = h.LastOffset() + 1
		}
	}
	return out
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func equalBatches(t testing.TB, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d batches, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("batch %d differs", i)
		}
	}
}

func TestAppendReadAcrossRolls(t *testing.T) {
	l := open(t, t.TempDir(), smallConfig())
	want := appendN(t, l, 300, 3, 1000)
	if l.EndOffset() != 900 || l.StartOffset() != 0 {
		t.Fatalf("offsets [%d, %d)", l.StartOffset(), l.EndOffset())
	}
	if n := l.NumSegments(); n < 10 {
		t.Fatalf("only %d segments", n)
	}
	for _, maxBytes := range []int{1, 500, 4096, 1 << 20} {
		equalBatches(t, readAll(t, l, 0, maxBytes), want)
	}
	// Every offset reads the batch holding it first.
	for off := int64(0); off < l.EndOffset(); off++ {
		got, err := l.Read(nil, off, 1, l.EndOffset(), true)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want[off/3]) {
			t.Fatalf("offset %d: wrong batch", off)
		}
	}
	var sum int64
	for _, b := range want {
		sum += int64(len(b))
	}
	if l.Size() != sum {
		t.Fatalf("size %d, want %d", l.Size(), sum)
	}
}

func TestReadLimits(t *testing.T) {
	l := open(t, t.TempDir(), log.DefaultConfig())
	batches := appendN(t, l, 10, 2, 0) // offsets 0..19
	sz := len(batches[0])
	tests := []struct {
		name      string
		offset    int64
		maxBytes  int
		upTo      int64
		minOne    bool
		wantFirst int // index of the first batch, -1 for none
		wantN     int
		wantErr   error
	}{
		{"all", 0, 1 << 20, 20, true, 0, 10, nil},
		{"mid batch", 5, 1 << 20, 20, true, 2, 8, nil},
		{"two fit", 0, 2*len(batches[0]) + len(batches[1]) - 1 + len(batches[2]) - len(batches[1]), 20, false, 0, 2, nil},
		{"too small, minOne", 0, 10, 20, true, 0, 1, nil},
		{"too small", 0, 10, 20, false, -1, 0, nil},
		{"upTo cuts", 0, 1 << 20, 6, true, 0, 3, nil},
		{"upTo mid batch", 0, 1 << 20, 5, true, 0, 3, nil},
		{"upTo before", 4, 1 << 20, 4, true, -1, 0, nil},
		{"at end", 20, 1 << 20, 20, true, -1, 0, nil},
		{"past end", 21, 1 << 20, 20, true, -1, 0, log.ErrOffsetOutOfRange},
		{"negative", -1, 1 << 20, 20, true, -1, 0, log.ErrOffsetOutOfRange},
	}
	_ = sz
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("prefix")
			got, err := l.Read(prefix, tt.offset, tt.maxBytes, tt.upTo, tt.minOne)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if !bytes.HasPrefix(got, []byte("prefix")) {
				t.Fatal("dst prefix lost")
			}
			var want []byte
			if tt.wantFirst >= 0 {
				want = bytes.Join(batches[tt.wantFirst:tt.wantFirst+tt.wantN], nil)
			}
			if !bytes.Equal(got[6:], want) {
				t.Fatalf("got %d bytes, want %d", len(got)-6, len(want))
			}
		})
	}
}

func TestOffsetForTimeAndMaxTimestamp(t *testing.T) {
	l := open(t, t.TempDir(), smallConfig())
	if o, ts := l.MaxTimestamp(); o != -1 || ts != -1 {
		t.Fatalf("empty max timestamp %d %d", o, ts)
	}
	// Batch i has 3 records with timestamps 1000+10i, +1, +2 (deltas 0..2).
	for i := range 100 {
		b := recordstest.Batch{FirstTimestamp: 1000 + int64(10*i)}
		for j := range 3 {
			b.Records = append(b.Records, recordstest.Record{TimestampDelta: int64(j), Value: make([]byte, 50)})
		}
		if _, err := l.Append(b.Encode()); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		ts, wantOff, wantTs int64
		ok                  bool
	}{
		{0, 0, 1000, true},
		{1000, 0, 1000, true},
		{1001, 1, 1001, true},
		{1003, 3, 1010, true},
		{1502, 152, 1502, true},
		{1992, 299, 1992, true},
		{1993, -1, -1, false},
	}
	for _, tt := range tests {
		off, ts, ok, err := l.OffsetForTime(tt.ts)
		if err != nil || ok != tt.ok || off != tt.wantOff || ts != tt.wantTs {
			t.Errorf("OffsetForTime(%d) = %d, %d, %v, %v; want %d, %d, %v", tt.ts, off, ts, ok, err, tt.wantOff, tt.wantTs, tt.ok)
		}
	}
	if o, ts := l.MaxTimestamp(); o != 299 || ts != 1992 {
		t.Fatalf("max timestamp %d %d", o, ts)
	}
}

func TestLogAppendTime(t *testing.T) {
	c := newClock(5_000)
	cfg := log.DefaultConfig()
	cfg.LogAppendTime = true
	l := open(t, t.TempDir(), cfg, withClock(c))
	res, err := l.Append(recordstest.Simple(0, 1, 3, 10))
	if err != nil || res.LogAppendTime != 5000 {
		t.Fatalf("%+v %v", res, err)
	}
	got, _ := l.Read(nil, 0, 1<<20, 3, true)
	h, err := records.Validate(got, 1<<20)
	if err != nil || !h.LogAppendTime() || h.MaxTimestamp != 5000 {
		t.Fatalf("%+v %v", h, err)
	}
	if o, ts, ok, _ := l.OffsetForTime(4000); !ok || o != 0 || ts != 5000 {
		t.Fatalf("offset for time %d %d", o, ts)
	}
}

func TestAppendRejects(t *testing.T) {
	cfg := log.DefaultConfig()
	cfg.MaxMessageBytes = 1000
	l := open(t, t.TempDir(), cfg)
	bad := recordstest.Simple(0, 0, 2, 10)
	bad[len(bad)-1] ^= 1
	tests := []struct {
		name  string
		batch []byte
		want  error
	}{
		{"too large", recordstest.Simple(0, 0, 10, 100), log.ErrRecordTooLarge},
		{"bad crc", bad, log.ErrCorrupt},
		{"garbage", []byte("hello"), log.ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := l.Append(tt.batch); !errors.Is(err, tt.want) {
				t.Fatalf("%v, want %v", err, tt.want)
			}
			if l.EndOffset() != 0 || l.Size() != 0 {
				t.Fatal("rejected batch changed the log")
			}
		})
	}
}

func TestRetentionByTime(t *testing.T) {
	c := newClock(100_000)
	cfg := smallConfig()
	cfg.RetentionMs = 10_000
	l := open(t, t.TempDir(), cfg, withClock(c))
	appendN(t, l, 100, 3, 50_000) // old timestamps: all expired
	segs := l.NumSegments()
	n, err := l.EnforceRetention()
	if err != nil || n != segs { // the active one is rolled then deleted
		t.Fatalf("deleted %d of %d: %v", n, segs, err)
	}
	if l.StartOffset() != 300 || l.EndOffset() != 300 || l.NumSegments() != 1 || l.Size() != 0 {
		t.Fatalf("after retention: [%d, %d) %d segs %d bytes", l.StartOffset(), l.EndOffset(), l.NumSegments(), l.Size())
	}
	if _, err := l.Read(nil, 0, 100, 300, true); !errors.Is(err, log.ErrOffsetOutOfRange) {
		t.Fatalf("read deleted: %v", err)
	}
	// New data with current timestamps survives.
	appendN(t, l, 50, 3, 99_000)
	if n, _ := l.EnforceRetention(); n != 0 {
		t.Fatalf("deleted %d fresh segments", n)
	}
	c.advance(20_000)
	if n, _ := l.EnforceRetention(); n == 0 || l.StartOffset() != 450 {
		t.Fatalf("deleted %d, start %d", n, l.StartOffset())
	}
}

func TestRetentionByBytes(t *testing.T) {
	cfg := smallConfig()
	cfg.RetentionMs = -1
	cfg.RetentionBytes = 10_000
	l := open(t, t.TempDir(), cfg)
	appendN(t, l, 300, 3, 0)
	before := l.Size()
	n, err := l.EnforceRetention()
	if err != nil || n == 0 {
		t.Fatalf("deleted %d: %v", n, err)
	}
	if l.Size() < cfg.RetentionBytes || l.Size() >= cfg.RetentionBytes+cfg.SegmentBytes {
		t.Fatalf("size %d -> %d", before, l.Size())
	}
	if s := l.StartOffset(); s == 0 {
		t.Fatal("start did not move")
	}
	readAll(t, l, l.StartOffset(), 1<<20)
}

func TestDeleteRecords(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, smallConfig())
	appendN(t, l, 100, 3, 0)
	segs := l.NumSegments()
	tests := []struct {
		before, want int64
		err          error
	}{
		{301, -1, log.ErrOffsetOutOfRange},
		{7, 7, nil},
		{5, 7, nil}, // never backwards
		{150, 150, nil},
	}
	for _, tt := range tests {
		got, err := l.DeleteRecords(tt.before)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Fatalf("DeleteRecords(%d) = %d, %v", tt.before, got, err)
		}
	}
	if l.NumSegments() >= segs {
		t.Fatal("no segment deleted")
	}
	if _, err := l.Read(nil, 149, 100, 300, true); !errors.Is(err, log.ErrOffsetOutOfRange) {
		t.Fatal(err)
	}
	if got := readAll(t, l, 150, 1000); len(got) != 50 {
		t.Fatalf("%d batches after 150", len(got))
	}
	l.Close()
	l = open(t, dir, smallConfig())
	if l.StartOffset() != 150 {
		t.Fatalf("start after reopen %d", l.StartOffset())
	}
	if got, err := l.DeleteRecords(-1); got != 300 || err != nil {
		t.Fatal(got, err)
	}
	if _, err := l.Append(recordstest.Simple(0, 0, 1, 1)); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, l, 300, 1000); len(got) != 1 {
		t.Fatal(len(got))
	}
}

type state struct {
	start, end, size int64
	segs             int
	batches          [][]byte
}

func stateOf(t *testing.T, l *log.Log) state {
	return state{l.StartOffset(), l.EndOffset(), l.Size(), l.NumSegments(), readAll(t, l, l.StartOffset(), 1<<20)}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, smallConfig())
	appendN(t, l, 200, 2, 0)
	l.DeleteRecords(10)
	before := stateOf(t, l)
	o1, t1, _, _ := l.OffsetForTime(100)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal("second close:", err)
	}
	if _, err := l.Append(recordstest.Simple(0, 0, 1, 1)); !errors.Is(err, log.ErrClosed) {
		t.Fatal(err)
	}
	l = open(t, dir, smallConfig())
	after := stateOf(t, l)
	if before.start != after.start || before.end != after.end || before.size != after.size || before.segs != after.segs {
		t.Fatalf("before %+v after %+v", before, after)
	}
	equalBatches(t, after.batches, before.batches)
	if o2, t2, _, _ := l.OffsetForTime(100); o1 != o2 || t1 != t2 {
		t.Fatal("offset for time changed")
	}
	appendN(t, l, 1, 1, 0)
	if l.EndOffset() != 401 {
		t.Fatal(l.EndOffset())
	}
}

func segFiles(t *testing.T, dir, suffix string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "*"+suffix))
	if len(m) == 0 {
		t.Fatalf("no %s files", suffix)
	}
	return m
}

func TestRecovery(t *testing.T) {
	tests := []struct {
		name string
		// damage changes the last segment of size n; it returns how
		// many whole batches of that segment must survive, given the
		// batch size bs.
		damage func(t *testing.T, path string, n, bs int64) int64
	}{
		{"torn tail", func(t *testing.T, p string, n, bs int64) int64 {
			os.Truncate(p, n-5)
			return n/bs - 1
		}},
		{"torn header", func(t *testing.T, p string, n, bs int64) int64 {
			os.Truncate(p, n-bs+30)
			return n/bs - 1
		}},
		{"flipped byte in the middle", func(t *testing.T, p string, n, bs int64) int64 {
			b, _ := os.ReadFile(p)
			b[bs*2+100] ^= 0x40
			os.WriteFile(p, b, 0o644)
			return 2
		}},
		{"garbage appended", func(t *testing.T, p string, n, bs int64) int64 {
			f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			f.Write(bytes.Repeat([]byte{0xab}, 1000))
			f.Close()
			return n / bs
		}},
		{"zero-filled tail", func(t *testing.T, p string, n, bs int64) int64 {
			os.Truncate(p, n+4096)
			return n / bs
		}},
		{"truncated to zero", func(t *testing.T, p string, n, bs int64) int64 {
			os.Truncate(p, 0)
			return 0
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := smallConfig()
			cfg.SegmentBytes = 64 << 10
			l := open(t, dir, cfg)
			batches := appendN(t, l, 40, 3, 0) // all batches the same size? sizes vary with i%13
			_ = batches
			l.Close()
			// Rewrite with equal-size batches for easy arithmetic.
			os.RemoveAll(dir)
			l = open(t, dir, cfg)
			var want [][]byte
			for i := range 40 {
				b := recordstest.Simple(0, int64(i), 3, 50)
				if _, err := l.Append(b); err != nil {
					t.Fatal(err)
				}
				want = append(want, b)
			}
			appendN(t, l, 0, 1, 0)
			l.Close()
			segs := segFiles(t, dir, ".log")
			last := segs[len(segs)-1]
			st, _ := os.Stat(last)
			bs := int64(len(want[0]))
			inLast := st.Size() / bs
			keep := tt.damage(t, last, st.Size(), bs)
			var logs bytes.Buffer
			l2, err := log.Open(log.Options{Dir: dir, Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer l2.Close()
			wantN := int64(len(want)) - inLast + keep
			got := readAll(t, l2, 0, 1<<20)
			equalBatches(t, got, want[:wantN])
			if l2.EndOffset() != wantN*3 {
				t.Fatalf("end %d want %d", l2.EndOffset(), wantN*3)
			}
			if keep < inLast && !bytes.Contains(logs.Bytes(), []byte("truncating damaged segment tail")) && tt.name != "truncated to zero" {
				t.Fatalf("nothing logged: %s", logs.String())
			}
			// Appends continue at the recovered end.
			if res, err := l2.Append(recordstest.Simple(0, 0, 1, 1)); err != nil || res.BaseOffset != wantN*3 {
				t.Fatal(res, err)
			}
		})
	}
}

func TestIndexCorruptionRebuilt(t *testing.T) {
	corruptions := []struct {
		name string
		fn   func(path string)
	}{
		{"missing", func(p string) { os.Remove(p) }},
		{"truncated mid-entry", func(p string) { st, _ := os.Stat(p); os.Truncate(p, st.Size()-3) }},
		{"zeroed", func(p string) { st, _ := os.Stat(p); os.WriteFile(p, make([]byte, st.Size()), 0o644) }},
		{"garbage", func(p string) { os.WriteFile(p, bytes.Repeat([]byte{0xff}, 48), 0o644) }},
		{"pointing elsewhere", func(p string) {
			b, _ := os.ReadFile(p)
			if len(b) >= 8 {
				b[len(b)-1] += 1
			}
			os.WriteFile(p, b, 0o644)
		}},
	}
	for _, c := range corruptions {
		for _, suffix := range []string{".index", ".timeindex"} {
			t.Run(c.name+suffix, func(t *testing.T) {
				dir := t.TempDir()
				l := open(t, dir, smallConfig())
				appendN(t, l, 200, 3, 0)
				before := stateOf(t, l)
				l.Close()
				for _, p := range segFiles(t, dir, suffix) {
					c.fn(p)
				}
				l = open(t, dir, smallConfig())
				after := stateOf(t, l)
				equalBatches(t, after.batches, before.batches)
				if after.end != before.end {
					t.Fatal(after.end)
				}
				for off := int64(0); off < 600; off += 7 {
					got, err := l.Read(nil, off, 1, 600, true)
					if err != nil || !bytes.Equal(got, before.batches[off/3]) {
						t.Fatalf("read %d: %v", off, err)
					}
				}
				if o, _, ok, _ := l.OffsetForTime(150); !ok || o != 150*3 {
					t.Fatalf("offset for time: %d", o)
				}
			})
		}
	}
}

func TestLeftoversRemoved(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, smallConfig())
	appendN(t, l, 10, 1, 0)
	l.Close()
	for _, n := range []string{"x.tmp", "00000000000000000000.log.deleted", "00000000000000099999.index"} {
		os.WriteFile(filepath.Join(dir, n), []byte("junk"), 0o644)
	}
	l = open(t, dir, smallConfig())
	for _, n := range []string{"x.tmp", "00000000000000000000.log.deleted", "00000000000000099999.index"} {
		if _, err := os.Stat(filepath.Join(dir, n)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s still there", n)
		}
	}
	if l.EndOffset() != 10 {
		t.Fatal(l.EndOffset())
	}
}

func TestAppendENOSPC(t *testing.T) {
	for _, budget := range []int64{0, 10, 100} {
		t.Run(fmt.Sprintf("after=%d", budget), func(t *testing.T) {
			dir := t.TempDir()
			ffs := vfs.NewFaultFS(vfs.Default)
			l := open(t, dir, smallConfig(), func(o *log.Options) { o.FS = ffs })
			want := appendN(t, l, 20, 2, 0)
			size := l.Size()
			ffs.FailWritesAfter(budget, syscall.ENOSPC)
			for range 3 {
				_, err := l.Append(recordstest.Simple(0, 0, 5, 100))
				if !errors.Is(err, syscall.ENOSPC) || !log.IsRetriable(err) {
					t.Fatalf("append: %v", err)
				}
			}
			if l.Size() != size || l.EndOffset() != 40 {
				t.Fatal("failed append changed the log")
			}
			equalBatches(t, readAll(t, l, 0, 1<<20), want)
			ffs.Reset()
			want = append(want, appendN(t, l, 5, 2, 0)...)
			equalBatches(t, readAll(t, l, 0, 1<<20), want)
			l.Close()
			l = open(t, dir, smallConfig())
			equalBatches(t, readAll(t, l, 0, 1<<20), want)
		})
	}
}

func TestSyncFailureIsSticky(t *testing.T) {
	ffs := vfs.NewFaultFS(vfs.Default)
	l := open(t, t.TempDir(), smallConfig(), func(o *log.Options) { o.FS = ffs })
	appendN(t, l, 3, 1, 0)
	if err := l.Sync(3); err != nil || l.SyncedOffset() != 3 {
		t.Fatal(err, l.SyncedOffset())
	}
	appendN(t, l, 3, 1, 0)
	ffs.FailSync(syscall.EIO)
	if err := l.Sync(6); !errors.Is(err, log.ErrSyncFailed) || !errors.Is(err, syscall.EIO) {
		t.Fatal(err)
	}
	ffs.Reset()
	if err := l.Sync(6); !errors.Is(err, log.ErrSyncFailed) {
		t.Fatal(err)
	}
	if l.SyncedOffset() != 3 {
		t.Fatal(l.SyncedOffset())
	}
}

func TestConcurrentAppendReadSync(t *testing.T) {
	cfg := smallConfig()
	cfg.RetentionBytes = 64 << 10
	l := open(t, t.TempDir(), cfg)
	const writers, perWriter = 2, 300
	var wg sync.WaitGroup
	var done atomic.Bool
	for range writers {
		wg.Go(func() {
			for i := range perWriter {
				res, err := l.Append(recordstest.Simple(0, int64(i), 2, 30))
				if err != nil {
					t.Error(err)
					return
				}
				if err := l.Sync(res.LastOffset + 1); err != nil {
					t.Error(err)
					return
				}
				if l.SyncedOffset() <= res.LastOffset {
					t.Errorf("synced %d after Sync(%d)", l.SyncedOffset(), res.LastOffset+1)
				}
			}
		})
	}
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			off := int64(0)
			buf := make([]byte, 0, 8192)
			for !done.Load() {
				end := l.EndOffset()
				got, err := l.Read(buf[:0], off, 4096, end, true)
				if errors.Is(err, log.ErrOffsetOutOfRange) {
					off = l.StartOffset()
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				for len(got) > 0 {
					h, err := records.Validate(got[:12+be32(got[8:])], 1<<20)
					if err != nil || h.LastOffset() < off || h.BaseOffset >= end {
						t.Errorf("read at %d: %+v %v", off, h, err)
						return
					}
					off = h.LastOffset() + 1
					got = got[h.TotalSize():]
				}
			}
		})
	}
	readers.Go(func() {
		for !done.Load() {
			l.EnforceRetention()
			l.OffsetForTime(100)
			l.MaxTimestamp()
			l.ScanBatches(l.StartOffset(), func(records.BatchHeader) bool { return true })
		}
	})
	wg.Wait()
	done.Store(true)
	readers.Wait()
	if l.EndOffset() != writers*perWriter*2 {
		t.Fatal(l.EndOffset())
	}
}

func TestScanBatches(t *testing.T) {
	l := open(t, t.TempDir(), smallConfig())
	appendN(t, l, 100, 2, 0)
	var bases []int64
	if err := l.ScanBatches(51, func(h records.BatchHeader) bool { bases = append(bases, h.BaseOffset); return true }); err != nil {
		t.Fatal(err)
	}
	if len(bases) != 75 || bases[0] != 50 || bases[74] != 198 {
		t.Fatalf("%d bases from %v", len(bases), bases[:1])
	}
}

func TestSegmentMsRoll(t *testing.T) {
	c := newClock(0)
	cfg := log.DefaultConfig()
	cfg.SegmentMs = 1000
	l := open(t, t.TempDir(), cfg, withClock(c))
	appendN(t, l, 1, 1, 0)
	appendN(t, l, 1, 1, 500)
	if l.NumSegments() != 1 {
		t.Fatal(l.NumSegments())
	}
	appendN(t, l, 1, 1, 1001)
	if l.NumSegments() != 2 {
		t.Fatal(l.NumSegments())
	}
	c.advance(5000)
	cfg.RetentionMs = -1
	l.SetConfig(cfg)
	if _, err := l.EnforceRetention(); err != nil || l.NumSegments() != 3 {
		t.Fatal(err, l.NumSegments())
	}
}

func TestDelete(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "topic-0")
	l := open(t, dir, smallConfig())
	appendN(t, l, 10, 1, 0)
	if err := l.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if _, err := l.Read(nil, 0, 10, 10, true); !errors.Is(err, log.ErrClosed) {
		t.Fatal(err)
	}
}

// Regression: a roll left an empty active segment that made Sync stop
// before the dirty, rolled predecessor.
func TestSyncAfterRollCoversPredecessor(t *testing.T) {
	cfg := smallConfig()
	c := newClock(0)
	l := open(t, t.TempDir(), cfg, withClock(c))
	appendN(t, l, 5, 1, 0)
	cfg.SegmentMs = 10
	cfg.RetentionMs = -1
	l.SetConfig(cfg)
	c.advance(1000)
	l.EnforceRetention() // rolls: the new active segment is empty
	if l.NumSegments() != 2 {
		t.Fatal(l.NumSegments())
	}
	if err := l.Sync(l.EndOffset()); err != nil || l.SyncedOffset() != 5 {
		t.Fatal(err, l.SyncedOffset())
	}
}
