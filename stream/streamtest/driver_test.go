package streamtest_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/stream/streamtest"
)

var (
	str = serde.String()
	i64 = serde.Int64()
)

func ts(ms int64) time.Time { return time.UnixMilli(ms) }

func build(t *testing.T, b *stream.Builder) *stream.Topology {
	t.Helper()
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func kv[K, V any](k K, v V) streamtest.KeyValue[K, V] {
	return streamtest.KeyValue[K, V]{Key: k, Value: v}
}

func check[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %v\n want %v", what, got, want)
	}
}

func TestWordCount(t *testing.T) {
	b := stream.NewBuilder()
	lines := stream.Stream(b, []string{"text-lines"}, str, str)
	words := stream.FlatMapValues(lines, func(_, l string) []string { return strings.Fields(strings.ToLower(l)) }).WithSerdes(str, str)
	counts := stream.Count(stream.GroupBy(words, func(_, w string) string { return w }, str), stream.Named("word-counts"))
	counts.ToStream().To("word-counts")
	topo := build(t, b)
	if !strings.Contains(topo.Describe(), "word-counts-repartition") {
		t.Fatalf("no repartition topic in:\n%s", topo.Describe())
	}

	d := streamtest.New(t, topo, streamtest.AppID("wc"))
	in := streamtest.Input(d, "text-lines", str, str)
	out := streamtest.Output(d, "word-counts", str, i64)
	in.PipeValue("Hello world", ts(1))
	in.PipeValue("hello again", ts(2))
	check(t, "counts", out.ReadKeyValues(), []streamtest.KeyValue[string, int64]{
		kv("hello", int64(1)), kv("world", int64(1)), kv("hello", int64(2)), kv("again", int64(1)),
	})
	check(t, "store", streamtest.Store(d, "word-counts", str, i64), map[string]int64{"hello": 2, "world": 1, "again": 1})
}

func TestStatelessOperators(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, []string{"in"}, str, str)
	upper := stream.MapValues(s.Filter(func(k, v string) bool { return v != "" }).FilterNot(func(k, _ string) bool { return k == "skip" }),
		func(_, v string) string { return strings.ToUpper(v) }).WithSerdes(str, str)
	var peeked []string
	upper = upper.Peek(func(k, v string) { peeked = append(peeked, k+"="+v) })
	swapped := stream.Map(upper, func(k, v string) (string, string) { return v, k }).WithSerdes(str, str)
	swapped.To("swapped")
	rekeyed := stream.SelectKey(upper, func(k, v string) string { return k + "!" }).WithSerdes(str, str)
	rekeyed.To("rekeyed")
	split := stream.FlatMap(upper, func(k, v string) []stream.KeyValue[string, string] {
		var out []stream.KeyValue[string, string]
		for _, c := range v {
			out = append(out, stream.KV(k, string(c)))
		}
		return out
	}).WithSerdes(str, str)
	split.To("chars")
	var seen []string
	upper.Foreach(func(k, v string) { seen = append(seen, k) })
	topo := build(t, b)

	d := streamtest.New(t, topo)
	in := streamtest.Input(d, "in", str, str)
	in.Pipe("a", "xy", ts(10))
	in.Pipe("b", "", ts(11))
	in.Pipe("skip", "zz", ts(12))
	in.Pipe("c", "q", ts(13))
	check(t, "swapped", streamtest.Output(d, "swapped", str, str).ReadKeyValues(), []streamtest.KeyValue[string, string]{kv("XY", "a"), kv("Q", "c")})
	check(t, "rekeyed", streamtest.Output(d, "rekeyed", str, str).ReadKeyValues(), []streamtest.KeyValue[string, string]{kv("a!", "XY"), kv("c!", "Q")})
	check(t, "chars", streamtest.Output(d, "chars", str, str).ReadKeyValues(), []streamtest.KeyValue[string, string]{kv("a", "X"), kv("a", "Y"), kv("c", "Q")})
	check(t, "peek", peeked, []string{"a=XY", "c=Q"})
	check(t, "foreach", seen, []string{"a", "c"})
	recs := streamtest.Output(d, "swapped", str, str).ReadRecords()
	if len(recs) != 0 {
		t.Fatalf("records read twice: %v", recs)
	}
}

