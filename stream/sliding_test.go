package stream_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/stream/streamtest"
	"github.com/sluicehq/sluice/window"
)

// The sliding-window tests replay Kafka Streams' KStreamSlidingWindowAggregateTest
// (and the SlidingWindows javadoc) through streamtest and expect the same
// windows, values and timestamps. Their aggregate is Kafka's
// MockAggregator.TOSTRING_ADDER from MockInitializer.STRING_INIT: "0", then
// "+value" per record.

// slidingOut is one windowed update as a test reads it.
type slidingOut struct {
	key        string
	start, end int64
	value      string
	ts         int64
}

func (o slidingOut) String() string {
	return fmt.Sprintf("%s[%d,%d]=%s@%d", o.key, o.start, o.end, o.value, o.ts)
}

// slidingDriver builds a topology that aggregates "in" per key in sliding
// windows with mk and writes the updates to "out".
func slidingDriver(t *testing.T, spec window.SlidingSpec, mk func(stream.SlidingWindowedKStream[string, string]) stream.WindowedKTable[string, string]) (*streamtest.Driver, *streamtest.InputTopic[string, string]) {
	t.Helper()
	b := stream.NewBuilder()
	s := stream.Stream(b, []string{"in"}, str, str)
	mk(stream.SlidingWindowedBy(stream.GroupByKey(s), spec)).ToStream().To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamtest.New(t, topo)
	return d, streamtest.Input(d, "in", str, str)
}

// concat is Kafka's MockInitializer.STRING_INIT with TOSTRING_ADDER.
func concat(sw stream.SlidingWindowedKStream[string, string]) stream.WindowedKTable[string, string] {
	return stream.SlidingAggregate(sw, func() string { return "0" }, func(_, v, agg string) string { return agg + "+" + v }, str,
		stream.Materialized("sliding"))
}

func readSliding(t *testing.T, d *streamtest.Driver, diff time.Duration) []slidingOut {
	t.Helper()
	var out []slidingOut
	for _, r := range streamtest.Output(d, "out", window.KeySerde(str, diff), str).ReadRecords() {
		out = append(out, slidingOut{r.Key.Key, r.Key.Window.Start, r.Key.Window.End, r.Value, r.Timestamp.UnixMilli()})
	}
	return out
}

// byKeyAndStart sorts updates as Kafka's tests do before comparing: by key,
// then window start, keeping the processing order within a window.
func byKeyAndStart(out []slidingOut) []slidingOut {
	slices.SortStableFunc(out, func(a, b slidingOut) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return int(a.start - b.start)
	})
	return out
}

// byStart groups updates of one key as "value@ts" sets per window start
// (Kafka's gatherOutput), sorted.
func byStart(out []slidingOut) map[int64][]string {
	m := map[int64][]string{}
	for _, o := range out {
		m[o.start] = append(m[o.start], fmt.Sprintf("%s@%d", o.value, o.ts))
	}
	for _, v := range m {
		slices.Sort(v)
	}
	return m
}

func checkSliding[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %v\n want %v", what, got, want)
	}
}

// The SlidingWindows javadoc example: records at 8 s, 9.2 s and 12.4 s with
// a 5 s time difference make five windows; updates come out in processing
// order with the timestamp of each window's latest record.
func TestSlidingCountJavadocExample(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, []string{"in"}, str, str)
	counts := stream.SlidingCount(stream.SlidingWindowedBy(stream.GroupByKey(s), window.Sliding(5*time.Second)), stream.Materialized("counts"))
	counts.ToStream().To("out")
	stream.Unwindow(counts.ToStream(), func(w window.Windowed[string], n int64) (string, int64) {
		return fmt.Sprintf("%s[%d,%d]", w.Key, w.Window.Start, w.Window.End), n
	}).WithSerdes(str, i64).To("plain")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamtest.New(t, topo)
	in := streamtest.Input(d, "in", str, str)
	for _, ms := range []int64{8000, 9200, 12400} {
		in.Pipe("A", "", time.UnixMilli(ms))
	}
	type cnt struct {
		start, end, n, ts int64
	}
	var got []cnt
	for _, r := range streamtest.Output(d, "out", window.KeySerde(str, 5*time.Second), i64).ReadRecords() {
		got = append(got, cnt{r.Key.Window.Start, r.Key.Window.End, r.Value, r.Timestamp.UnixMilli()})
	}
	checkSliding(t, "updates", got, []cnt{
		{3000, 8000, 1, 8000},
		{8001, 13001, 1, 9200}, // the first record's right window, once the second falls in it
		{4200, 9200, 2, 9200},
		{8001, 13001, 2, 12400},
		{9201, 14201, 1, 12400},
		{7400, 12400, 3, 12400},
	})
	checkSliding(t, "unwindowed", len(streamtest.Output(d, "plain", str, i64).ReadKeyValues()), 6)
	// The store (as queries see it) holds the five windows' aggregates,
	// without the timestamps stored with them.
	store := streamtest.Store(d, counts.StoreName(), window.KeySerde(str, 5*time.Second), i64)
	final := map[[2]int64]int64{}
	for k, n := range store {
		final[[2]int64{k.Window.Start, k.Window.End}] = n
	}
	checkSliding(t, "store", final, map[[2]int64]int64{
		{3000, 8000}: 1, {4200, 9200}: 2, {7400, 12400}: 3, {8001, 13001}: 2, {9201, 14201}: 1,
	})
}

