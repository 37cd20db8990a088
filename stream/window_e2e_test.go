package stream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker/brokertest"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/window"
)

// TestWindowedCountRestartMidWindow counts views per page per 10 s window
// with final results only, stops the app in the middle of a window, starts
// it again, and checks that every window's final count comes out exactly
// once and right (state and the suppression buffer come back from their
// changelogs).
func TestWindowedCountRestartMidWindow(t *testing.T) {
	addr := brokertest.Start(t).Addr()
	createTopics(t, addr, 1, "views", "final-counts")
	build := func() *stream.Topology {
		b := stream.NewBuilder()
		s := stream.Stream(b, []string{"views"}, str, str)
		byPage := stream.GroupBy(s, func(_, page string) string { return page }, str)
		stream.WindowedCount(stream.WindowedBy(byPage, window.Tumbling(10*time.Second).Grace(2*time.Second)), stream.Materialized("counts")).
			Suppress(stream.UntilWindowCloses()).ToStream().To("final-counts")
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		return topo
	}
	base := time.UnixMilli(1_800_000_000_000) // window-aligned
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
	send("a", 11*time.Second) // window [10,20) starts; [0,10) still within grace (closes at 12)
	app := startApp(t, addr, build(), stream.AppID("views"))
	// Let the first run process everything so far, then stop it mid-window.
	waitProcessed(t, app.app, "counts", 3)
	app.stop(t)

	send("a", 9*time.Second)  // late but within grace: part of [0,10)
	send("a", 15*time.Second) // [10,20)
	send("b", 31*time.Second) // stream time 31: [0,10) and [10,20) close
	startApp(t, addr, build(), stream.AppID("views"))

	rd := client(t, addr, kgo.ConsumeTopics("final-counts"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ks := window.KeySerde(str, 10*time.Second)
	got := map[string]int64{}
	seen := map[string]int{}
	want := map[string]int64{"a@0": 3, "b@0": 1, "a@10": 2}
	// Wait for b's second window too: it closes last, so everything before
	// it was emitted by then.
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
			id := fmt.Sprintf("%s@%d", k.Key, (k.Window.Start-base.UnixMilli())/1000)
			got[id] = n
			seen[id]++
		})
	}
	for id, n := range want {
		if got[id] != n || seen[id] != 1 {
			t.Errorf("window %s: final count %d (emitted %d times), want %d once", id, got[id], seen[id], n)
		}
	}
}

// waitProcessed waits until a running app's store holds at least n entries.
func waitProcessed(t *testing.T, app *stream.App, store string, n int) {
	t.Helper()
	q := stream.Query(app, store, window.KeySerde(str, 10*time.Second), i64)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c := 0
		for range q.All() {
			c++
		}
		if c >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("store %s has %d entries after 30s, want %d", store, c, n)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}
