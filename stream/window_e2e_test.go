package stream_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// TestWindowQueriesAfterRestore counts clicks per user in 10 s windows and
// sessions, stops the app, starts it again on an empty state directory (so
// both stores are restored from their changelogs into fresh segmented
// pebble stores) and checks that the interactive queries answer exactly as
// before; then stream time moves past the retention and the old windows
// are gone.
func TestWindowQueriesAfterRestore(t *testing.T) {
	addr := brokertest.Start(t).Addr()
	createTopics(t, addr, 1, "clicks")
	build := func() *stream.Topology {
		b := stream.NewBuilder()
		s := stream.Stream(b, []string{"clicks"}, str, str)
		g := stream.GroupByKey(s)
		stream.WindowedCount(stream.WindowedBy(g, window.Tumbling(10*time.Second).Retention(time.Minute)), stream.Materialized("counts"))
		stream.SessionCount(stream.SessionWindowedBy(g, window.Session(5*time.Second).Grace(time.Minute)), stream.Materialized("sessions"))
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		return topo
	}
	base := time.UnixMilli(1_800_000_000_000) // window-aligned
	cl := client(t, addr, kgo.DefaultProduceTopic("clicks"))
	send := func(user string, at time.Duration) {
		t.Helper()
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Key: []byte(user), Value: []byte("x"), Timestamp: base.Add(at)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	send("u", 1*time.Second)
	send("u", 2*time.Second)
	send("u", 11*time.Second)
	send("v", 12*time.Second)
	send("u", 13*time.Second)

	windows := func(app *stream.App) []string {
		q := stream.QueryWindows(app, "counts", str, i64)
		var out []string
		for w, n := range q.All() {
			out = append(out, fmt.Sprintf("%s@%d-%d=%d", w.Key, w.Window.Start-base.UnixMilli(), w.Window.End-base.UnixMilli(), n))
		}
		for w, n := range q.Fetch("u", base, base.Add(10*time.Second)) {
			out = append(out, fmt.Sprintf("fetch u@%d=%d", w.Start-base.UnixMilli(), n))
		}
		qs := stream.QuerySessions(app, "sessions", str, i64)
		for w, n := range qs.Fetch("u") {
			out = append(out, fmt.Sprintf("session u[%d,%d]=%d", w.Start-base.UnixMilli(), w.End-base.UnixMilli(), n))
		}
		for w, n := range qs.FindSessions("v", base, base.Add(20*time.Second)) {
			out = append(out, fmt.Sprintf("session v[%d,%d]=%d", w.Start-base.UnixMilli(), w.End-base.UnixMilli(), n))
		}
		if err := errors.Join(q.Err(), qs.Err()); err != nil {
			out = append(out, "error: "+err.Error())
		}
		return out
	}
	want := []string{
		"u@0-10000=2", "u@10000-20000=2", "v@10000-20000=1",
		"fetch u@0=2", "fetch u@10000=2",
		"session u[1000,2000]=2", "session u[11000,13000]=2",
		"session v[12000,12000]=1",
	}
	// waitQuery polls the app's queries until they answer want (commits
	// make updates visible), or fails after 30 s.
	waitQuery := func(app *stream.App, want []string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got := windows(app)
			if slices.Equal(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("queries answer %q, want %q", got, want)
			}
			time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
		}
	}
	app := startApp(t, addr, build(), stream.AppID("clicks"))
	waitQuery(app.app, want)
	app.stop(t)

	// A new state directory: everything comes back from the changelogs.
	app = startApp(t, addr, build(), stream.AppID("clicks"))
	waitQuery(app.app, want)

	// Stream time 200 s: everything above expired, only the new window
	// and session remain.
	send("u", 200*time.Second)
	waitQuery(app.app, []string{"u@200000-210000=1", "session u[200000,200000]=1"})
}