func TestTimestampsAndHeadersFlow(t *testing.T) {
	b := stream.NewBuilder()
	stream.MapValues(stream.Stream(b, []string{"in"}, str, str), func(_, v string) string { return v + "!" }).WithSerdes(str, str).To("out")
	d := streamtest.New(t, build(t, b))
	streamtest.Input(d, "in", str, str).Pipe("k", "v", ts(1234), stream.Header{Key: "h", Value: []byte("x")})
	recs := streamtest.Output(d, "out", str, str).ReadRecords()
	if len(recs) != 1 || !recs[0].Timestamp.Equal(ts(1234)) || len(recs[0].Headers) != 1 || recs[0].Headers[0].Key != "h" {
		t.Fatalf("records %+v", recs)
	}
}

func TestSplitMergeAndPerRecordTopic(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, []string{"nums"}, str, i64)
	br := s.Split(
		stream.When("neg", func(_ string, v int64) bool { return v < 0 }),
		stream.When("small", func(_ string, v int64) bool { return v < 10 }),
		stream.Otherwise[string, int64]("big"),
	)
	br["neg"].To("negative")
	br["small"].Merge(br["big"]).ToFunc(func(_ string, v int64) string {
		if v%2 == 0 {
			return "even"
		}
		return "odd"
	})
	d := streamtest.New(t, build(t, b))
	in := streamtest.Input(d, "nums", str, i64)
	for i, v := range []int64{-1, 3, 42, 7, -8, 100} {
		in.Pipe(fmt.Sprint(i), v, ts(int64(i)))
	}
	check(t, "negative", streamtest.Output(d, "negative", str, i64).ReadValues(), []int64{-1, -8})
	check(t, "even", streamtest.Output(d, "even", str, i64).ReadValues(), []int64{42, 100})
	check(t, "odd", streamtest.Output(d, "odd", str, i64).ReadValues(), []int64{3, 7})
}

func TestRepartitionSpreadsByKey(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.SelectKey(stream.Stream(b, []string{"in"}, str, str), func(_, v string) string { return v }).WithSerdes(str, str)
	s.Repartition(stream.Named("by-value"), stream.Partitions(4)).To("out")
	d := streamtest.New(t, build(t, b), streamtest.AppID("app"))
	in := streamtest.Input(d, "in", str, str)
	for i := range 20 {
		in.Pipe("k", fmt.Sprint("v", i%5), ts(int64(i)))
	}
	recs := streamtest.Output(d, "out", str, str).ReadRecords()
	if len(recs) != 20 {
		t.Fatalf("%d records out", len(recs))
	}
	// The same key always comes out of the same repartition partition.
	part := map[string]int32{}
	for _, r := range streamtest.OutputRaw(d, "app-by-value-repartition") {
		if p, ok := part[string(r.Key)]; ok && p != r.Partition {
			t.Fatalf("key %s in partitions %d and %d", r.Key, p, r.Partition)
		}
		part[string(r.Key)] = r.Partition
	}
	if len(part) != 5 {
		t.Fatalf("repartition keys %v", part)
	}
}

func TestReduceAndAggregate(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, []string{"amounts"}, str, i64)
	g := stream.GroupByKey(s)
	g.Reduce(func(a, v int64) int64 { return max(a, v) }, stream.Named("max")).ToStream().To("max")
	stream.Aggregate(g, func() string { return "" }, func(_ string, v int64, agg string) string {
		return agg + fmt.Sprint(v) + ","
	}, str, stream.Materialized("history")).ToStream().To("history")
	d := streamtest.New(t, build(t, b))
	in := streamtest.Input(d, "amounts", str, i64)
	in.Pipe("a", 5, ts(1))
	in.Pipe("b", 1, ts(2))
	in.Pipe("a", 3, ts(3))
	in.Pipe("a", 9, ts(4))
	check(t, "max", streamtest.Output(d, "max", str, i64).ReadKeyValues(), []streamtest.KeyValue[string, int64]{kv("a", int64(5)), kv("b", int64(1)), kv("a", int64(5)), kv("a", int64(9))})
	check(t, "history store", streamtest.Store(d, "history", str, str), map[string]string{"a": "5,3,9,", "b": "1,"})
}

