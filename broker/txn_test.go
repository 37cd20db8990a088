package broker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/brokertest"
)

// txnSeq makes transactional ids unique within the test binary.
var txnSeq atomic.Int64

func newTxnID(prefix string) string { return fmt.Sprintf("%s-tx%d", prefix, txnSeq.Add(1)) }

// newTxnClient returns a transactional franz-go producer.
func newTxnClient(t *testing.T, addr, txnID string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return newClient(t, addr, append([]kgo.Opt{
		kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(10 * time.Second),
	}, opts...)...)
}

// stableOffsets returns ListOffsets latest of every partition of topic, with
// read_committed (the last stable offsets) and read_uncommitted (the high
// watermarks).
func stableOffsets(t *testing.T, addr, topic string) (lso, hw map[int32]int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(newClient(t, addr))
	get := func(fn func(context.Context, ...string) (kadm.ListedOffsets, error)) map[int32]int64 {
		lo, err := fn(ctx, topic)
		if err == nil {
			err = lo.Error()
		}
		if err != nil {
			t.Fatalf("list offsets of %s: %v", topic, err)
		}
		out := map[int32]int64{}
		lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
		return out
	}
	return get(adm.ListCommittedOffsets), get(adm.ListEndOffsets)
}

// readAll reads every partition of topic from the start up to its end for
// the isolation level (last stable offset for read_committed, high watermark
// otherwise) with raw Fetch requests, filtering them as franz-go's consumer
// does (kgo.ProcessFetchPartition: aborted transactions skipped, markers
// dropped), and returns the values sorted. Raw fetches tell exactly where a
// read_committed read has got to, even past records it does not return.
func readAll(t *testing.T, addr, topic string, committed bool) []string {
	t.Helper()
	lso, hw := stableOffsets(t, addr, topic)
	end := hw
	level, levelCode := kgo.ReadUncommitted(), int8(0)
	if committed {
		end, level, levelCode = lso, kgo.ReadCommitted(), 1
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cl := newClient(t, addr)
	var out []string
	for p, e := range end {
		for off := int64(0); off < e; {
			req := kmsg.NewPtrFetchRequest()
			req.Version = 11
			req.ReplicaID, req.MaxWaitMillis, req.MaxBytes, req.IsolationLevel = -1, 100, 1<<20, levelCode
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, off, 1<<20
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatalf("fetch %s/%d at %d: %v", topic, p, off, err)
			}
			sp := &resp.Topics[0].Partitions[0]
			if err := kerr.ErrorForCode(sp.ErrorCode); err != nil {
				t.Fatalf("fetch %s/%d at %d: %v", topic, p, off, err)
			}
			fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
				Offset: off, IsolationLevel: level, Topic: topic, Partition: p,
			}, sp, kgo.DefaultDecompressor(), nil)
			if fp.Err != nil {
				t.Fatalf("process fetch of %s/%d at %d: %v", topic, p, off, fp.Err)
			}
			for _, r := range fp.Records {
				out = append(out, string(r.Value))
			}
			if next <= off {
				t.Fatalf("fetch %s/%d at %d: no progress (want up to %d)", topic, p, off, e)
			}
			off = next
		}
	}
	slices.Sort(out)
	return out
}

func values(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	slices.Sort(out)
	return out
}

func produceTxn(t *testing.T, cl *kgo.Client, topic string, p int32, vals ...string) {
	t.Helper()
	var rs []*kgo.Record
	for _, v := range vals {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)})
	}
	produceSync(t, cl, rs...)
}

func endTxn(t *testing.T, cl *kgo.Client, commit kgo.TransactionEndTry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := cl.EndTransaction(ctx, commit); err != nil {
		t.Fatalf("end transaction (commit %v): %v", commit, err)
	}
}