// Kafka's testAggregateLargeInput: four keys, in-order and out-of-order
// records within grace; every update, sorted by key and window start.
func TestSlidingAggregateOutOfOrderWithinGrace(t *testing.T) {
	d, in := slidingDriver(t, window.Sliding(10*time.Millisecond).Grace(50*time.Millisecond), concat)
	for _, r := range []struct {
		k, v string
		ts   int64
	}{
		{"A", "1", 10}, {"A", "2", 20}, {"A", "3", 22}, {"A", "4", 15},
		{"B", "1", 12}, {"B", "2", 13}, {"B", "3", 18}, {"B", "4", 19}, {"B", "5", 25}, {"B", "6", 14},
		{"C", "1", 11}, {"C", "2", 15}, {"C", "3", 16}, {"C", "4", 21}, {"C", "5", 23},
		{"D", "4", 11}, {"D", "2", 12}, {"D", "3", 29}, {"D", "5", 16},
	} {
		in.Pipe(r.k, r.v, ts(r.ts))
	}
	checkSliding(t, "updates", byKeyAndStart(readSliding(t, d, 10*time.Millisecond)), []slidingOut{
		{"A", 0, 10, "0+1", 10},
		{"A", 5, 15, "0+1+4", 15},
		{"A", 10, 20, "0+1+2", 20},
		{"A", 10, 20, "0+1+2+4", 20},
		{"A", 11, 21, "0+2", 20},
		{"A", 11, 21, "0+2+4", 20},
		{"A", 12, 22, "0+2+3", 22},
		{"A", 12, 22, "0+2+3+4", 22},
		{"A", 16, 26, "0+2+3", 22},
		{"A", 21, 31, "0+3", 22},
		{"B", 2, 12, "0+1", 12},
		{"B", 3, 13, "0+1+2", 13},
		{"B", 4, 14, "0+1+2+6", 14},
		{"B", 8, 18, "0+1+2+3", 18},
		{"B", 8, 18, "0+1+2+3+6", 18},
		{"B", 9, 19, "0+1+2+3+4", 19},
		{"B", 9, 19, "0+1+2+3+4+6", 19},
		{"B", 13, 23, "0+2", 13},
		{"B", 13, 23, "0+2+3", 18},
		{"B", 13, 23, "0+2+3+4", 19},
		{"B", 13, 23, "0+2+3+4+6", 19},
		{"B", 14, 24, "0+3", 18},
		{"B", 14, 24, "0+3+4", 19},
		{"B", 14, 24, "0+3+4+6", 19},
		{"B", 15, 25, "0+3+4+5", 25},
		{"B", 19, 29, "0+4", 19},
		{"B", 19, 29, "0+4+5", 25},
		{"B", 20, 30, "0+5", 25},
		{"C", 1, 11, "0+1", 11},
		{"C", 5, 15, "0+1+2", 15},
		{"C", 6, 16, "0+1+2+3", 16},
		{"C", 11, 21, "0+1+2+3+4", 21},
		{"C", 12, 22, "0+2", 15},
		{"C", 12, 22, "0+2+3", 16},
		{"C", 12, 22, "0+2+3+4", 21},
		{"C", 13, 23, "0+2+3+4+5", 23},
		{"C", 16, 26, "0+3", 16},
		{"C", 16, 26, "0+3+4", 21},
		{"C", 16, 26, "0+3+4+5", 23},
		{"C", 17, 27, "0+4", 21},
		{"C", 17, 27, "0+4+5", 23},
		{"C", 22, 32, "0+5", 23},
		{"D", 1, 11, "0+4", 11},
		{"D", 2, 12, "0+4+2", 12},
		{"D", 6, 16, "0+4+2+5", 16},
		{"D", 12, 22, "0+2", 12},
		{"D", 12, 22, "0+2+5", 16},
		{"D", 13, 23, "0+5", 16},
		{"D", 19, 29, "0+3", 29},
	})
	if n := d.Metrics().DroppedLateRecords; n != 0 {
		t.Fatalf("dropped %d late records, want 0", n)
	}
}