func TestTableOperators(t *testing.T) {
	b := stream.NewBuilder()
	users := stream.Table(b, "users", str, str, stream.Materialized("users"))
	adults := users.Filter(func(_, v string) bool { return !strings.HasPrefix(v, "kid:") })
	stream.TableMapValues(adults, func(_, v string) string { return strings.ToUpper(v) }).WithSerdes(str, str).ToStream().To("adults")
	// Regroup users by city (the value) and count them, with a subtractor
	// taking moved users out of their old city.
	byCity := stream.TableGroupBy(users, func(k, v string) (string, string) { return v, k }, str, str)
	stream.TableCount(byCity, stream.Named("per-city")).ToStream().To("per-city")
	d := streamtest.New(t, build(t, b))
	in := streamtest.Input(d, "users", str, str)
	in.Pipe("ann", "paris", ts(1))
	in.Pipe("bob", "kid:rome", ts(2))
	in.Pipe("cid", "paris", ts(3))
	in.Pipe("ann", "rome", ts(4))
	in.PipeTombstone("cid", ts(5))
	recs := streamtest.Output(d, "adults", str, str).ReadRecords()
	var got []string
	for _, r := range recs {
		if r.Tombstone {
			got = append(got, r.Key+"=<deleted>")
		} else {
			got = append(got, r.Key+"="+r.Value)
		}
	}
	check(t, "adults", got, []string{"ann=PARIS", "cid=PARIS", "ann=ROME", "cid=<deleted>"})
	check(t, "users store", streamtest.Store(d, "users", str, str), map[string]string{"ann": "rome", "bob": "kid:rome"})
	check(t, "per-city store", streamtest.Store(d, "per-city", str, i64), map[string]int64{"paris": 0, "kid:rome": 1, "rome": 1})
	// Every update is out after each Pipe, including the subtraction the
	// last delete caused (its cache flush feeds the repartition topic,
	// whose processing fills the count's cache again).
	latest := map[string]int64{}
	for _, kv := range streamtest.Output(d, "per-city", str, i64).ReadKeyValues() {
		latest[kv.Key] = kv.Value
	}
	check(t, "per-city output", latest, map[string]int64{"paris": 0, "kid:rome": 1, "rome": 1})
}

type dedup struct {
	ref   stream.StoreRef[string, int64]
	ctx   *stream.ProcessorContext[string, string]
	store *stream.KeyValueStore[string, int64]
}

func (p *dedup) Init(ctx *stream.ProcessorContext[string, string]) error {
	p.ctx = ctx
	p.store = p.ref.Get(ctx)
	// Every 10 ms of stream time, emit how many distinct keys were seen.
	ctx.Schedule(10*time.Millisecond, stream.StreamTime, func(at time.Time) {
		n := 0
		for range p.store.All() {
			n++
		}
		ctx.Forward(stream.Record[string, string]{Key: "distinct", Value: fmt.Sprint(n), Timestamp: at})
	})
	ctx.Schedule(time.Second, stream.WallClockTime, func(at time.Time) {
		ctx.Forward(stream.Record[string, string]{Key: "tick", Value: fmt.Sprint(at.UnixMilli()), Timestamp: at})
	})
	return nil
}

func (p *dedup) Process(r stream.Record[string, string]) error {
	if r.Value == "boom" {
		return errors.New("boom")
	}
	if _, seen, err := p.store.Get(r.Key); err != nil || seen {
		return err
	}
	if err := p.store.Put(r.Key, r.Timestamp.UnixMilli()); err != nil {
		return err
	}
	p.ctx.Forward(stream.Record[string, string]{Key: r.Key, Value: r.Value})
	return nil
}

func (p *dedup) Close() {}