// TestTxnLastStableOffset: an open transaction holds the last stable offset
// at its first offset (read_committed consumers see nothing of it, ListOffsets
// read_committed reports it); commit releases its records, abort hides them
// for good while read_uncommitted sees everything.
func TestTxnLastStableOffset(t *testing.T) {
	addr := startBroker(t)
	topic := newTopic(t, addr, "txn-lso", 2)
	plain := newClient(t, addr)
	produceSync(t, plain, &kgo.Record{Topic: topic, Partition: 0, Value: []byte("plain")})

	cl := newTxnClient(t, addr, newTxnID("lso"))
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTxn(t, cl, topic, 0, "c1", "c2", "c3")
	produceTxn(t, cl, topic, 1, "c4")
	lso, hw := stableOffsets(t, addr, topic)
	if lso[0] != 1 || hw[0] != 4 || lso[1] != 0 || hw[1] != 1 {
		t.Fatalf("open transaction: lso %v hw %v, want lso {0:1 1:0} hw {0:4 1:1}", lso, hw)
	}
	if got := readAll(t, addr, topic, true); !slices.Equal(got, []string{"plain"}) {
		t.Fatalf("read_committed during the transaction: %q", got)
	}
	endTxn(t, cl, kgo.TryCommit)
	lso, hw = stableOffsets(t, addr, topic)
	if lso[0] != 5 || hw[0] != 5 || lso[1] != 2 || hw[1] != 2 {
		t.Fatalf("after commit: lso %v hw %v, want both {0:5 1:2} (records + marker)", lso, hw)
	}

	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTxn(t, cl, topic, 0, "a1", "a2")
	produceTxn(t, cl, topic, 1, "a3")
	if lso, _ := stableOffsets(t, addr, topic); lso[0] != 5 || lso[1] != 2 {
		t.Fatalf("second transaction open: lso %v, want {0:5 1:2}", lso)
	}
	endTxn(t, cl, kgo.TryAbort)
	produceSync(t, plain, &kgo.Record{Topic: topic, Partition: 0, Value: []byte("after")})

	want := []string{"after", "c1", "c2", "c3", "c4", "plain"}
	if got := readAll(t, addr, topic, true); !slices.Equal(got, want) {
		t.Fatalf("read_committed: %q, want %q", got, want)
	}
	want = []string{"a1", "a2", "a3", "after", "c1", "c2", "c3", "c4", "plain"}
	if got := readAll(t, addr, topic, false); !slices.Equal(got, want) {
		t.Fatalf("read_uncommitted: %q, want %q", got, want)
	}
}

// TestTxnGroupTransactSession runs franz-go's consume-transform-produce loop
// (GroupTransactSession, KIP-447 TxnOffsetCommit v3) with every third
// transaction aborted: the output seen read_committed holds each input record
// exactly once, read_uncommitted also shows the aborted attempts, and the
// group's committed offsets reach the end of the input.
func TestTxnGroupTransactSession(t *testing.T) {
	addr := startBroker(t)
	in := newTopic(t, addr, "txn-in", 2)
	out := newTopic(t, addr, "txn-out", 2)
	const n = 60
	plain := newClient(t, addr)
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, &kgo.Record{Topic: in, Partition: int32(i % 2), Value: fmt.Appendf(nil, "v%03d", i)})
	}
	produceSync(t, plain, rs...)

	group := newGroupName("txn-session")
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(addr),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.TransactionalID(newTxnID("session")),
		kgo.TransactionTimeout(10*time.Second),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(in),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	done, aborted, round := 0, 0, 0
	for done < n {
		fs := sess.PollRecords(ctx, 7)
		if ctx.Err() != nil {
			t.Fatalf("timed out with %d of %d records committed", done, n)
		}
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll: %v", err)
		}
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			sess.Produce(ctx, &kgo.Record{Topic: out, Partition: r.Partition, Value: []byte(strings.ToUpper(string(r.Value)))}, nil)
		}
		round++
		abort := round%3 == 0
		if abort {
			// Send the records, so that the abort has data to remove
			// (ending with TryAbort would drop them unsent).
			if err := sess.Client().Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		committed, err := sess.End(ctx, kgo.TransactionEndTry(!abort))
		if err != nil {
			t.Fatalf("end round %d: %v", round, err)
		}
		switch {
		case committed:
			done += len(recs)
		case abort:
			aborted += len(recs)
		default:
			t.Fatalf("round %d: commit refused without error", round)
		}
	}
	if aborted == 0 {
		t.Fatal("no transaction was aborted")
	}
	want := values("V", n)
	if got := readAll(t, addr, out, true); !slices.Equal(got, want) {
		t.Fatalf("read_committed output (%d values): %q\nwant %d: %q", len(got), got, len(want), want)
	}
	if got := readAll(t, addr, out, false); len(got) != n+aborted {
		t.Fatalf("read_uncommitted output has %d values, want %d committed + %d aborted", len(got), n, aborted)
	}
	adm := kadm.NewClient(newClient(t, addr))
	offs := committedOffsets(t, adm, group, in)
	if offs[0] != n/2 || offs[1] != n/2 {
		t.Fatalf("committed offsets %v, want {0:%d 1:%d}", offs, n/2, n/2)
	}
}

