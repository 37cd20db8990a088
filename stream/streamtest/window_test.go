package streamtest_test

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/stream/streamtest"
	"github.com/sluicehq/sluice/window"
)

type wkv struct {
	key        string
	start, end int64
	count      int64
}

func readWindowed(t *testing.T, d *streamtest.Driver, topic string, size time.Duration) []wkv {
	t.Helper()
	var out []wkv
	for _, r := range streamtest.Output(d, topic, window.KeySerde(str, size), i64).ReadRecords() {
		out = append(out, wkv{r.Key.Key, r.Key.Window.Start, r.Key.Window.End, r.Value})
	}
	return out
}

// Tumbling 10 ms windows with 5 ms grace: out-of-order records within grace
// update their window; a record later than window end + grace (by stream
// time) is dropped and counted.
func TestTumblingWindowCountWithLateRecords(t *testing.T) {
	b := stream.NewBuilder()
	views := stream.Stream(b, []string{"views"}, str, str)
	counts := stream.WindowedCount(stream.WindowedBy(stream.GroupByKey(views), window.Tumbling(10*time.Millisecond).Grace(5*time.Millisecond)),
		stream.Materialized("views-per-window"))
	counts.ToStream().To("counts")
	d := streamtest.New(t, build(t, b))
	in := streamtest.Input(d, "views", str, str)
	in.Pipe("p", "", ts(1))  // window [0,10)
	in.Pipe("p", "", ts(12)) // [10,20); stream time 12
	in.Pipe("p", "", ts(7))  // late but within grace: [0,10) closes at 15
	in.Pipe("q", "", ts(14)) // stream time 14
	in.Pipe("p", "", ts(16)) // stream time 16: [0,10) closed
	in.Pipe("p", "", ts(9))  // too late: dropped
	check(t, "windowed counts", readWindowed(t, d, "counts", 10*time.Millisecond), []wkv{
		{"p", 0, 10, 1}, {"p", 10, 20, 1}, {"p", 0, 10, 2}, {"q", 10, 20, 1}, {"p", 10, 20, 2},
	})
	if got := d.Metrics().DroppedLateRecords; got != 1 {
		t.Fatalf("dropped late records: %d, want 1", got)
	}
}

// Hopping windows of 10 ms every 5 ms: each record counts in two windows.
func TestHoppingWindowCount(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, []string{"in"}, str, str)
	stream.WindowedCount(stream.WindowedBy(stream.GroupByKey(s), window.Hopping(10*time.Millisecond, 5*time.Millisecond))).ToStream().To("out")
	d := streamtest.New(t, build(t, b))
	in := streamtest.Input(d, "in", str, str)
	in.Pipe("k", "", ts(6))
	in.Pipe("k", "", ts(11))
	check(t, "hopping", readWindowed(t, d, "out", 10*time.Millisecond), []wkv{
		{"k", 0, 10, 1}, {"k", 5, 15, 1}, {"k", 5, 15, 2}, {"k", 10, 20, 1},
	})
}

// Windowed aggregate after a key change repartitions, and Unwindow leaves
// the windowed world.
func TestWindowedAggregateAndUnwindow(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, []string{"clicks"}, str, str)
	byPage := stream.GroupBy(s, func(_, page string) string { return page }, str)
	sums := stream.WindowedAggregate(stream.WindowedBy(byPage, window.Tumbling(time.Minute)),
		func() int64 { return 0 }, func(_ string, _ string, agg int64) int64 { return agg + 10 }, i64, stream.Named("sums"))
	stream.Unwindow(sums.ToStream(), func(w window.Windowed[string], v int64) (string, int64) {
		return w.Key + "@" + w.Window.StartTime().UTC().Format("15:04"), v
	}).WithSerdes(str, i64).To("sums")
	d := streamtest.New(t, build(t, b))
	in := streamtest.Input(d, "clicks", str, str)
	in.Pipe("u1", "home", ts(0))
	in.Pipe("u2", "home", ts(30_000))
	in.Pipe("u1", "cart", ts(61_000))
	check(t, "sums", streamtest.Output(d, "sums", str, i64).ReadKeyValues(), []streamtest.KeyValue[string, int64]{
		kv("home@00:00", int64(10)), kv("home@00:00", int64(20)), kv("cart@00:01", int64(10)),
	})
}

// Windows older than their retention leave the store at commit.
func TestWindowRetention(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, []string{"in"}, str, str)
	stream.WindowedCount(stream.WindowedBy(stream.GroupByKey(s), window.Tumbling(10*time.Millisecond).Retention(20*time.Millisecond)),
		stream.Materialized("w"))
	d := streamtest.New(t, build(t, b))
	in := streamtest.Input(d, "in", str, str)
	in.Pipe("a", "", ts(1))
	in.Pipe("a", "", ts(15))
	if n := len(streamtest.Store(d, "w", window.KeySerde(str, 10*time.Millisecond), i64)); n != 2 {
		t.Fatalf("%d windows in the store, want 2", n)
	}
	in.Pipe("a", "", ts(45)) // stream time 45: windows starting before 25 expire
	got := streamtest.Store(d, "w", window.KeySerde(str, 10*time.Millisecond), i64)
	if len(got) != 1 {
		t.Fatalf("store after retention: %v", got)
	}
}