// Kafka's testEarlyRecordsLargeInput: records before the time difference
// share the window [0, 10]; out-of-order early records update it and the
// right windows.
func TestSlidingAggregateEarlyRecords(t *testing.T) {
	d, in := slidingDriver(t, window.Sliding(10*time.Millisecond).Grace(50*time.Millisecond), concat)
	for _, r := range [][2]int64{{1, 0}, {3, 5}, {4, 6}, {2, 3}, {6, 13}, {5, 10}, {7, 4}, {8, 2}, {9, 15}} {
		in.Pipe("E", fmt.Sprint(r[0]), ts(r[1]))
	}
	checkSliding(t, "updates", byKeyAndStart(readSliding(t, d, 10*time.Millisecond)), []slidingOut{
		{"E", 0, 10, "0+1", 0},
		{"E", 0, 10, "0+1+3", 5},
		{"E", 0, 10, "0+1+3+4", 6},
		{"E", 0, 10, "0+1+3+4+2", 6},
		{"E", 0, 10, "0+1+3+4+2+5", 10},
		{"E", 0, 10, "0+1+3+4+2+5+7", 10},
		{"E", 0, 10, "0+1+3+4+2+5+7+8", 10},
		{"E", 1, 11, "0+3", 5},
		{"E", 1, 11, "0+3+4", 6},
		{"E", 1, 11, "0+3+4+2", 6},
		{"E", 1, 11, "0+3+4+2+5", 10},
		{"E", 1, 11, "0+3+4+2+5+7", 10},
		{"E", 1, 11, "0+3+4+2+5+7+8", 10},
		{"E", 3, 13, "0+3+4+2+6", 13},
		{"E", 3, 13, "0+3+4+2+6+5", 13},
		{"E", 3, 13, "0+3+4+2+6+5+7", 13},
		{"E", 4, 14, "0+3+4", 6},
		{"E", 4, 14, "0+3+4+6", 13},
		{"E", 4, 14, "0+3+4+6+5", 13},
		{"E", 4, 14, "0+3+4+6+5+7", 13},
		{"E", 5, 15, "0+3+4+6+5", 13},
		{"E", 5, 15, "0+3+4+6+5+9", 15},
		{"E", 6, 16, "0+4", 6},
		{"E", 6, 16, "0+4+6", 13},
		{"E", 6, 16, "0+4+6+5", 13},
		{"E", 6, 16, "0+4+6+5+9", 15},
		{"E", 7, 17, "0+6", 13},
		{"E", 7, 17, "0+6+5", 13},
		{"E", 7, 17, "0+6+5+9", 15},
		{"E", 11, 21, "0+6", 13},
		{"E", 11, 21, "0+6+9", 15},
		{"E", 14, 24, "0+9", 15},
	})
}

