package stream_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker/brokertest"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/window"
)

// TestSlidingCountRestart counts views per page in sliding windows of 10 s
// (grace 2 s) with final results only, stops the app after some records,
// starts it again with an out-of-order record among the new ones, and
// checks that every window's final count comes out exactly once and right:
// the window store (with its per-window timestamps) and the suppression
// buffer come back from their changelogs.
func TestSlidingCountRestart(t *testing.T) {
	addr := brokertest.Start(t).Addr()
	createTopics(t, addr, 1, "views", "final-sliding")
	build := func() *stream.Topology {
		b := stream.NewBuilder()
		s := stream.Stream(b, []string{"views"}, str, str)
		byPage := stream.GroupBy(s, func(_, page string) string { return page }, str)
		stream.SlidingCount(stream.SlidingWindowedBy(byPage, window.Sliding(10*time.Second).Grace(2*time.Second)), stream.Materialized("counts")).
			Suppress(stream.UntilWindowCloses()).ToStream().To("final-sliding")
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		return topo
	}
	base := time.UnixMilli(1_800_000_000_000)
	cl := client(t, addr, kgo.DefaultProduceTopic("views"))
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	send := func(page string, at time.Duration) {
		t.Helper()
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("u"), Value: []byte(page), Timestamp: base.Add(at)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	send("a", 1*time.Second)
	send("a", 3*time.Second)
	send("b", 4*time.Second)
	send("a", 11*time.Second)
	app := startApp(t, addr, build(), stream.AppID("sliding-views"))
	// a: left windows of 1, 3 and 11, right windows of 1 and 3; b: the
	// left window of 4. Queries see the counts (as int64) without the
	// stored timestamps.
	waitProcessed(t, app.app, "counts", 6)
	q := stream.Query(app.app, "counts", window.KeySerde(str, 10*time.Second), i64)
	n, ok, err := q.Get(window.Windowed[string]{Key: "a", Window: window.Window{Start: base.Add(time.Second).UnixMilli()}})
	if err != nil || !ok || n != 3 {
		t.Fatalf("query a@[1,11]: %d %v %v, want 3", n, ok, err)
	}
	// The window store query: a's windows starting in [1s, 11s].
	wq := stream.QueryWindows(app.app, "counts", str, i64)
	var wins []string
	for w, n := range wq.Fetch("a", base.Add(time.Second), base.Add(11*time.Second)) {
		wins = append(wins, fmt.Sprintf("[%v,%v]=%d", w.StartTime().Sub(base), w.EndTime().Sub(base), n))
	}
	if err := wq.Err(); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(wins, " "), "[1s,11s]=3 [1.001s,11.001s]=2 [3.001s,13.001s]=1"; got != want {
		t.Fatalf("QueryWindows(a, 1s..11s) = %s, want %s", got, want)
	}
	app.stop(t)

	send("a", 9*time.Second)  // out of order, within grace: updates three windows, creates two
	send("a", 15*time.Second) // stream time 15
	send("b", 31*time.Second) // stream time 31: every window of a closes
	startApp(t, addr, build(), stream.AppID("sliding-views"))

	rd := client(t, addr, kgo.ConsumeTopics("final-sliding"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ks := window.KeySerde(str, 10*time.Second)
	got := map[string]int64{}
	seen := map[string]int{}
	// page@[start,end] in seconds after base (end = start + 10 s,
	// inclusive), with the count of records in it.
	want := map[string]int64{
		"a@[-9,1]": 1, "a@[-7,3]": 2, "a@[-1,9]": 3, "a@[1,11]": 4, "a@[1.001,11.001]": 3,
		"a@[3.001,13.001]": 2, "a@[5,15]": 3, "a@[9.001,19.001]": 2, "a@[11.001,21.001]": 1,
		"b@[-6,4]": 1,
	}
	sec := func(ms int64) string { return fmt.Sprint(float64(ms-base.UnixMilli()) / 1000) }
	for len(got) < len(want) {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("final counts %v, want %v", got, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			k, err := ks.Decode(r.Key)
			if err != nil {
				t.Fatal(err)
			}
			n, _ := i64.Decode(r.Value)
			id := fmt.Sprintf("%s@[%s,%s]", k.Key, sec(k.Window.Start), sec(k.Window.End))
			got[id] = n
			seen[id]++
		})
	}
	for id, n := range want {
		if got[id] != n || seen[id] != 1 {
			t.Errorf("window %s: final count %d (emitted %d times), want %d once", id, got[id], seen[id], n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("final windows %v, want %v", got, want)
	}
}
