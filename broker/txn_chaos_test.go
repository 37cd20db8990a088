package broker_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/brokertest"
)

// TestTxnChaosAbandonedProducers: transactional producers (a few ids shared
// between rounds) commit, abort, or are abandoned mid-transaction (the
// client closed without EndTxn, as a killed process leaves it), with a seeded
// RNG. An abandoned transaction is aborted either by the next producer of its
// id (fencing) or by the transaction timeout (the clock injected, then the
// abort pass run); the broker is restarted now and then. At the end the last stable offset equals the high
// watermark everywhere and read_committed sees exactly the committed records:
// nothing of an aborted or abandoned transaction is visible.
func TestTxnChaosAbandonedProducers(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	var now atomic.Int64
	now.Store(time.Now().UnixMilli())
	clock := brokertest.WithConfig(func(c *broker.Config) {
		c.Now = func() time.Time { return time.UnixMilli(now.Load()) }
		c.TransactionAbortInterval = time.Hour // run by the test
	})
	b := brokertest.Start(t, clock)
	addr := b.Addr()
	topic := newTopic(t, addr, "txn-chaos", 3)
	killProducers(t, addr, topic, 3)
	ids := []string{newTxnID("chaos"), newTxnID("chaos"), newTxnID("chaos")}
	var committed []string
	abandoned := 0
	for round := range 24 {
		id := ids[rng.IntN(len(ids))]
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.TransactionalID(id), kgo.TransactionTimeout(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		var vals []string
		var rs []*kgo.Record
		for i := range 1 + rng.IntN(5) {
			v := fmt.Sprintf("r%02d-%d", round, i)
			vals = append(vals, v)
			rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(rng.IntN(3)), Value: []byte(v)})
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("round %d: produce: %v", round, err)
		}
		switch rng.IntN(3) {
		case 0:
			if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Fatalf("round %d: commit: %v", round, err)
			}
			committed = append(committed, vals...)
		case 1:
			if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
				t.Fatalf("round %d: abort: %v", round, err)
			}
		default:
			abandoned++ // closed below with the transaction open
		}
		cancel()
		cl.Close()
		if rng.IntN(6) == 0 {
			// The broker restarts: open transactions and their state
			// come back from the logs.
			dir := b.Config.DataDir
			b.Stop(t)
			b = brokertest.Start(t, clock, brokertest.DataDir(dir))
			addr = b.Addr()
		}
		if rng.IntN(4) == 0 {
			// Time passes: transactions abandoned more than 5s ago are
			// aborted by the broker.
			now.Add(6000)
			b.AbortTimedOutTransactions()
		}
	}
	now.Add(6000)
	b.AbortTimedOutTransactions()
	lso, hw := stableOffsets(t, addr, topic)
	for p := range int32(3) {
		if lso[p] != hw[p] {
			t.Fatalf("partition %d: last stable offset %d below the high watermark %d after every transaction ended", p, lso[p], hw[p])
		}
	}
	slices.Sort(committed)
	if got := readAll(t, addr, topic, true); !slices.Equal(got, committed) {
		t.Fatalf("read_committed (seed %d, %d abandoned): %q\nwant %q", seed, abandoned, got, committed)
	}
}

// txnHelperEnv makes the test binary act as a transactional producer that
// opens a transaction, writes to it, says so and waits to be killed.
const txnHelperEnv = "SLUICE_TXN_HELPER"

// TestTxnHelperProcess is the child of killProducers, not a test.
func TestTxnHelperProcess(t *testing.T) {
	args := os.Getenv(txnHelperEnv)
	if args == "" {
		t.Skip("helper process for killProducers")
	}
	f := strings.Split(args, ",")
	addr, topic, id := f[0], f[1], f[2]
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID(id), kgo.TransactionTimeout(5*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for p := range int32(3) {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte("killed-" + id)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	os.Stdout.WriteString("ready\n")
	select {} // until SIGKILL
}

// killProducers runs n child processes that each open a transaction on
// every partition of topic and are killed with SIGKILL once their records
// are acknowledged.
func killProducers(t *testing.T, addr, topic string, n int) {
	t.Helper()
	for i := range n {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestTxnHelperProcess$", "-test.v")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%s,%s", txnHelperEnv, addr, topic, newTxnID(fmt.Sprintf("killed%d", i))))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		ready := false
		for sc.Scan() {
			if strings.Contains(sc.Text(), "ready") {
				ready = true
				break
			}
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if !ready {
			t.Fatalf("helper producer %d exited before its transaction was written", i)
		}
	}
}
