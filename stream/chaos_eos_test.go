package stream_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/brokertest"
)

// TestKillNineExactlyOnce is TestKillNine under stream.ExactlyOnce: the
// counting app in a child process is killed with SIGKILL at seeded-random
// points (while restoring, after some committed outputs, or after a random
// time, which lands mid-transaction most of the time) while input flows,
// restarted on the same state directory each time (same transactional ids:
// the restart fences and aborts the dead incarnation's open transaction),
// and finally runs to the end.
//
// What exactly-once guarantees, and the test asserts, on the output read
// with read_committed: every key's counts strictly increase across all
// incarnations (a repeated or lower count would be a record counted twice,
// or state restored to something other than the last commit), and the
// last count of each key is exactly its number of input records.
//
// SLUICE_CHAOS_KILLS sets the number of kills (default 20, about 30 s
// with -race on 2 cores; 5 with -short); SLUICE_CHAOS_SEED repeats a run.
func TestKillNineExactlyOnce(t *testing.T) {
	const keys, partitions = 100, 4
	kills := 20
	if s := os.Getenv("SLUICE_CHAOS_KILLS"); s != "" {
		var err error
		if kills, err = strconv.Atoi(s); err != nil || kills < 1 {
			t.Fatalf("SLUICE_CHAOS_KILLS=%q: want a positive number", s)
		}
	}
	n := 20_000
	if testing.Short() {
		kills, n = min(kills, 5), 5_000
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SLUICE_CHAOS_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (set SLUICE_CHAOS_SEED to repeat), %d kills", seed, kills)
	rng := rand.New(rand.NewPCG(seed, seed))

	addr := brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) { c.GroupMinSessionTimeout = time.Second })).Addr()
	createTopics(t, addr, partitions, chaosIn, chaosOut)
	stateDir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), time.Duration(30+5*kills)*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, addr))
	eos := "SLUICE_CHAOS_EOS=1"

	var mu sync.Mutex
	outs := map[string][]outRec{}
	perInc := map[int]int{}
	outCl := client(t, addr, kgo.ConsumeTopics(chaosOut), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	consumerDone := make(chan struct{})
	go func() {
		defer close(consumerDone)
		for ctx.Err() == nil {
			fs := outCl.PollFetches(ctx)
			mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				c, i, ok := strings.Cut(string(r.Value), "@")
				cnt, err1 := strconv.ParseInt(c, 10, 64)
				inc, err2 := strconv.Atoi(i)
				if !ok || err1 != nil || err2 != nil {
					t.Errorf("bad output value %q", r.Value)
					return
				}
				outs[string(r.Key)] = append(outs[string(r.Key)], outRec{cnt, inc})
				perInc[inc]++
			})
			mu.Unlock()
		}
	}()
	defer func() {
		cancel()
		<-consumerDone
	}()
	poll := func(what string, p *chaosProc, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case <-ctx.Done():
				t.Fatalf("%s: not reached in time", what)
			case <-p.exited:
				t.Fatalf("%s: the child exited\n%s", what, p.stderr)
			case <-time.After(10 * time.Millisecond): // polling a condition with a deadline
			}
		}
	}

	prod := client(t, addr)
	want := map[string]int64{}
	written := 0
	produce := func(count int) {
		t.Helper()
		recs := make([]*kgo.Record, count)
		for i := range recs {
			k := fmt.Sprintf("k%02d", rng.IntN(keys))
			recs[i] = &kgo.Record{Topic: chaosIn, Key: []byte(k), Value: []byte("x")}
			want[k]++
		}
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		written += count
	}

	chunk := n / kills
	var modes []string
	for inc := range kills {
		noCache := rng.IntN(2) == 0
		size := chunk
		if inc == kills-1 {
			size = n - chunk*(kills-1)
		}
		t0 := time.Now()
		p := startChaosChild(t, addr, stateDir, inc, noCache, eos)
		var mode string
		// Wait for the tasks (restore logged), then make the input flow
		// in small batches while the child processes it.
		select {
		case <-p.restored:
		case <-p.exited:
			t.Fatalf("child %d exited\n%s", inc, p.stderr)
		case <-ctx.Done():
			t.Fatalf("child %d did not restore in time\n%s", inc, p.stderr)
		}
		var stop func() bool
		switch r := rng.IntN(5); {
		case inc > 0 && r == 0:
			mode = "while restoring"
			stop = func() bool { return true }
		case r <= 2:
			// A random time: usually mid-transaction.
			d := time.Duration(rng.IntN(800)) * time.Millisecond
			mode = fmt.Sprintf("%v after the restore", d)
			at := time.Now().Add(d)
			stop = func() bool { return time.Now().After(at) }
		default:
			m := 1 + rng.IntN(size/2)
			if !noCache {
				m = 1 + rng.IntN(keys) // the cache emits each key once per commit
			}
			mode = fmt.Sprintf("after %d committed outputs", m)
			stop = func() bool {
				mu.Lock()
				defer mu.Unlock()
				return perInc[inc] >= m
			}
		}
		for left := size; left > 0 && !stop(); left -= 25 {
			produce(min(left, 25))
			time.Sleep(10 * time.Millisecond) // input flows while the child runs
		}
		poll(fmt.Sprintf("child %d: %s", inc, mode), p, func() bool { return stop() || written == chunk*inc+size })
		p.kill()
		for target := chunk*inc + size; written < target; {
			produce(min(100, target-written))
		}
		mu.Lock()
		mode += fmt.Sprintf(" (cache %t; %d outputs; ran %v)", !noCache, perInc[inc], time.Since(t0).Round(time.Millisecond))
		mu.Unlock()
		modes = append(modes, mode)
	}
	t.Logf("kills: %s", strings.Join(modes, "; "))

	final := startChaosChild(t, addr, stateDir, kills, false, eos)
	poll("exact final counts in the read_committed output", final, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for k, w := range want {
			seq := outs[k]
			if len(seq) == 0 || seq[len(seq)-1].count < w {
				return false
			}
		}
		return true
	})
	// Let the last child commit anything further it might (wrongly) emit.
	time.Sleep(300 * time.Millisecond) // a quiet period; nothing to poll for
	_ = final.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-final.exited:
	case <-ctx.Done():
		t.Fatal("the last child did not stop on SIGTERM")
	}
	if s := final.stderr.String(); strings.Contains(s, "DATA RACE") || strings.Contains(s, "child: run:") {
		t.Errorf("the last child failed:\n%s", s)
	}
	if _, err := adm.ListEndOffsets(ctx, chaosOut); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	var total, outputs int64
	for k, w := range want {
		seq := outs[k]
		total += w
		outputs += int64(len(seq))
		if last := seq[len(seq)-1].count; last != w {
			t.Errorf("%s: final count %d, want exactly %d", k, last, w)
		}
		for i := 1; i < len(seq); i++ {
			if seq[i].count <= seq[i-1].count {
				t.Errorf("%s: committed count went from %d (incarnation %d) to %d (incarnation %d)",
					k, seq[i-1].count, seq[i-1].inc, seq[i].count, seq[i].inc)
				break
			}
		}
	}
	t.Logf("%d records over %d keys, %d kills: %d committed outputs, every count exact", total, len(want), kills, outputs)
}
