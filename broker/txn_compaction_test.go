package broker_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker/brokertest"
)

// TestTxnCompaction: the cleaner removes the data of aborted transactions
// (an aborted update must not shadow the committed value of its key), keeps
// the data of committed ones subject to the usual key rule, and leaves an
// open transaction's data and everything after it alone until it ends.
func TestTxnCompaction(t *testing.T) {
	b := brokertest.Start(t)
	addr := b.Addr()
	ctx := testCtx(t)
	admin := newClient(t, addr)
	cfg := map[string]*string{
		"cleanup.policy":            kadm.StringPtr("compact"),
		"segment.bytes":             kadm.StringPtr("4096"),
		"min.cleanable.dirty.ratio": kadm.StringPtr("0.01"),
	}
	const topic = "txn-compacted"
	if _, err := kadm.NewClient(admin).CreateTopic(ctx, 1, 1, cfg, topic); err != nil {
		t.Fatal(err)
	}
	kv := func(k, v string) *kgo.Record { return &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte(v)} }
	cl := newTxnClient(t, addr, newTxnID("compact"), kgo.ProducerLinger(0))
	txn := func(end kgo.TransactionEndTry, rs ...*kgo.Record) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		produceSync(t, cl, rs...)
		endTxn(t, cl, end)
	}
	plain := newClient(t, addr, kgo.ProducerLinger(0))
	filler := func(tag string) {
		for i := range 80 {
			produceSync(t, plain, kv("filler", fmt.Sprintf("%s-%02d-%s", tag, i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")))
		}
	}
	txn(kgo.TryCommit, kv("k1", "c1"), kv("k2", "c2"))
	txn(kgo.TryAbort, kv("k1", "a1"), kv("k3", "a3"))
	filler("f1")
	// An open transaction, then more data behind it.
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceSync(t, cl, kv("k2", "open"))
	filler("f2")

	if n := b.CleanLogs(ctx); n == 0 {
		t.Fatal("the cleaner cleaned nothing")
	}
	last := func(tag string) string {
		return fmt.Sprintf("%s-79-%s", tag, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
	}
	got := readAll(t, addr, topic, false)
	for _, gone := range []string{"a1", "a3"} {
		if slices.Contains(got, gone) {
			t.Fatalf("aborted value %q survived compaction: %q", gone, got)
		}
	}
	for _, kept := range []string{"c1", "c2", "open", last("f1"), last("f2")} {
		if !slices.Contains(got, kept) {
			t.Fatalf("value %q lost by compaction: %q", kept, got)
		}
	}
	if slices.Contains(got, "f2-00-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx") == false {
		t.Fatalf("data after the open transaction was compacted: %q", got)
	}
	if got := readAll(t, addr, topic, true); !slices.Equal(got, []string{"c1", "c2", last("f1")}) {
		t.Fatalf("read_committed with the transaction open: %q", got)
	}

	endTxn(t, cl, kgo.TryCommit)
	filler("f3")
	b.CleanLogs(ctx)
	// The newest filler records sit in the active segment, never cleaned;
	// the committed update of k2 now replaces c2.
	got = readAll(t, addr, topic, true)
	if slices.Contains(got, "c2") || !slices.Contains(got, "open") || !slices.Contains(got, "c1") || !slices.Contains(got, last("f3")) {
		t.Fatalf("read_committed after commit and clean: %q, want c1, open and the newest filler, not c2", got)
	}
}
