package stream_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/stream"
)

// brokerChild runs a broker on the listener passed as fd 3 and the data
// dir in SLUICE_BROKER_CHILD, until killed.
func brokerChild() int {
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "broker child:", err)
		return 2
	}
	b, err := broker.New(broker.Config{DataDir: os.Getenv("SLUICE_BROKER_CHILD"), Listener: ln,
		GroupMinSessionTimeout: time.Second, TransactionAbortInterval: 200 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, "broker child:", err)
		return 2
	}
	fmt.Println("ready")
	if err := b.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "broker child:", err)
		return 2
	}
	return 0
}

type brokerProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startBrokerChild(t *testing.T, dir string, ln *os.File) *brokerProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SLUICE_BROKER_CHILD="+dir)
	cmd.ExtraFiles = []*os.File{ln}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &brokerProc{cmd: cmd, done: make(chan struct{})}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ready <- sc.Scan() && sc.Text() == "ready"
		for sc.Scan() {
		}
	}()
	go func() { _ = cmd.Wait(); close(p.done) }()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("broker child did not start")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("broker child not ready after 30s")
	}
	return p
}

func (p *brokerProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// TestExactlyOnceBrokerKilled runs an exactly-once counting app while its
// broker, in a child process, is killed with SIGKILL and restarted several
// times; the app is restarted (same instance id and state dir) whenever it
// gave up. At the end every key's count in the read_committed output is
// exact: nothing lost, nothing counted twice.
func TestExactlyOnceBrokerKilled(t *testing.T) {
	kills := 6
	if testing.Short() {
		kills = 3
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))

	lnTCP, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lnFile, err := lnTCP.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	addr := lnTCP.Addr().String()
	lnTCP.Close()
	defer lnFile.Close()
	dataDir := t.TempDir()
	bp := startBrokerChild(t, dataDir, lnFile)
	defer func() { bp.kill() }()

	createTopics(t, addr, 2, "eos-in", "eos-out")
	b := stream.NewBuilder()
	s := stream.Stream(b, []string{"eos-in"}, str, str)
	stream.TableMapValues(stream.Count(stream.GroupByKey(s), stream.Materialized("counts")), func(_ string, n int64) string {
		return strconv.FormatInt(n, 10)
	}).WithSerdes(str, serde.String()).ToStream().To("eos-out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	var (
		appMu sync.Mutex
		app   *stream.App
		done  chan error
	)
	startAppRun := func() {
		a, err := stream.NewApp(topo, stream.AppID("eos-broker-chaos"), stream.Brokers(addr), stream.StateDir(stateDir),
			stream.Guarantee(stream.ExactlyOnce), stream.InstanceID("only"))
		if err != nil {
			t.Fatal(err)
		}
		d := make(chan error, 1)
		go func() { d <- a.Run(context.Background()) }()
		appMu.Lock()
		app, done = a, d
		appMu.Unlock()
	}
	startAppRun()
	defer func() {
		appMu.Lock()
		defer appMu.Unlock()
		app.Close()
		<-done
	}()

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	prod := client(t, addr, kgo.RecordRetries(1000), kgo.RetryTimeout(time.Minute))
	want := map[string]int64{}
	for round := range kills {
		var recs []*kgo.Record
		for range 200 {
			k := fmt.Sprintf("k%d", rng.IntN(20))
			want[k]++
			recs = append(recs, &kgo.Record{Topic: "eos-in", Key: []byte(k), Value: []byte("x")})
		}
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("round %d: produce: %v", round, err)
		}
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond) // let the app work, then kill mid-flight
		bp.kill()
		bp = startBrokerChild(t, dataDir, lnFile)
		appMu.Lock()
		select {
		case err := <-done:
			t.Logf("round %d: the app stopped (%v); starting it again", round, err)
			appMu.Unlock()
			startAppRun()
		default:
			appMu.Unlock()
		}
	}

	out := client(t, addr, kgo.ConsumeTopics("eos-out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	got := map[string]int64{}
	for {
		match := len(got) == len(want)
		for k, w := range want {
			if got[k] != w {
				match = false
			}
		}
		if match {
			break
		}
		appMu.Lock()
		select {
		case err := <-done:
			t.Logf("the app stopped (%v); starting it again", err)
			appMu.Unlock()
			startAppRun()
		default:
			appMu.Unlock()
		}
		fs := out.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("counts %v, want %v", got, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			n, _ := strconv.ParseInt(string(r.Value), 10, 64)
			if prev := got[string(r.Key)]; n <= prev {
				t.Errorf("key %s: count %d after %d (a duplicate or a step back)", r.Key, n, prev)
			}
			got[string(r.Key)] = n
		})
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("key %s: count %d, want %d", k, got[k], w)
		}
	}

}
