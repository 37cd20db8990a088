package stream_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/brokertest"
	"github.com/sluicehq/sluice/stream"
)

// committedCounts reads word-counts with read_committed from the start until
// every wanted word has its wanted count, and returns each word's sequence
// of counts. Under exactly-once a key's committed counts only go up: a
// repeated or lower count would be a record counted twice or a lost update.
func committedCounts(t *testing.T, addr string, want map[string]int64) map[string][]int64 {
	t.Helper()
	cl := client(t, addr, kgo.ConsumeTopics("word-counts"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	seqs := map[string][]int64{}
	last := func(k string) int64 {
		if s := seqs[k]; len(s) > 0 {
			return s[len(s)-1]
		}
		return 0
	}
	for {
		done := true
		for k, v := range want {
			if last(k) != v {
				done = false
			}
		}
		if done {
			return seqs
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			got := map[string]int64{}
			for k := range want {
				got[k] = last(k)
			}
			t.Fatalf("committed counts after 30s: %v, want %v", got, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			n, _ := i64.Decode(r.Value)
			seqs[string(r.Key)] = append(seqs[string(r.Key)], n)
		})
	}
}

func checkIncreasing(t *testing.T, seqs map[string][]int64) {
	t.Helper()
	for k, s := range seqs {
		for i := 1; i < len(s); i++ {
			if s[i] <= s[i-1] {
				t.Errorf("%s: committed counts %v are not increasing: a record counted twice or an update lost", k, s)
				break
			}
		}
	}
}

// TestExactlyOnceEndToEnd runs the word count (a repartition topic, a
// pebble store, an output topic: all in each transaction) under
// ExactlyOnce, stops it, restarts it on the same state directory (restore
// from the checkpoint) and then on a fresh one (restore from the
// changelog), checking exact counts in the read_committed output.
func TestExactlyOnceEndToEnd(t *testing.T) {
	for name, start := range clusters {
		t.Run(name, func(t *testing.T) {
			addr := start(t)
			createTopics(t, addr, 2, "text-lines", "word-counts")
			dir := t.TempDir()
			eos := []stream.AppOpt{stream.Guarantee(stream.ExactlyOnce), stream.StateDir(dir)}
			want := map[string]int64{}
			var lines []string
			batch := func(from, n int) {
				lines = lines[:0]
				for i := from; i < from+n; i++ {
					l := fmt.Sprintf("w%d w%d w%d", i%13, i%7, i%5)
					lines = append(lines, l)
					want[fmt.Sprintf("w%d", i%13)]++
					want[fmt.Sprintf("w%d", i%7)]++
					want[fmt.Sprintf("w%d", i%5)]++
				}
				produceLines(t, addr, lines...)
			}
			app := startApp(t, addr, wordCount(t), eos...)
			batch(0, 300)
			committedCounts(t, addr, want)
			app.stop(t)

			batch(300, 200)
			app = startApp(t, addr, wordCount(t), eos...)
			committedCounts(t, addr, want)
			app.stop(t)

			batch(500, 100)
			startApp(t, addr, wordCount(t), stream.Guarantee(stream.ExactlyOnce), stream.StateDir(t.TempDir()))
			checkIncreasing(t, committedCounts(t, addr, want))
		})
	}
}

func TestGuaranteeValidated(t *testing.T) {
	if _, err := stream.NewApp(wordCount(t), stream.AppID("x"), stream.Brokers("127.0.0.1:1"), stream.Guarantee(7)); err == nil {
		t.Fatal("NewApp accepted Guarantee(7)")
	}
	if _, err := stream.NewApp(wordCount(t), stream.AppID("x"), stream.Brokers("127.0.0.1:1"), stream.InstanceID("a/b")); err == nil {
		t.Fatal("NewApp accepted InstanceID(a/b)")
	}
}

// TestExactlyOnceZombieFenced starts a second instance with the same
// InstanceID (as a restarted instance whose previous incarnation still
// runs would): its transactional producer fences the first one, which
// stops with ErrFenced instead of committing anything more.
func TestExactlyOnceZombieFenced(t *testing.T) {
	addr := brokertest.Start(t).Addr()
	createTopics(t, addr, 1, "text-lines", "word-counts")
	eos := []stream.AppOpt{stream.Guarantee(stream.ExactlyOnce), stream.InstanceID("same")}
	zombie := startApp(t, addr, wordCount(t), eos...)
	produceLines(t, addr, "a b", "a")
	committedCounts(t, addr, map[string]int64{"a": 2, "b": 1})
	startApp(t, addr, wordCount(t), eos...)
	// Input keeps coming until the zombie, producing for whatever task it
	// still owns, learns it is fenced.
	want := map[string]int64{"a": 2, "b": 1}
	deadline := time.After(30 * time.Second)
	for fenced := false; !fenced; {
		produceLines(t, addr, "a b")
		want["a"]++
		want["b"]++
		select {
		case err := <-zombie.done:
			if !errors.Is(err, stream.ErrFenced) {
				t.Fatalf("the fenced instance stopped with %v, want ErrFenced", err)
			}
			t.Logf("fenced: %v", err)
			zombie.app = nil
			fenced = true
		case <-time.After(100 * time.Millisecond): // input pacing
		case <-deadline:
			t.Fatal("the first instance was not fenced")
		}
	}
	// The new instance takes every task and counts every line exactly once.
	checkIncreasing(t, committedCounts(t, addr, want))
}

// TestExactlyOnceScaleOutAndTakeOver moves tasks between instances (a
// second instance with two threads joins, then the first stops) while
// input flows: every rebalance aborts the transactions it cuts through and restores the
// stores, and the read_committed counts stay exact.
func TestExactlyOnceScaleOutAndTakeOver(t *testing.T) {
	addr := brokertest.Start(t).Addr()
	createTopics(t, addr, 4, "text-lines", "word-counts")
	want := map[string]int64{}
	feed := func(from, n int) {
		var lines []string
		for i := from; i < from+n; i++ {
			lines = append(lines, fmt.Sprintf("w%d w%d", i%10, i%7))
			want[fmt.Sprintf("w%d", i%10)]++
			want[fmt.Sprintf("w%d", i%7)]++
		}
		produceLines(t, addr, lines...)
	}
	eos := []stream.AppOpt{stream.Guarantee(stream.ExactlyOnce)}
	if os.Getenv("SLUICE_EOS_DEBUG") != "" {
		eos = append(eos, stream.Logger(slog.New(slog.NewTextHandler(os.Stderr, nil))),
			stream.ClientOpts(kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, func() string { return time.Now().Format("15:04:05.000 ") }))))
	}
	a1 := startApp(t, addr, wordCount(t), eos...)
	feed(0, 50)
	a2 := startApp(t, addr, wordCount(t), append(eos, stream.Threads(2))...)
	for i := range 10 {
		feed(50+i*10, 10)
		time.Sleep(20 * time.Millisecond) // input flows during the rebalance
	}
	t0 := time.Now()
	committedCounts(t, addr, want)
	t1 := time.Now()
	a1.stop(t)
	t2 := time.Now()
	feed(150, 50)
	checkIncreasing(t, committedCounts(t, addr, want))
	t.Logf("counts after scale-out %v, stop %v, counts after take-over %v", t1.Sub(t0), t2.Sub(t1), time.Since(t2))
	a2.stop(t)
}

