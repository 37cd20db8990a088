package txn

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/broker/internal/cluster"
	"github.com/sluicehq/sluice/broker/internal/group"
	"github.com/sluicehq/sluice/broker/internal/records"
)

type stack struct {
	cl      *cluster.Cluster
	txnLog  *cluster.OffsetsStore
	offsets *cluster.OffsetsStore
	groups  *group.Coordinator
	txns    *Coordinator
}

func open(t *testing.T, dir string) *stack {
	t.Helper()
	cl, err := cluster.Open(cluster.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{cl: cl}
	s.offsets = &cluster.OffsetsStore{C: cl, NumParts: 3}
	s.txnLog = &cluster.OffsetsStore{C: cl, Topic: cluster.TransactionTopic, NumParts: 3}
	if s.groups, err = group.New(group.Config{}, s.offsets); err != nil {
		t.Fatal(err)
	}
	if s.txns, err = New(Config{}, s.txnLog, s.offsets, s.groups); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *stack) close(t *testing.T) {
	t.Helper()
	s.groups.Close()
	if err := s.cl.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestResumeInterruptedCompletion: a broker that stopped after writing
// PrepareCommit (or PrepareAbort) but before the markers finishes the
// transaction when it opens again: markers written, the last stable offset
// released, the aborted index filled for an abort, the state Complete.
func TestResumeInterruptedCompletion(t *testing.T) {
	for _, commit := range []bool{true, false} {
		t.Run(map[bool]string{true: "commit", false: "abort"}[commit], func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir)
			if _, err := s.cl.CreateTopic("data", 1, nil, false); err != nil {
				t.Fatal(err)
			}
			id := "resume"
			init := kmsg.NewPtrInitProducerIDRequest()
			init.TransactionalID, init.TransactionTimeoutMillis = &id, 60000
			ir := s.txns.InitProducerID(init).(*kmsg.InitProducerIDResponse)
			if ir.ErrorCode != 0 {
				t.Fatalf("init: %d", ir.ErrorCode)
			}
			add := kmsg.NewPtrAddPartitionsToTxnRequest()
			add.TransactionalID, add.ProducerID, add.ProducerEpoch = id, ir.ProducerID, ir.ProducerEpoch
			add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "data", Partitions: []int32{0}}}
			if code := s.txns.AddPartitionsToTxn(add).(*kmsg.AddPartitionsToTxnResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
				t.Fatalf("add: %d", code)
			}
			p, _ := s.cl.Partition("data", 0)
			batch := records.AppendBatch(nil, records.BatchSpec{
				Timestamp: time.Now().UnixMilli(), Attributes: records.AttrTransactional,
				ProducerID: ir.ProducerID, ProducerEpoch: ir.ProducerEpoch, BaseSequence: 0,
			}, []records.KV{{Value: []byte("a")}, {Value: []byte("b")}})
			if _, err := p.Append(batch); err != nil {
				t.Fatal(err)
			}
			// Step 1 of a completion only, as if the broker died then.
			tx := s.txns.get(id)
			tx.mu.Lock()
			tx.state = statePrepareAbort
			if commit {
				tx.state = statePrepareCommit
			}
			if err := s.txns.persistLocked(tx); err != nil {
				t.Fatal(err)
			}
			tx.mu.Unlock()
			if lso := p.LastStableOffset(); lso != 0 {
				t.Fatalf("lso %d before the restart, want 0", lso)
			}
			s.close(t)

			s = open(t, dir)
			p, _ = s.cl.Partition("data", 0)
			if lso, end := p.LastStableOffset(), p.Log().EndOffset(); lso != 3 || end != 3 {
				t.Fatalf("after the restart: lso %d end %d, want 3 (2 records + marker)", lso, end)
			}
			aborted := p.AbortedTxns(nil, 0, 3)
			if commit != (len(aborted) == 0) {
				t.Fatalf("aborted index %v for commit=%v", aborted, commit)
			}
			want := stateCompleteAbort
			if commit {
				want = stateCompleteCommit
			}
			if got := s.txns.get(id).state; got != want {
				t.Fatalf("state %v, want %v", got, want)
			}
			// And it stays complete across another restart.
			s.close(t)
			s = open(t, dir)
			defer s.close(t)
			if got := s.txns.get(id).state; got != want {
				t.Fatalf("state after a second restart %v, want %v", got, want)
			}
		})
	}
}