func TestProcessorAPI(t *testing.T) {
	b := stream.NewBuilder()
	ref := stream.AddStore(b, "seen", str, i64)
	s := stream.Stream(b, []string{"in"}, str, str)
	stream.Process(s, func() stream.Processor[string, string, string, string] { return &dedup{ref: ref} }, []string{"seen"}).
		WithSerdes(str, str).To("out")
	var perrs []*stream.ProcessingError
	d := streamtest.New(t, build(t, b), streamtest.OnProcessingError(func(e *stream.ProcessingError) error {
		perrs = append(perrs, e)
		return nil // skip and go on
	}))
	in := streamtest.Input(d, "in", str, str)
	out := streamtest.Output(d, "out", str, str)
	in.Pipe("a", "1", ts(0))
	in.Pipe("a", "2", ts(5))
	in.Pipe("b", "3", ts(9))
	in.Pipe("c", "boom", ts(9))
	in.Pipe("c", "4", ts(12))
	// As in Kafka Streams, a record is processed first and stream-time
	// punctuations fire after it: at 0 (the first stream time), then once
	// stream time reaches 10 (record c at 12).
	check(t, "out", out.ReadKeyValues(), []streamtest.KeyValue[string, string]{
		kv("a", "1"), kv("distinct", "1"), kv("b", "3"), kv("c", "4"), kv("distinct", "3"),
	})
	if len(perrs) != 1 || perrs[0].Offset != 3 || !strings.Contains(perrs[0].Error(), "boom") {
		t.Fatalf("processing errors %v", perrs)
	}
	d.AdvanceWallClock(1500 * time.Millisecond)
	check(t, "wall clock", out.ReadKeyValues(), []streamtest.KeyValue[string, string]{kv("tick", "1500")})
	check(t, "store", streamtest.Store(d, "seen", str, i64), map[string]int64{"a": 0, "b": 9, "c": 12})
}

func TestPanicsAndBadRecordsReachHandlers(t *testing.T) {
	b := stream.NewBuilder()
	stream.MapValues(stream.Stream(b, []string{"in"}, str, i64), func(_ string, v int64) int64 {
		if v == 0 {
			panic("division by zero")
		}
		return 100 / v
	}, stream.Named("divide")).WithSerdes(str, i64).To("out")
	topo := build(t, b)

	// Default: the failure is returned.
	d := streamtest.New(t, topo)
	in := streamtest.Input(d, "in", str, i64)
	err := in.TryPipe("k", 0, ts(0))
	var perr *stream.ProcessingError
	if !errors.As(err, &perr) || perr.Processor != "divide" || !strings.Contains(err.Error(), "division by zero") {
		t.Fatalf("panic gave %v", err)
	}

	// Continue: bad records are skipped.
	var deser []*stream.DeserializationError
	d = streamtest.New(t, topo,
		streamtest.OnProcessingError(func(*stream.ProcessingError) error { return nil }),
		streamtest.OnDeserializationError(func(e *stream.DeserializationError) error { deser = append(deser, e); return nil }))
	in = streamtest.Input(d, "in", str, i64)
	in.Pipe("k", 0, ts(0))
	if err := in.PipeRaw([]byte("k"), []byte("short"), ts(1)); err != nil {
		t.Fatal(err)
	}
	in.Pipe("k", 4, ts(2))
	check(t, "out", streamtest.Output(d, "out", str, i64).ReadValues(), []int64{25})
	if len(deser) != 1 || deser[0].IsKey || deser[0].Offset != 1 {
		t.Fatalf("deserialization errors %+v", deser)
	}
}