// TestTxnZombieFenced: a second producer initialising the same transactional
// id aborts the first one's open transaction and fences it: its EndTxn and
// produces fail with a fencing error, and none of its records are visible.
func TestTxnZombieFenced(t *testing.T) {
	addr := startBroker(t)
	topic := newTopic(t, addr, "txn-zombie", 1)
	id := newTxnID("zombie")
	zombie := newTxnClient(t, addr, id)
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTxn(t, zombie, topic, 0, "z1", "z2")

	fresh := newTxnClient(t, addr, id)
	if err := fresh.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTxn(t, fresh, topic, 0, "f1")
	if lso, _ := stableOffsets(t, addr, topic); lso[0] != 3 {
		t.Fatalf("lso %v after the zombie's transaction was aborted, want 3 (2 records + marker)", lso)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err := zombie.EndTransaction(ctx, kgo.TryCommit)
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("zombie commit: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	endTxn(t, fresh, kgo.TryCommit)
	if got := readAll(t, addr, topic, true); !slices.Equal(got, []string{"f1"}) {
		t.Fatalf("read_committed: %q, want only the fresh producer's record", got)
	}
}

// TestTxnTimeoutAborts: a transaction left open longer than its
// transaction.timeout.ms is aborted by the broker (clock injected, the abort
// pass called directly), which releases the last stable offset, hides the
// records and fences the producer.
func TestTxnTimeoutAborts(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixMilli())
	b := brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) {
		c.Now = func() time.Time { return time.UnixMilli(now.Load()) }
		c.TransactionAbortInterval = time.Hour // the test runs the pass itself
	}))
	addr := b.Addr()
	topic := newTopic(t, addr, "txn-timeout", 1)
	cl := newTxnClient(t, addr, newTxnID("timeout"), kgo.TransactionTimeout(2*time.Second))
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTxn(t, cl, topic, 0, "s1", "s2")
	if n := b.AbortTimedOutTransactions(); n != 0 {
		t.Fatalf("aborted %d transactions before their timeout", n)
	}
	if lso, _ := stableOffsets(t, addr, topic); lso[0] != 0 {
		t.Fatalf("lso %v, want 0 while the transaction is open", lso)
	}
	now.Add(2001)
	if n := b.AbortTimedOutTransactions(); n != 1 {
		t.Fatalf("aborted %d transactions after the timeout, want 1", n)
	}
	if lso, hw := stableOffsets(t, addr, topic); lso[0] != 3 || hw[0] != 3 {
		t.Fatalf("after the timeout: lso %v hw %v, want 3 (2 records + abort marker)", lso, hw)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := cl.EndTransaction(ctx, kgo.TryCommit); !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("commit after the timeout: %v, want the producer fenced", err)
	}
	if got := readAll(t, addr, topic, true); len(got) != 0 {
		t.Fatalf("read_committed after the timeout: %q, want nothing", got)
	}
}

// TestTxnSurvivesRestart: transaction state, open transactions (the last
// stable offset stays held) and committed data survive a broker restart; a
// new producer with the same id then aborts the open transaction.
func TestTxnSurvivesRestart(t *testing.T) {
	b := brokertest.Start(t)
	addr := b.Addr()
	topic := newTopic(t, addr, "txn-restart", 2)
	id := newTxnID("restart")
	cl := newTxnClient(t, addr, id)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTxn(t, cl, topic, 0, "k1", "k2")
	produceTxn(t, cl, topic, 1, "k3")
	endTxn(t, cl, kgo.TryCommit)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTxn(t, cl, topic, 0, "open1")
	produceTxn(t, cl, topic, 1, "open2")
	cl.Close()

	dir := b.Config.DataDir
	b.Stop(t)
	b = brokertest.Start(t, brokertest.DataDir(dir))
	addr = b.Addr()
	if lso, hw := stableOffsets(t, addr, topic); lso[0] != 3 || lso[1] != 2 || hw[0] != 4 || hw[1] != 3 {
		t.Fatalf("after restart: lso %v hw %v, want lso {0:3 1:2} hw {0:4 1:3}", lso, hw)
	}
	if got := readAll(t, addr, topic, true); !slices.Equal(got, []string{"k1", "k2", "k3"}) {
		t.Fatalf("read_committed after restart: %q", got)
	}
	fresh := newTxnClient(t, addr, id)
	if err := fresh.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTxn(t, fresh, topic, 1, "new")
	endTxn(t, fresh, kgo.TryCommit)
	if got := readAll(t, addr, topic, true); !slices.Equal(got, []string{"k1", "k2", "k3", "new"}) {
		t.Fatalf("read_committed after the new producer: %q", got)
	}
	if got := readAll(t, addr, topic, false); len(got) != 6 {
		t.Fatalf("read_uncommitted: %q, want 6 records", got)
	}
}
