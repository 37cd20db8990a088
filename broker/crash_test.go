package broker_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker"
)

// The crash tests run the broker in a child process (this test binary,
// re-executed with SLUICE_CRASH_CHILD set) on a listener the parent owns and
// passes down as fd 3, so every restart serves the same address.
func TestMain(m *testing.M) {
	if dir := os.Getenv("SLUICE_CRASH_CHILD"); dir != "" {
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

func crashChild(dir string) {
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: listener:", err)
		os.Exit(2)
	}
	policy, _ := broker.ParseFsyncPolicy(os.Getenv("SLUICE_CRASH_FSYNC"))
	b, err := broker.New(broker.Config{
		DataDir:  dir,
		Listener: ln,
		Fsync:    policy,
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		TopicDefaults: map[string]string{
			"segment.bytes": "65536", // many segments, so kills land in rolls too
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: start:", err)
		os.Exit(2)
	}
	fmt.Println("ready", b.Addr())
	if err := b.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "child: run:", err)
		os.Exit(2)
	}
}

type crashBroker struct {
	t     *testing.T
	dir   string
	ln    *os.File
	addr  string
	fsync string
	cmd   *exec.Cmd
	out   *strings.Builder
}

func newCrashBroker(t *testing.T, fsync string) *crashBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the duplicated fd in f keeps the socket listening
	cb := &crashBroker{t: t, dir: t.TempDir(), ln: f, addr: addr, fsync: fsync}
	t.Cleanup(func() {
		cb.kill()
		f.Close()
	})
	return cb
}

func (cb *crashBroker) start() {
	cb.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SLUICE_CRASH_CHILD="+cb.dir, "SLUICE_CRASH_FSYNC="+cb.fsync)
	cmd.ExtraFiles = []*os.File{cb.ln}
	cb.out = &strings.Builder{}
	cmd.Stderr = &syncWriter{w: cb.out}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cb.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cb.t.Fatal(err)
	}
	cb.cmd = cmd
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && !strings.HasPrefix(line, "ready ") {
			err = fmt.Errorf("unexpected first line %q", line)
		}
		ready <- err
		_, _ = bufio.NewReader(stdout).WriteTo(discard{})
	}()
	select {
	case err := <-ready:
		if err != nil {
			cb.t.Fatalf("child broker did not start: %v\n%s", err, cb.out)
		}
	case <-time.After(30 * time.Second):
		cb.t.Fatalf("child broker not ready after 30s\n%s", cb.out)
	}
}

func (cb *crashBroker) kill() {
	if cb.cmd == nil {
		return
	}
	_ = cb.cmd.Process.Signal(syscall.SIGKILL)
	_ = cb.cmd.Wait()
	cb.cmd = nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// TestCrashKeepsAcknowledgedRecords kills the broker with SIGKILL at random
// points while an idempotent acks=all producer writes, restarts it on the
// same data, and checks that every acknowledged record is there exactly once,
// in order, at the offset it was acknowledged with.
func TestCrashKeepsAcknowledgedRecords(t *testing.T) {
	for _, fsync := range []string{"interval", "always"} {
		t.Run("fsync="+fsync, func(t *testing.T) { crashRun(t, fsync) })
	}
}

func crashRun(t *testing.T, fsync string) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SLUICE_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (rerun with SLUICE_CRASH_SEED)", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	kills := 8
	if testing.Short() {
		kills = 3
	}

	cb := newCrashBroker(t, fsync)
	cb.start()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cb.addr), kgo.DefaultProduceTopic("crash"),
		kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, "crash"); err != nil {
		t.Fatal(err)
	}

	type ack struct {
		seq       int
		partition int32
		offset    int64
	}
	var (
		mu    sync.Mutex
		acked []ack
		fails int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for seq := 0; ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			r := &kgo.Record{Key: []byte(strconv.Itoa(seq % 2)), Value: []byte(strconv.Itoa(seq)), Partition: int32(seq % 2)}
			cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					fails++
					return
				}
				acked = append(acked, ack{seq, r.Partition, r.Offset})
			})
			if seq%64 == 63 {
				time.Sleep(time.Millisecond) // pace the producer a little: this is load, not synchronisation
			}
		}
	})
	for range kills {
		// Let the producer run for a random while, then kill mid-flight.
		time.Sleep(time.Duration(20+rng.IntN(200)) * time.Millisecond)
		cb.kill()
		cb.start()
	}
	close(stop)
	wg.Wait()
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush after the last restart: %v", err)
	}
	cb.kill()
	cb.start()

	mu.Lock()
	defer mu.Unlock()
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged")
	}
	t.Logf("%d records acknowledged across %d kills (%d failed)", len(acked), kills, fails)

	// Read everything back on a fresh broker process.
	got := map[int32]map[int64]int{0: {}, 1: {}}
	end, err := kadm.NewClient(cl).ListEndOffsets(ctx, "crash")
	if err != nil {
		t.Fatal(err)
	}
	c, err := kgo.NewClient(kgo.SeedBrokers(cb.addr), kgo.ConsumeTopics("crash"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := 0
	end.Each(func(o kadm.ListedOffset) { want += int(o.Offset) })
	seen := map[int]int64{}
	for n := 0; n < want; {
		fs := c.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume after %d of %d: %v", n, want, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			n++
			seq, _ := strconv.Atoi(string(r.Value))
			if prev, dup := seen[seq]; dup {
				t.Errorf("record %d stored twice: offsets %d and %d", seq, prev, r.Offset)
			}
			seen[seq] = r.Offset
			got[r.Partition][r.Offset] = seq
		})
	}
	missing := 0
	for _, a := range acked {
		if s, ok := got[a.partition][a.offset]; !ok || s != a.seq {
			if missing++; missing > 20 {
				continue
			}
			t.Errorf("acknowledged record %d at %d/%d: found %d (present %t)", a.seq, a.partition, a.offset, s, ok)
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged records missing or wrong", missing, len(acked))
	}
	// Per partition, sequence numbers increase with offsets.
	for p, m := range got {
		offs := make([]int64, 0, len(m))
		for o := range m {
			offs = append(offs, o)
		}
		sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
		for i := 1; i < len(offs); i++ {
			if m[offs[i]] < m[offs[i-1]] {
				t.Fatalf("partition %d out of order: %d at %d after %d at %d", p, m[offs[i]], offs[i], m[offs[i-1]], offs[i-1])
			}
		}
	}
	if t.Failed() {
		t.Logf("broker output:\n%s", cb.out)
	}
}

// segmentFiles lists a partition's segment files, oldest first.
func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}
