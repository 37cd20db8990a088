package broker_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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

// TestTxnCompactionMarkers: on a compacted topic written by a
// transactional producer (one marker per transaction, as a changelog under
// exactly-once), the cleaner removes the markers of transactions whose
// data all went, after delete.retention.ms; read_committed reads still see
// exactly the latest committed values, and after a restart the rebuilt
// transaction state has nothing open (last stable offset = high
// watermark).
func TestTxnCompactionMarkers(t *testing.T) {
	b := brokertest.Start(t)
	addr := b.Addr()
	ctx := testCtx(t)
	admin := newClient(t, addr)
	cfg := map[string]*string{
		"cleanup.policy":            kadm.StringPtr("compact"),
		"segment.bytes":             kadm.StringPtr("4096"),
		"min.cleanable.dirty.ratio": kadm.StringPtr("0.01"),
		"delete.retention.ms":       kadm.StringPtr("0"),
	}
	const topic = "txn-compacted-markers"
	if _, err := kadm.NewClient(admin).CreateTopic(ctx, 1, 1, cfg, topic); err != nil {
		t.Fatal(err)
	}
	kv := func(k, v string) *kgo.Record { return &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte(v)} }
	cl := newTxnClient(t, addr, newTxnID("markers"), kgo.ProducerLinger(0))
	const txns = 60
	var latest []string
	for i := range txns {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		abort := i%7 == 3
		var rs []*kgo.Record
		for k := range 3 {
			v := fmt.Sprintf("t%02d-k%d", i, k)
			if abort {
				v = fmt.Sprintf("ab%02d-k%d", i, k)
			}
			rs = append(rs, kv(fmt.Sprint("k", k), v))
		}
		produceSync(t, cl, rs...)
		if abort {
			endTxn(t, cl, kgo.TryAbort)
		} else {
			endTxn(t, cl, kgo.TryCommit)
			latest = nil
			for _, r := range rs {
				latest = append(latest, string(r.Value))
			}
		}
	}
	// Plain records to roll the segment: the transactions are all in
	// closed segments.
	plain := newClient(t, addr, kgo.ProducerLinger(0))
	for i := range 60 {
		produceSync(t, plain, kv("filler", fmt.Sprintf("filler-%02d-%s", i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")))
	}
	before := countMarkers(t, addr, topic)
	if before != txns {
		t.Fatalf("%d markers before cleaning, want %d", before, txns)
	}
	txnValues := func() []string {
		var out []string
		for _, v := range readAll(t, addr, topic, true) {
			if v[0] == 't' || v[0] == 'a' {
				out = append(out, v)
			}
		}
		return out
	}
	slices.Sort(latest)

	// The first pass stamps the empty transactions' markers with a delete
	// horizon (now + 0), the next removes them; a few more passes merge
	// the cleaned segments.
	for range 4 {
		b.CleanLogs(ctx)
		time.Sleep(5 * time.Millisecond)
	}
	after := countMarkers(t, addr, topic)
	t.Logf("%d markers before cleaning, %d after", before, after)
	// Left: the latest committed transaction's marker (its data stays),
	// and the producer's last batch in each cleaned segment (a marker
	// here), for its epoch.
	if after > 6 {
		t.Fatalf("%d markers left of %d", after, before)
	}
	if got := txnValues(); !slices.Equal(got, latest) {
		t.Fatalf("read_committed after cleaning: %q, want %q", got, latest)
	}
	lso, hw := stableOffsets(t, addr, topic)
	if lso[0] != hw[0] {
		t.Fatalf("last stable offset %d, high watermark %d", lso[0], hw[0])
	}

	dir := b.Config.DataDir
	b.Stop(t)
	b2 := brokertest.Start(t, brokertest.DataDir(dir))
	addr = b2.Addr()
	lso, hw = stableOffsets(t, addr, topic)
	if lso[0] != hw[0] {
		t.Fatalf("after a restart: last stable offset %d, high watermark %d", lso[0], hw[0])
	}
	if got := txnValues(); !slices.Equal(got, latest) {
		t.Fatalf("read_committed after a restart: %q, want %q", got, latest)
	}
	// The producer's epoch survived: it can go on.
	cl2 := newTxnClient(t, addr, newTxnID("markers"), kgo.ProducerLinger(0))
	if err := cl2.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceSync(t, cl2, kv("k0", "new"))
	endTxn(t, cl2, kgo.TryCommit)
	if lso, hw = stableOffsets(t, addr, topic); lso[0] != hw[0] {
		t.Fatalf("after a new transaction: last stable offset %d, high watermark %d", lso[0], hw[0])
	}
}

// countMarkers counts the control batches of partition 0 of topic with raw
// read_uncommitted fetches up to the high watermark.
func countMarkers(t *testing.T, addr, topic string) int {
	t.Helper()
	_, hw := stableOffsets(t, addr, topic)
	cl := newClient(t, addr)
	n := 0
	for off := int64(0); off < hw[0]; {
		req := kmsg.NewPtrFetchRequest()
		req.Version = 11
		req.ReplicaID, req.MaxWaitMillis, req.MaxBytes = -1, 100, 1<<20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = 0, off, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(t.Context(), cl)
		if err != nil {
			t.Fatalf("fetch at %d: %v", off, err)
		}
		sp := &resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(sp.ErrorCode); err != nil {
			t.Fatalf("fetch at %d: %v", off, err)
		}
		start := off
		for raw := sp.RecordBatches; len(raw) >= 12; {
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(raw); err != nil {
				break // a partial batch at the end
			}
			raw = raw[12+int(rb.Length):]
			if rb.Attributes&0x20 != 0 {
				n++
			}
			off = rb.FirstOffset + int64(rb.LastOffsetDelta) + 1
		}
		if off == start {
			t.Fatalf("fetch at %d: no progress", off)
		}
	}
	return n
}