// Records with equal timestamps: Kafka's testAggregateSmallInput (two
// records at 10) and testEarlyRecordsRepeatedInput (early records repeating
// 0 and 2, no grace).
func TestSlidingAggregateEqualTimestamps(t *testing.T) {
	t.Run("regular", func(t *testing.T) {
		d, in := slidingDriver(t, window.Sliding(10*time.Millisecond).Grace(5*time.Millisecond), concat)
		for _, r := range [][2]int64{{1, 10}, {2, 10}, {3, 14}, {4, 15}, {5, 20}, {6, 22}, {7, 30}} {
			in.Pipe("A", fmt.Sprint(r[0]), ts(r[1]))
		}
		checkSliding(t, "updates", byStart(readSliding(t, d, 10*time.Millisecond)), map[int64][]string{
			0:  {"0+1+2@10", "0+1@10"},
			4:  {"0+1+2+3@14"},
			5:  {"0+1+2+3+4@15"},
			10: {"0+1+2+3+4+5@20"},
			11: {"0+3+4+5@20", "0+3+4@15", "0+3@14"},
			12: {"0+3+4+5+6@22"},
			15: {"0+4+5+6@22", "0+4+5@20", "0+4@15"},
			16: {"0+5+6@22", "0+5@20"},
			20: {"0+5+6+7@30"},
			21: {"0+6+7@30", "0+6@22"},
			23: {"0+7@30"},
		})
	})
	t.Run("early", func(t *testing.T) {
		d, in := slidingDriver(t, window.Sliding(5*time.Millisecond), concat)
		for _, r := range [][2]int64{{1, 0}, {2, 2}, {3, 4}, {4, 0}, {5, 2}, {6, 2}, {7, 0}, {8, 7}} {
			in.Pipe("A", fmt.Sprint(r[0]), ts(r[1]))
		}
		checkSliding(t, "updates", byStart(readSliding(t, d, 5*time.Millisecond)), map[int64][]string{
			0: {"0+1+2+3+4+5+6+7@4", "0+1+2+3+4+5+6@4", "0+1+2+3+4+5@4", "0+1+2+3+4@4", "0+1+2+3@4", "0+1+2@2", "0+1@0"},
			1: {"0+2+3+5+6@4", "0+2+3+5@4", "0+2+3@4", "0+2@2"},
			2: {"0+2+3+5+6+8@7"},
			3: {"0+3+8@7", "0+3@4"},
			5: {"0+8@7"},
		})
	})
}

// Kafka's shouldLogAndMeterWhenSkippingExpiredWindowByGrace: each refused
// window update counts as dropped, and a record whose windows have all
// closed is dropped whole.
func TestSlidingLateRecordsDropped(t *testing.T) {
	d, in := slidingDriver(t, window.Sliding(10*time.Millisecond).Grace(90*time.Millisecond), concat)
	in.Pipe("k", "100", ts(200))
	for i := range 6 {
		// Stream time 200 closes windows ending before 110: the left
		// windows of these records are refused, and no window of theirs
		// exists to update.
		in.Pipe("k", fmt.Sprint(i), ts(int64(100+i)))
	}
	in.Pipe("k", "6", ts(15)) // every window of it closed: dropped
	in.Pipe("k", "101", ts(300))
	in.Pipe("k", "102", ts(400))
	checkSliding(t, "updates", readSliding(t, d, 10*time.Millisecond), []slidingOut{
		{"k", 190, 200, "0+100", 200},
		{"k", 290, 300, "0+101", 300},
		{"k", 390, 400, "0+102", 400},
	})
	if n := d.Metrics().DroppedLateRecords; n != 7 {
		t.Fatalf("dropped %d late records, want 7", n)
	}
}

// Kafka's testReduceSmallInput.
func TestSlidingReduce(t *testing.T) {
	d, in := slidingDriver(t, window.Sliding(10*time.Millisecond).Grace(5*time.Millisecond),
		func(sw stream.SlidingWindowedKStream[string, string]) stream.WindowedKTable[string, string] {
			return sw.Reduce(func(agg, v string) string { return agg + "+" + v })
		})
	for _, r := range [][2]int64{{1, 10}, {2, 14}, {3, 15}, {4, 22}, {5, 26}, {6, 30}} {
		in.Pipe("A", fmt.Sprint(r[0]), ts(r[1]))
	}
	checkSliding(t, "updates", byStart(readSliding(t, d, 10*time.Millisecond)), map[int64][]string{
		0:  {"1@10"},
		4:  {"1+2@14"},
		5:  {"1+2+3@15"},
		11: {"2+3@15", "2@14"},
		12: {"2+3+4@22"},
		15: {"3+4@22", "3@15"},
		16: {"4+5@26", "4@22"},
		20: {"4+5+6@30"},
		23: {"5+6@30", "5@26"},
		27: {"6@30"},
	})
}