func TestBuildErrorsNameTheOperator(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, []string{"in"}, str, str)
	stream.MapValues(s, func(_, v string) int { return len(v) }, stream.Named("lengths")).To("out", stream.Named("write-lengths"))
	_, err := b.Build()
	if !errors.Is(err, stream.ErrMissingSerde) || !strings.Contains(err.Error(), "write-lengths") || !strings.Contains(err.Error(), "value") {
		t.Fatalf("missing serde: %v", err)
	}

	b = stream.NewBuilder()
	s = stream.Stream(b, []string{"in"}, str, str)
	stream.Process(s, func() stream.Processor[string, string, string, string] { return nil }, []string{"nope"}, stream.Named("uses-nope"))
	_, err = b.Build()
	if !errors.Is(err, stream.ErrInvalidTopology) || !strings.Contains(err.Error(), "uses-nope") || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("unknown store: %v", err)
	}

	b = stream.NewBuilder()
	stream.Stream(b, []string{"in"}, str, str)
	stream.Stream(b, []string{"in"}, str, str)
	if _, err = b.Build(); !errors.Is(err, stream.ErrInvalidTopology) || !strings.Contains(err.Error(), `"in"`) {
		t.Fatalf("topic read twice: %v", err)
	}

	// A join of two sides repartitioned to different partition counts
	// can never be co-partitioned: Build refuses it.
	b = stream.NewBuilder()
	left := stream.Stream(b, []string{"left"}, str, str).Repartition(stream.Named("l"), stream.Partitions(2))
	right := stream.Stream(b, []string{"right"}, str, str).Repartition(stream.Named("r"), stream.Partitions(3))
	stream.StreamJoin(left, right, stream.JoinTimeDifference(time.Minute), func(a, b string) string { return a + b },
		stream.Named("lr")).WithSerdes(str, str).To("out")
	if _, err = b.Build(); !errors.Is(err, stream.ErrInvalidTopology) || !strings.Contains(err.Error(), "lr") ||
		!strings.Contains(err.Error(), "different partition counts") {
		t.Fatalf("join of repartitions with 2 and 3 partitions: %v", err)
	}
}

func TestDescribe(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, []string{"a"}, str, str)
	stream.Count(stream.GroupBy(s, func(_, v string) string { return v }, str), stream.Named("counts")).ToStream().To("b")
	desc := build(t, b).Describe()
	for _, want := range []string{"Sub-topology: 0", "Sub-topology: 1", "Source: KSTREAM-SOURCE-0000000000 (topics: [a])", "counts-repartition", "(stores: [counts])", "Sink:"} {
		if !strings.Contains(desc, want) {
			t.Errorf("Describe lacks %q:\n%s", want, desc)
		}
	}
	if slices.Contains(strings.Fields(desc), "") {
		t.Fatal("unreachable")
	}
}

func TestGlobalTable(t *testing.T) {
	b := stream.NewBuilder()
	stream.GlobalTable(b, "countries", str, str, stream.Materialized("countries"))
	stream.Stream(b, []string{"in"}, str, str).To("out")
	d := streamtest.New(t, build(t, b))
	c := streamtest.Input(d, "countries", str, str)
	c.Pipe("fr", "France", ts(1))
	c.Pipe("de", "Germany", ts(2))
	c.PipeTombstone("fr", ts(3))
	check(t, "global store", streamtest.Store(d, "countries", str, str), map[string]string{"de": "Germany"})
}

// TestPanicWhileFlushingReachesHandler: user code downstream of a cached
// table runs when the cache is flushed at commit; a panic there goes to
// the processing-error handler like any other, instead of crashing.
func TestPanicWhileFlushingReachesHandler(t *testing.T) {
	b := stream.NewBuilder()
	users := stream.Table(b, "users", str, str) // cached: updates go downstream at flush
	stream.TableMapValues(users, func(_, v string) string {
		if v == "boom" {
			panic("bad user")
		}
		return strings.ToUpper(v)
	}, stream.Named("upper")).WithSerdes(str, str).ToStream().To("out")
	topo := build(t, b)

	d := streamtest.New(t, topo)
	err := streamtest.Input(d, "users", str, str).TryPipe("a", "boom", ts(0))
	var perr *stream.ProcessingError
	if !errors.As(err, &perr) || !strings.Contains(err.Error(), "bad user") {
		t.Fatalf("panic at flush gave %v, want a ProcessingError", err)
	}

	var handled []*stream.ProcessingError
	d = streamtest.New(t, topo, streamtest.OnProcessingError(func(e *stream.ProcessingError) error { handled = append(handled, e); return nil }))
	in := streamtest.Input(d, "users", str, str)
	in.Pipe("a", "ann", ts(0))
	in.Pipe("b", "boom", ts(1))
	in.Pipe("c", "cid", ts(2))
	check(t, "out", streamtest.Output(d, "out", str, str).ReadValues(), []string{"ANN", "CID"})
	if len(handled) != 1 || !strings.Contains(handled[0].Err.Error(), "bad user") {
		t.Fatalf("handled %v", handled)
	}
}