// TestExactlyOnceBrokerRestart restarts the broker (same data directory
// and address) three times under a running exactly-once app while input
// flows. The app may fail while the broker is away (then it is restarted,
// as a supervisor would); the read_committed counts must end exact.
func TestExactlyOnceBrokerRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	dataDir := t.TempDir()
	startBroker := func() *brokertest.Broker {
		return brokertest.Start(t, brokertest.DataDir(dataDir), brokertest.WithConfig(func(c *broker.Config) { c.Listen = listen }))
	}
	br := startBroker()
	addr := br.Addr()
	createTopics(t, addr, 2, "text-lines", "word-counts")
	stateDir := t.TempDir()
	opts := []stream.AppOpt{stream.Guarantee(stream.ExactlyOnce), stream.StateDir(stateDir),
		stream.ClientOpts(kgo.SessionTimeout(6 * time.Second))}
	app, err := stream.NewApp(wordCount(t), append([]stream.AppOpt{stream.AppID("wc"), stream.Brokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Run(context.Background()) }()
	restarts := 0
	ensureRunning := func() {
		select {
		case err := <-done:
			t.Logf("app stopped (%v); restarting it", err)
			restarts++
			if app, err = stream.NewApp(wordCount(t), append([]stream.AppOpt{stream.AppID("wc"), stream.Brokers(addr)}, opts...)...); err != nil {
				t.Fatal(err)
			}
			go func() { done <- app.Run(context.Background()) }()
		default:
		}
	}
	defer func() {
		app.Close()
		<-done
	}()

	want := map[string]int64{}
	prod := client(t, addr, kgo.DefaultProduceTopic("text-lines"), kgo.RecordRetries(1000))
	feed := func(from, n int) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		var recs []*kgo.Record
		for i := from; i < from+n; i++ {
			recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf("w%d w%d", i%10, i%7))})
			want[fmt.Sprintf("w%d", i%10)]++
			want[fmt.Sprintf("w%d", i%7)]++
		}
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	next := 0
	for range 3 {
		for range 5 {
			feed(next, 20)
			next += 20
			time.Sleep(20 * time.Millisecond) // input flows while the app runs
		}
		br.Stop(t)
		time.Sleep(200 * time.Millisecond) // the broker is away for a while
		br = startBroker()
		ensureRunning()
	}
	feed(next, 50)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ensureRunning()
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		got := readCommittedLatest(ctx, t, addr)
		cancel()
		ok := true
		for k, v := range want {
			if got[k] != v {
				ok = false
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("counts %v, want %v", got, want)
		}
	}
	t.Logf("%d app restarts", restarts)
	checkIncreasing(t, committedCounts(t, addr, want))
}

// readCommittedLatest reads word-counts (read_committed) until ctx ends and
// returns the last count per word.
func readCommittedLatest(ctx context.Context, t *testing.T, addr string) map[string]int64 {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("word-counts"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string]int64{}
	for ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			n, _ := i64.Decode(r.Value)
			got[string(r.Key)] = n
		})
	}
	return got
}