// Kafka's testAggregateRandomInput: whatever the order of the records
// (within grace), the last update of each window is the same. The
// aggregate sorts its letters, so it does not depend on the order.
func TestSlidingAggregateShuffledInput(t *testing.T) {
	input := []struct {
		v  string
		ts int64
	}{
		{"A", 10}, {"B", 15}, {"C", 16}, {"D", 18}, {"E", 30}, {"F", 40}, {"G", 55}, {"H", 56}, {"I", 58}, {"J", 58},
		{"K", 62}, {"L", 63}, {"M", 63}, {"N", 63}, {"O", 76}, {"P", 77}, {"Q", 80}, {"R", 2}, {"S", 3}, {"T", 5}, {"U", 8},
	}
	want := map[int64]string{
		0: "ARSTU@10", 3: "ASTU@10", 4: "ATU@10", 5: "ABTU@15", 6: "ABCU@16", 8: "ABCDU@18", 9: "ABCD@18", 11: "BCD@18",
		16: "CD@18", 17: "D@18", 20: "E@30", 30: "EF@40", 31: "F@40", 45: "G@55", 46: "GH@56", 48: "GHIJ@58",
		52: "GHIJK@62", 53: "GHIJKLMN@63", 56: "HIJKLMN@63", 57: "IJKLMN@63", 59: "KLMN@63", 63: "LMN@63",
		66: "O@76", 67: "OP@77", 70: "OPQ@80", 77: "PQ@80", 78: "Q@80", 171: "V@181",
	}
	sorted := func(sw stream.SlidingWindowedKStream[string, string]) stream.WindowedKTable[string, string] {
		return stream.SlidingAggregate(sw, func() string { return "" }, func(_, v, agg string) string {
			b := []byte(agg + v)
			slices.Sort(b)
			return string(b)
		}, str)
	}
	for seed := range uint64(20) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			d, in := slidingDriver(t, window.Sliding(10*time.Millisecond).Grace(100*time.Millisecond), sorted)
			rng := rand.New(rand.NewPCG(seed, 0))
			shuffled := slices.Clone(input)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			for _, r := range shuffled {
				in.Pipe("A", r.v, ts(r.ts))
			}
			in.Pipe("A", "V", ts(181))
			last := map[int64]string{}
			for _, o := range readSliding(t, d, 10*time.Millisecond) {
				last[o.start] = fmt.Sprintf("%s@%d", o.value, o.ts)
			}
			checkSliding(t, "last update per window", last, want)
		})
	}
}

// Suppress(UntilWindowCloses) on a sliding table emits each window once,
// after stream time passes its (inclusive) end plus grace: the final
// windows of Kafka's testAggregateLargeInput under emit-on-window-close
// (grace 10 ms).
func TestSlidingSuppressUntilWindowCloses(t *testing.T) {
	d, in := slidingDriver(t, window.Sliding(10*time.Millisecond).Grace(10*time.Millisecond),
		func(sw stream.SlidingWindowedKStream[string, string]) stream.WindowedKTable[string, string] {
			return concat(sw).Suppress(stream.UntilWindowCloses())
		})
	send := func(k string, recs ...[2]int64) {
		for _, r := range recs {
			in.Pipe(k, fmt.Sprint(r[0]), ts(r[1]))
		}
	}
	send("A", [2]int64{1, 10}, [2]int64{2, 20})
	// Stream time 20: [0,10] closes after 10 + 10 (it still takes a record
	// at 10), so it is not final yet.
	checkSliding(t, "nothing final at 20", readSliding(t, d, 10*time.Millisecond), []slidingOut(nil))
	send("A", [2]int64{3, 22}, [2]int64{4, 15})
	send("B", [2]int64{1, 12}, [2]int64{2, 13}, [2]int64{3, 18}, [2]int64{4, 19}, [2]int64{5, 25}, [2]int64{6, 14})
	send("C", [2]int64{1, 11}, [2]int64{2, 15}, [2]int64{3, 16}, [2]int64{4, 21}, [2]int64{5, 23})
	send("D", [2]int64{4, 11}, [2]int64{2, 12}, [2]int64{3, 29}, [2]int64{5, 16})
	got := readSliding(t, d, 10*time.Millisecond)
	for i := range got {
		got[i].ts = 0 // a suppression emits at its stream time
	}
	checkSliding(t, "final windows", byKeyAndStart(got), []slidingOut{
		{"A", 0, 10, "0+1", 0},
		{"A", 5, 15, "0+1+4", 0},
		{"B", 2, 12, "0+1", 0},
		{"B", 3, 13, "0+1+2", 0},
		{"B", 8, 18, "0+1+2+3+6", 0},
		{"C", 5, 15, "0+2", 0},
		{"C", 6, 16, "0+2+3", 0},
	})
	// Refused as closed: the left windows of B@14, C@11, D@11, D@12 and
	// D@16 (Kafka's "skip for emit final" cases).
	if n := d.Metrics().DroppedLateRecords; n != 5 {
		t.Fatalf("dropped %d late records, want 5", n)
	}
}

