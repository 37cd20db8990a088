package stream_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
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
	"github.com/sluicehq/sluice/stream"
)

// The kill -9 test runs a counting app in a child process (this test binary
// re-executed with SLUICE_CHAOS_CHILD set, see TestMain) against a broker in
// the parent, kills it with SIGKILL at seeded-random points (while it
// restores its state, or after it has written some output), restarts it on
// the same state directory each time, and then lets it finish.
//
// What at-least-once guarantees, and so what the test asserts:
//   - No record is lost: each key's final count is at least its number of
//     input records. It may be more: records processed after the last
//     offset commit before a crash are processed again (duplicates, which
//     the test counts and logs).
//   - Nothing committed is undone: the input offsets are committed only
//     after the store's changelog writes are acknowledged, so a restarted
//     instance never counts less than what was committed. Every count it
//     emits for a key is above the number of records of that key below the
//     committed offsets read after the kill (a lower bound of what the
//     restart resumed from).
//   - Within one run of the child a key's counts only go up.
//
// What it does not guarantee: that a key's counts never go down across a
// crash. Output produced after the last commit (a cache flush, or an
// update whose changelog write was still in flight) can show a count that
// the restored state has not reached yet; the reprocessed records then
// emit lower counts. The test counts such regressions and logs them.

const (
	chaosIn    = "chaos-in"
	chaosOut   = "chaos-out"
	chaosGroup = "chaos"
)

// chaosChild is the app run in the child: it counts chaos-in by key into
// the pebble store counts and writes "<count>@<incarnation>" to chaos-out.
// Input records are keyed and the count groups by that key, so there is no
// repartition topic: a committed input offset means the record's update is
// in the changelog.
func chaosChild() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	inc := os.Getenv("SLUICE_CHAOS_INC")
	b := stream.NewBuilder()
	in := stream.Stream(b, []string{chaosIn}, str, str)
	counts := stream.Count(stream.GroupByKey(in), stream.Materialized("counts"))
	stream.MapValues(counts.ToStream(), func(_ string, n int64) string { return strconv.FormatInt(n, 10) + "@" + inc }).
		WithSerdes(str, str).To(chaosOut)
	topo, err := b.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	cache := int64(10 << 20)
	if os.Getenv("SLUICE_CHAOS_NOCACHE") != "" {
		cache = 0
	}
	guarantee := stream.AtLeastOnce
	if os.Getenv("SLUICE_CHAOS_EOS") != "" {
		guarantee = stream.ExactlyOnce
	}
	app, err := stream.NewApp(topo, stream.AppID(chaosGroup), stream.Brokers(os.Getenv("SLUICE_CHAOS_BROKERS")),
		stream.StateDir(os.Getenv("SLUICE_CHAOS_STATE")), stream.CommitInterval(50*time.Millisecond),
		stream.CacheMaxBytes(cache), stream.Logger(log), stream.Guarantee(guarantee),
		// A killed member leaves no LeaveGroup behind: the group waits for
		// its session to expire before the restarted child gets the tasks.
		stream.ClientOpts(kgo.SessionTimeout(time.Second), kgo.HeartbeatInterval(100*time.Millisecond)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	fmt.Println("started")
	if err := app.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child: run:", err)
		return 1
	}
	return 0
}

