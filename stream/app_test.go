package stream_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker/brokertest"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/stream"
)

var (
	str = serde.String()
	i64 = serde.Int64()
)

// clusters are the Kafka implementations the end-to-end tests run on: our
// broker, and franz-go's kfake as an independent implementation (our
// stand-in for "runs on Apache Kafka").
var clusters = map[string]func(t *testing.T) string{
	"sluice": func(t *testing.T) string { return brokertest.Start(t).Addr() },
	"kfake": func(t *testing.T) string {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c.ListenAddrs()[0]
	},
}

func wordCount(t *testing.T) *stream.Topology {
	t.Helper()
	b := stream.NewBuilder()
	lines := stream.Stream(b, []string{"text-lines"}, str, str)
	words := stream.FlatMapValues(lines, func(_, l string) []string { return strings.Fields(strings.ToLower(l)) }).WithSerdes(str, str)
	stream.Count(stream.GroupBy(words, func(_, w string) string { return w }, str), stream.Materialized("counts")).ToStream().To("word-counts")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func client(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createTopics(t *testing.T, addr string, partitions int32, topics ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(client(t, addr)).CreateTopics(ctx, partitions, 1, nil, topics...); err != nil {
		t.Fatal(err)
	}
}

func produceLines(t *testing.T, addr string, lines ...string) {
	t.Helper()
	cl := client(t, addr, kgo.DefaultProduceTopic("text-lines"))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for i, l := range lines {
		cl.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(l)}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

type running struct {
	app  *stream.App
	done chan error
}

func startApp(t *testing.T, addr string, topo *stream.Topology, opts ...stream.AppOpt) *running {
	t.Helper()
	app, err := stream.NewApp(topo, append([]stream.AppOpt{stream.AppID("wc"), stream.Brokers(addr),
		stream.CommitInterval(100 * time.Millisecond), stream.StateDir(t.TempDir())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	r := &running{app: app, done: make(chan error, 1)}
	go func() { r.done <- app.Run(context.Background()) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.app == nil {
		return
	}
	r.app.Close()
	if err := <-r.done; err != nil {
		t.Errorf("app: %v", err)
	}
	r.app = nil
}

// latestCounts reads word-counts from the start until every wanted word has
// its wanted count (the last value per key wins), or fails after 30s.
func latestCounts(t *testing.T, addr string, want map[string]int64) map[string]int64 {
	t.Helper()
	cl := client(t, addr, kgo.ConsumeTopics("word-counts"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	got := map[string]int64{}
	for {
		done := true
		for k, v := range want {
			if got[k] != v {
				done = false
			}
		}
		if done {
			return got
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("counts after 30s: %v, want %v", got, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			n, _ := i64.Decode(r.Value)
			got[string(r.Key)] = n
		})
	}
}

func TestWordCountEndToEnd(t *testing.T) {
	for name, start := range clusters {
		t.Run(name, func(t *testing.T) {
			addr := start(t)
			createTopics(t, addr, 2, "text-lines", "word-counts")
			app := startApp(t, addr, wordCount(t))
			produceLines(t, addr, "the quick brown fox", "the lazy dog", "The End")
			latestCounts(t, addr, map[string]int64{"the": 3, "quick": 1, "dog": 1, "end": 1})

			// Interactive query of the running app's store.
			q := stream.Query(app.app, "counts", str, i64)
			deadline := time.Now().Add(10 * time.Second)
			for {
				n, ok, err := q.Get("the")
				if err != nil {
					t.Fatal(err)
				}
				if ok && n == 3 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("query: the=%d (found %t)", n, ok)
				}
				time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
			}

			// Stop mid-stream and start again: state comes back from the
			// changelog, counts go on from where they were.
			app.stop(t)
			produceLines(t, addr, "the fox returns")
			startApp(t, addr, wordCount(t))
			latestCounts(t, addr, map[string]int64{"the": 4, "fox": 2, "returns": 1})
		})
	}
}

func TestScaleOutAndTakeOver(t *testing.T) {
	addr := brokertest.Start(t).Addr()
	createTopics(t, addr, 4, "text-lines", "word-counts")
	a1 := startApp(t, addr, wordCount(t))
	a2 := startApp(t, addr, wordCount(t))
	var words []string
	for i := range 40 {
		words = append(words, fmt.Sprintf("w%d w%d", i%10, i%7))
	}
	produceLines(t, addr, words...)
	want := map[string]int64{}
	for i := range 40 {
		want[fmt.Sprintf("w%d", i%10)]++
		want[fmt.Sprintf("w%d", i%7)]++
	}
	latestCounts(t, addr, want)
	// Both instances hold some of the state.
	own := func(a *stream.App) int {
		n := 0
		for range stream.Query(a, "counts", str, i64).All() {
			n++
		}
		return n
	}
	if n1, n2 := own(a1.app), own(a2.app); n1 == 0 || n2 == 0 {
		t.Logf("state split %d/%d (one instance holds everything: the group may not have settled)", n1, n2)
	}
	a1.stop(t)
	var more []string
	for i := range 20 {
		more = append(more, fmt.Sprintf("w%d", i%10))
		want[fmt.Sprintf("w%d", i%10)]++
	}
	produceLines(t, addr, more...)
	latestCounts(t, addr, want)
	var mu sync.Mutex
	mu.Lock()
	defer mu.Unlock()
	if n := own(a2.app); n != len(want) {
		t.Fatalf("the remaining instance holds %d keys, want all %d", n, len(want))
	}
}

func TestGlobalTableEndToEnd(t *testing.T) {
	for name, start := range clusters {
		for _, g := range []stream.ProcessingGuarantee{stream.AtLeastOnce, stream.ExactlyOnce} {
			t.Run(name+"/"+g.String(), func(t *testing.T) {
				addr := start(t)
				createTopics(t, addr, 3, "countries", "text-lines", "word-counts")
				cl := client(t, addr, kgo.DefaultProduceTopic("countries"))
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				for k, v := range map[string]string{"fr": "France", "de": "Germany", "it": "Italy"} {
					if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(k), Value: []byte(v)}).FirstErr(); err != nil {
						t.Fatal(err)
					}
				}
				b := stream.NewBuilder()
				stream.GlobalTable(b, "countries", str, str, stream.Materialized("countries"))
				stream.Stream(b, []string{"text-lines"}, str, str).To("word-counts")
				topo, err := b.Build()
				if err != nil {
					t.Fatal(err)
				}
				// Under exactly-once the global table is read with
				// read_committed (this topic is written without transactions).
				app := startApp(t, addr, topo, stream.Guarantee(g))
				q := stream.Query(app.app, "countries", str, str)
				// Bootstrapped before the tasks run; later updates follow.
				if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("fr"), Value: nil}).FirstErr(); err != nil {
					t.Fatal(err)
				}
				deadline := time.Now().Add(15 * time.Second)
				for {
					got := map[string]string{}
					for k, v := range q.All() {
						got[k] = v
					}
					if len(got) == 2 && got["de"] == "Germany" && got["it"] == "Italy" {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("global store %v", got)
					}
					time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
				}
			})
		}
	}
}

func TestQueryRangeAndPrefix(t *testing.T) {
	addr := brokertest.Start(t).Addr()
	createTopics(t, addr, 1, "text-lines", "word-counts")
	app := startApp(t, addr, wordCount(t))
	produceLines(t, addr, "apple apricot banana blueberry cherry")
	latestCounts(t, addr, map[string]int64{"apple": 1, "cherry": 1})
	q := stream.Query(app.app, "counts", str, i64)
	collect := func(seq func(func(string, int64) bool)) []string {
		var out []string
		for k := range seq {
			out = append(out, k)
		}
		return out
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(collect(q.All())) < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("store %v", collect(q.All()))
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	if got := collect(q.Prefix([]byte("ap"))); len(got) != 2 || got[0] != "apple" || got[1] != "apricot" {
		t.Fatalf("prefix ap: %v", got)
	}
	from, to := "b", "c"
	if got := collect(q.Range(&from, &to)); len(got) != 2 || got[0] != "banana" || got[1] != "blueberry" {
		t.Fatalf("range [b,c): %v", got)
	}
}