func ts(ms int64) time.Time { return time.UnixMilli(ms) }

// Sliding windows leave the store at commit once they started more than
// the retention (default 2 × time difference + grace) before stream time.
func TestSlidingWindowRetention(t *testing.T) {
	for _, tt := range []struct {
		name string
		spec window.SlidingSpec
		want int
	}{
		{"default", window.Sliding(10 * time.Millisecond), 1},
		{"longer", window.Sliding(10 * time.Millisecond).Retention(time.Second), 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, in := slidingDriver(t, tt.spec, concat)
			in.Pipe("a", "1", ts(100))
			in.Pipe("a", "2", ts(105)) // [90,100], [95,105], [101,111]
			ks := window.KeySerde(str, 10*time.Millisecond)
			if n := len(streamtest.Store(d, "sliding", ks, str)); n != 3 {
				t.Fatalf("%d windows in the store, want 3", n)
			}
			in.Pipe("a", "3", ts(200)) // default: windows starting before 180 expire
			if got := streamtest.Store(d, "sliding", ks, str); len(got) != tt.want {
				t.Fatalf("store after retention: %v, want %d windows", got, tt.want)
			}
		})
	}
}

func TestSlidingWindowedByInvalidSpec(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, []string{"in"}, str, str)
	stream.SlidingCount(stream.SlidingWindowedBy(stream.GroupByKey(s), window.Sliding(0)))
	if _, err := b.Build(); !errors.Is(err, stream.ErrInvalidTopology) {
		t.Fatalf("Build: %v, want ErrInvalidTopology", err)
	}
}

// Random records (repeated timestamps, early records, any order, all within
// grace) against a brute-force definition of sliding windows: each record r
// has the window [r-d, r] ([0, d] when r < d) and, when a record falls in
// (r, r+1+d], the window [r+1, r+1+d]; a window counts the records in it,
// bounds included, and its updates carry the latest one's timestamp. No
// other window may exist.
func TestSlidingCountMatchesDefinition(t *testing.T) {
	const diff = 10
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 1))
		recs := make([]int64, 1+rng.IntN(15))
		for i := range recs {
			recs[i] = rng.Int64N(60)
		}
		type win struct{ count, maxTs int64 }
		want := map[int64]win{}
		add := func(start int64) {
			w := win{maxTs: -1}
			for _, r := range recs {
				if r >= start && r <= start+diff {
					w.count++
					w.maxTs = max(w.maxTs, r)
				}
			}
			want[start] = w
		}
		for _, r := range recs {
			add(max(0, r-diff))
			for _, q := range recs {
				if q > r && q <= r+1+diff {
					add(r + 1)
				}
			}
		}

		b := stream.NewBuilder()
		s := stream.Stream(b, []string{"in"}, str, str)
		stream.SlidingCount(stream.SlidingWindowedBy(stream.GroupByKey(s), window.Sliding(diff*time.Millisecond).Grace(time.Second)),
			stream.Materialized("counts")).ToStream().To("out")
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		d := streamtest.New(t, topo)
		in := streamtest.Input(d, "in", str, str)
		for _, r := range recs {
			in.Pipe("k", "", ts(r))
		}
		ks := window.KeySerde(str, diff*time.Millisecond)
		got := map[int64]win{}
		for _, o := range streamtest.Output(d, "out", ks, i64).ReadRecords() {
			got[o.Key.Window.Start] = win{o.Value, o.Timestamp.UnixMilli()}
		}
		stored := map[int64]win{}
		for k, n := range streamtest.Store(d, "counts", ks, i64) {
			stored[k.Window.Start] = win{n, got[k.Window.Start].maxTs}
		}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(stored, want) {
			t.Fatalf("seed %d, records %v:\n last updates %v\n store        %v\n want         %v", seed, recs, got, stored, want)
		}
	}
}