// chaosProc is one run of the child.
type chaosProc struct {
	cmd      *exec.Cmd
	stderr   *syncBuf
	started  chan struct{} // closed at the "started" line
	restored chan struct{} // closed at the first "restored store" log line
	exited   chan struct{}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startChaosChild(t *testing.T, addr, stateDir string, inc int, noCache bool, env ...string) *chaosProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SLUICE_CHAOS_CHILD=1", "SLUICE_CHAOS_BROKERS="+addr, "SLUICE_CHAOS_STATE="+stateDir,
		"SLUICE_CHAOS_INC="+strconv.Itoa(inc))
	cmd.Env = append(cmd.Env, env...)
	if noCache {
		cmd.Env = append(cmd.Env, "SLUICE_CHAOS_NOCACHE=1")
	}
	p := &chaosProc{cmd: cmd, stderr: &syncBuf{}, started: make(chan struct{}), restored: make(chan struct{}), exited: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pipes sync.WaitGroup
	pipes.Go(func() {
		sc := bufio.NewScanner(stdout)
		once := sync.OnceFunc(func() { close(p.started) })
		for sc.Scan() {
			if sc.Text() == "started" {
				once()
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	})
	pipes.Go(func() {
		sc := bufio.NewScanner(stderr)
		once := sync.OnceFunc(func() { close(p.restored) })
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.stderr, line)
			if strings.Contains(line, "restored store") {
				once()
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	})
	go func() {
		pipes.Wait() // Wait closes the pipes: read them to the end first
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.kill)
	return p
}

func (p *chaosProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// inRec is where an input record landed.
type inRec struct {
	key       string
	partition int32
	offset    int64
}

// outRec is an output record: a key's count as emitted by one incarnation.
type outRec struct {
	count int64
	inc   int
}

func TestKillNine(t *testing.T) {
	const keys, partitions, kills = 100, 4, 6
	n := 20_000
	if testing.Short() {
		n = 5_000
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SLUICE_CHAOS_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (set SLUICE_CHAOS_SEED to repeat)", seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	addr := brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) { c.GroupMinSessionTimeout = time.Second })).Addr()
	createTopics(t, addr, partitions, chaosIn, chaosOut)
	stateDir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, addr))

	// The output, read as it comes; by key in partition (= time) order.
	var mu sync.Mutex
	outs := map[string][]outRec{}
	perInc := map[int]int{}
	consumed := map[int32]int64{} // next offset per partition
	outCl := client(t, addr, kgo.ConsumeTopics(chaosOut), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
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
				consumed[r.Partition] = r.Offset + 1
			})
			mu.Unlock()
		}
	}()
	defer func() {
		cancel()
		<-consumerDone
	}()

	// poll waits for cond, bounded by ctx (and, if given, a child's exit).
	poll := func(what string, p *chaosProc, cond func() bool) {
		t.Helper()
		for !cond() {
			var exited <-chan struct{}
			if p != nil {
				exited = p.exited
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: not reached in time", what)
			case <-exited:
				t.Fatalf("%s: the child exited\n%s", what, p.stderr)
			case <-time.After(10 * time.Millisecond): // polling a condition with a deadline
			}
		}
	}
	// idle: the group has committed everything written to chaos-in.
	idle := func() bool {
		ends, err := adm.ListEndOffsets(ctx, chaosIn)
		if err != nil {
			return false
		}
		com, err := adm.FetchOffsets(ctx, chaosGroup)
		if err != nil {
			return false
		}
		done := true
		ends.Each(func(e kadm.ListedOffset) {
			if c, ok := com.Lookup(e.Topic, e.Partition); e.Offset > 0 && (!ok || c.At < e.Offset) {
				done = false
			}
		})
		return done
	}
	committed := func() map[int32]int64 {
		com, err := adm.FetchOffsets(ctx, chaosGroup)
		if err != nil {
			t.Fatalf("fetch committed offsets: %v", err)
		}
		m := map[int32]int64{}
		com.Each(func(o kadm.OffsetResponse) {
			if o.Topic == chaosIn && o.Err == nil {
				m[o.Partition] = o.At
			}
		})
		return m
	}

	prod := client(t, addr)
	var inputs []inRec
	want := map[string]int64{}
	produce := func(count int) {
		t.Helper()
		recs := make([]*kgo.Record, count)
		for i := range recs {
			k := fmt.Sprintf("k%02d", rng.IntN(keys))
			recs[i] = &kgo.Record{Topic: chaosIn, Key: []byte(k), Value: []byte("x")}
		}
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		for _, r := range recs {
			inputs = append(inputs, inRec{string(r.Key), r.Partition, r.Offset})
			want[string(r.Key)]++
		}
	}

	// floor[inc][key]: every count incarnation inc emits for key must be
	// above it (the records of key below the offsets committed before inc
	// started).
	floors := map[int]map[string]int64{0: {}}
	chunk := n / kills
	var modes []string
	for inc := range kills {
		noCache := rng.IntN(2) == 0
		size := chunk
		if inc == kills-1 {
			size = n - chunk*(kills-1)
		}
		t0 := time.Now()
		p := startChaosChild(t, addr, stateDir, inc, noCache)
		var mode string
		if inc == 2 || inc > 0 && rng.IntN(4) == 0 {
			// Kill while the tasks restore their stores (the first task
			// is restored; others may be under way).
			mode = "while restoring"
			select {
			case <-p.restored:
			case <-p.exited:
				t.Fatalf("child %d exited\n%s", inc, p.stderr)
			case <-ctx.Done():
				t.Fatalf("child %d did not restore in time\n%s", inc, p.stderr)
			}
		} else {
			// Feed the chunk in batches while the child runs; kill it
			// after m outputs of its own (or once it has caught up).
			m := 1 + rng.IntN(size/4)
			if !noCache {
				m = 1 + rng.IntN(300) // the cache emits each key once per commit
			}
			mode = fmt.Sprintf("after %d outputs", m)
			outputs := func() bool {
				mu.Lock()
				defer mu.Unlock()
				return perInc[inc] >= m
			}
			for left := size; left > 0; left -= 100 {
				produce(min(left, 100))
				if outputs() {
					mode += fmt.Sprintf(", %d input records still to write", left-min(left, 100))
					break
				}
			}
			poll(fmt.Sprintf("child %d: %d outputs", inc, m), p, func() bool { return outputs() || idle() })
		}
		p.kill()
		// Write what is left of the chunk while no child runs.
		target := chunk*inc + size
		for len(inputs) < target {
			produce(min(100, target-len(inputs)))
		}
		mu.Lock()
		mode += fmt.Sprintf(" (cache %t; %d outputs; ran %v)", !noCache, perInc[inc], time.Since(t0).Round(time.Millisecond))
		mu.Unlock()
		modes = append(modes, mode)
		// Committed offsets only grow: reading them now gives a lower
		// bound of where the next incarnation resumes.
		com := committed()
		floor := map[string]int64{}
		for _, r := range inputs {
			if off, ok := com[r.partition]; ok && r.offset < off {
				floor[r.key]++
			}
		}
		floors[inc+1] = floor
	}
	t.Logf("kills: %s", strings.Join(modes, "; "))

	// The last run goes to the end: everything committed, then the output
	// is complete (it is acknowledged before the offsets are committed).
	final := startChaosChild(t, addr, stateDir, kills, false)
	poll("all input committed", final, idle)
	ends, err := adm.ListEndOffsets(ctx, chaosOut)
	if err != nil {
		t.Fatal(err)
	}
	poll("all output read", nil, func() bool {
		mu.Lock()
		defer mu.Unlock()
		done := true
		ends.Each(func(e kadm.ListedOffset) {
			if consumed[e.Partition] < e.Offset {
				done = false
			}
		})
		return done
	})
	_ = final.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-final.exited:
	case <-ctx.Done():
		t.Fatal("the last child did not stop on SIGTERM")
	}
	if s := final.stderr.String(); strings.Contains(s, "DATA RACE") || strings.Contains(s, "child: run:") {
		t.Errorf("the last child failed:\n%s", s)
	}

	mu.Lock()
	defer mu.Unlock()
	var dups, regressions, total int64
	for k, w := range want {
		seq := outs[k]
		total += w
		if len(seq) == 0 {
			t.Errorf("%s: no output, want count %d", k, w)
			continue
		}
		last := seq[len(seq)-1].count
		if last < w {
			t.Errorf("%s: final count %d < %d input records: records lost", k, last, w)
		}
		dups += last - w
		var prev outRec
		var maxSeen int64
		for i, o := range seq {
			if f := floors[o.inc][k]; o.count <= f {
				t.Errorf("%s: incarnation %d emitted %d, but %d records of the key were committed before it started", k, o.inc, o.count, f)
			}
			if i > 0 && o.inc == prev.inc && o.count <= prev.count {
				t.Errorf("%s: count went from %d to %d within incarnation %d", k, prev.count, o.count, o.inc)
			}
			if o.count < maxSeen {
				regressions++
			}
			maxSeen = max(maxSeen, o.count)
			prev = o
		}
	}
	t.Logf("%d records over %d keys, %d kills: %d duplicate counts (%.2f%%), %d outputs below an earlier count (allowed after a crash)",
		total, len(want), kills, dups, 100*float64(dups)/float64(total), regressions)
}
