// Package txn is the broker's transaction coordinator: InitProducerId with
// a transactional id, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, the
// checks behind transactional Produce and TxnOffsetCommit, and the abort of
// transactions open longer than their timeout.
//
// It is a package of its own, beside package group, because its state
// machine and storage are its own; it drives the group coordinator only
// through group.Coordinator.TxnOffsetCommit and CompleteTxn.
//
// # State and storage
//
// One record per transactional id holds its producer id and epoch, timeout,
// state and partitions: Kafka's formats (kmsg.TxnMetadataKey v0 and
// kmsg.TxnMetadataValue v0), written to the compacted internal topic
// __transaction_state on every state change, in the partition
// abs(javaHashCode(id)) % partitions as Kafka computes it. The topic has
// transaction.state.log.num.partitions partitions (Config default 50, as in
// Kafka: the partitions cost little on one node, and tools that compute a
// transactional id's partition agree with Kafka's). On start the coordinator
// replays the topic, keeping each id's latest record.
//
// States (Kafka's): Empty -> Ongoing (first AddPartitionsToTxn or
// AddOffsetsToTxn) -> PrepareCommit | PrepareAbort (EndTxn, a fencing
// InitProducerId, or the timeout) -> CompleteCommit | CompleteAbort -> Ongoing
// again, and so on. Completing a transaction is:
//
//  1. write PrepareCommit/PrepareAbort with the transaction's partitions;
//  2. write a COMMIT/ABORT marker to every partition of the transaction
//     (for a __consumer_offsets partition, then materialise or drop the
//     group's pending offsets), fsynced first with fsync=always;
//  3. write CompleteCommit/CompleteAbort, and only then answer.
//
// A restart between 1 and 3 finds the Prepare state on replay and resumes at
// step 2 before the broker serves anyone (a marker may then be written
// twice to a partition; the second closes nothing). A failure in step 2
// leaves the Prepare state: the client's retry of EndTxn, an InitProducerId
// or the timeout loop resume it.
//
// Fencing: InitProducerId for an id with an ongoing transaction bumps the
// epoch, aborts the transaction with markers of the new epoch (partitions
// then refuse the old epoch), and bumps it once more for the new producer,
// as Kafka's PrepareEpochFence does. The timeout loop (AbortExpired) aborts
// a transaction open longer than its transaction.timeout.ms the same way,
// so the stuck producer is fenced.
//
// The transaction.version feature and KIP-890 (server-side partition
// verification, epoch bump per transaction) are not implemented and not
// advertised. Instead, on one node the produce path checks directly that a
// transactional batch's partition is part of its ongoing transaction.
//
// # Concurrency
//
// Coordinator.mu guards the map of transactions; each transaction's mu
// guards its state and is held across its records' writes, its markers and
// the produce requests appending its data, so markers can never be written
// between a produce's check and its append. Lock order: Coordinator.mu (only
// to look up), then a transaction's mu, then a group's mu or a partition's
// (both taken by the packages they belong to). Never two transactions at
// once.
package txn

import (
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/broker/internal/cluster"
	"github.com/sluicehq/sluice/broker/internal/group"
	"github.com/sluicehq/sluice/broker/internal/records"
)

// Kafka's transaction states (kmsg.TransactionState).
const (
	stateEmpty          kmsg.TransactionState = 0
	stateOngoing        kmsg.TransactionState = 1
	statePrepareCommit  kmsg.TransactionState = 2
	statePrepareAbort   kmsg.TransactionState = 3
	stateCompleteCommit kmsg.TransactionState = 4
	stateCompleteAbort  kmsg.TransactionState = 5
)

// Config configures a Coordinator.
type Config struct {
	// MaxTimeout is transaction.max.timeout.ms (default 15 minutes):
	// InitProducerId with a longer transaction timeout is refused with
	// INVALID_TRANSACTION_TIMEOUT.
	MaxTimeout time.Duration
	// SyncOnAck fsyncs markers before a transaction is reported complete
	// (fsync=always).
	SyncOnAck bool
	Logger    *slog.Logger
	Now       func() time.Time
}

// Coordinator coordinates every transactional id of this broker.
type Coordinator struct {
	cfg     Config
	store   *cluster.OffsetsStore // __transaction_state
	offsets *cluster.OffsetsStore // __consumer_offsets
	cl      *cluster.Cluster
	groups  *group.Coordinator

	mu struct {
		sync.Mutex
		txns map[string]*txn
	}
}

type topicPartition struct {
	topic     string
	partition int32
}

type txn struct {
	id string

	mu      sync.Mutex
	pid     int64
	epoch   int16
	timeout time.Duration
	state   kmsg.TransactionState
	parts   map[topicPartition]struct{}
	start   time.Time // when the transaction became Ongoing
	created bool      // persisted at least once
}

// New replays __transaction_state and completes the transactions a
// restart interrupted while committing or aborting. groups must already be
// loaded.
func New(cfg Config, store, offsets *cluster.OffsetsStore, groups *group.Coordinator) (*Coordinator, error) {
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = 15 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Coordinator{cfg: cfg, store: store, offsets: offsets, cl: store.C, groups: groups}
	c.mu.txns = map[string]*txn{}
	if err := c.load(); err != nil {
		return nil, fmt.Errorf("broker/txn: load %s: %w", cluster.TransactionTopic, err)
	}
	for _, t := range c.snapshot() {
		t.mu.Lock()
		if t.state == statePrepareCommit || t.state == statePrepareAbort {
			commit := t.state == statePrepareCommit
			if err := c.completeLocked(t, commit); err != nil {
				// The Prepare state stays; the client or the timeout
				// loop resumes it.
				c.cfg.Logger.Error("resume an interrupted transaction", "transactional_id", t.id, "err", err)
			} else {
				c.cfg.Logger.Info("resumed an interrupted transaction", "transactional_id", t.id, "commit", commit)
			}
		}
		t.mu.Unlock()
	}
	return c, nil
}

func (c *Coordinator) load() error {
	return c.store.Load(func(r cluster.StoredRecord) {
		if r.Control || len(r.Key) < 2 || r.Key[0] != 0 || r.Key[1] != 0 {
			return
		}
		var k kmsg.TxnMetadataKey
		if k.ReadFrom(r.Key) != nil {
			return
		}
		if r.Value == nil {
			delete(c.mu.txns, k.TransactionalID)
			return
		}
		var v kmsg.TxnMetadataValue
		if v.ReadFrom(r.Value) != nil {
			return
		}
		t := &txn{
			id: k.TransactionalID, pid: v.ProducerID, epoch: v.ProducerEpoch,
			timeout: time.Duration(v.TimeoutMillis) * time.Millisecond, state: v.State,
			parts: map[topicPartition]struct{}{}, start: time.UnixMilli(v.StartTimestamp), created: true,
		}
		for _, tp := range v.Topics {
			for _, p := range tp.Partitions {
				t.parts[topicPartition{tp.Topic, p}] = struct{}{}
			}
		}
		c.mu.txns[t.id] = t
	})
}

func (c *Coordinator) snapshot() []*txn {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts := slices.Collect(maps.Values(c.mu.txns))
	slices.SortFunc(ts, func(a, b *txn) int { return strings.Compare(a.id, b.id) })
	return ts
}

func (c *Coordinator) get(id string) *txn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.txns[id]
}

// persistLocked writes the transaction's current state.
func (c *Coordinator) persistLocked(t *txn) error {
	k := kmsg.TxnMetadataKey{Version: 0, TransactionalID: t.id}
	v := kmsg.NewTxnMetadataValue()
	v.Version = 0
	v.ProducerID, v.ProducerEpoch = t.pid, t.epoch
	v.TimeoutMillis = int32(t.timeout / time.Millisecond)
	v.State = t.state
	now := c.cfg.Now().UnixMilli()
	v.LastUpdateTimestamp = now
	v.StartTimestamp = -1
	if t.state != stateEmpty {
		v.StartTimestamp = t.start.UnixMilli()
	}
	byTopic := map[string][]int32{}
	for tp := range t.parts {
		byTopic[tp.topic] = append(byTopic[tp.topic], tp.partition)
	}
	for _, name := range slices.Sorted(maps.Keys(byTopic)) {
		ps := byTopic[name]
		slices.Sort(ps)
		v.Topics = append(v.Topics, kmsg.TxnMetadataValueTopic{Topic: name, Partitions: ps})
	}
	batch := records.AppendBatch(nil, records.BatchSpec{
		Timestamp: now, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
	}, []records.KV{{Key: k.AppendTo(nil), Value: v.AppendTo(nil)}})
	if err := c.store.Append(group.Partition(t.id, c.store.Partitions()), batch); err != nil {
		return err
	}
	t.created = true
	return nil
}

// completeLocked commits or aborts t (steps 1-3 of the package doc),
// resuming at step 2 when t is already in the matching Prepare state.
func (c *Coordinator) completeLocked(t *txn, commit bool) error {
	prepare, complete := statePrepareAbort, stateCompleteAbort
	if commit {
		prepare, complete = statePrepareCommit, stateCompleteCommit
	}
	if t.state != prepare {
		t.state = prepare
		if err := c.persistLocked(t); err != nil {
			t.state = stateOngoing
			return err
		}
	}
	nowMs := c.cfg.Now().UnixMilli()
	for _, tp := range slices.SortedFunc(maps.Keys(t.parts), func(a, b topicPartition) int {
		return cmp2(a, b)
	}) {
		p, ok := c.cl.Partition(tp.topic, tp.partition)
		if !ok {
			// The topic was deleted during the transaction: nothing to
			// mark.
			continue
		}
		off, err := p.WriteMarker(t.pid, t.epoch, commit, 0, nowMs)
		if err != nil {
			return fmt.Errorf("broker/txn: write marker to %s-%d: %w", tp.topic, tp.partition, err)
		}
		if c.cfg.SyncOnAck {
			if err := p.Log().Sync(off + 1); err != nil {
				return fmt.Errorf("broker/txn: sync marker of %s-%d: %w", tp.topic, tp.partition, err)
			}
		}
		if tp.topic == cluster.OffsetsTopic {
			c.groups.CompleteTxn(tp.partition, t.pid, commit)
		}
	}
	t.state = complete
	parts := t.parts
	t.parts = map[topicPartition]struct{}{}
	if err := c.persistLocked(t); err != nil {
		t.state, t.parts = prepare, parts
		return err
	}
	return nil
}

func cmp2(a, b topicPartition) int {
	if c := strings.Compare(a.topic, b.topic); c != 0 {
		return c
	}
	return int(a.partition) - int(b.partition)
}

// fenceLocked aborts t's ongoing transaction with a bumped epoch, so that
// the producer that opened it can no longer write or end it.
func (c *Coordinator) fenceLocked(t *txn) error {
	if t.epoch < math.MaxInt16 {
		t.epoch++
	}
	return c.completeLocked(t, false)
}

// AbortExpired aborts every ongoing transaction open for longer than its
// timeout (fencing its producer, as Kafka does), and retries completions a
// storage error left in a Prepare state. It returns the transactions
// aborted for their timeout.
func (c *Coordinator) AbortExpired() int {
	now := c.cfg.Now()
	n := 0
	for _, t := range c.snapshot() {
		t.mu.Lock()
		switch t.state {
		case stateOngoing:
			if now.Sub(t.start) > t.timeout {
				if err := c.fenceLocked(t); err != nil {
					c.cfg.Logger.Error("abort a timed out transaction", "transactional_id", t.id, "err", err)
				} else {
					c.cfg.Logger.Info("aborted a transaction open longer than its timeout", "transactional_id", t.id,
						"producer_id", t.pid, "timeout", t.timeout)
					n++
				}
			}
		case statePrepareCommit, statePrepareAbort:
			if err := c.completeLocked(t, t.state == statePrepareCommit); err != nil {
				c.cfg.Logger.Error("complete a transaction", "transactional_id", t.id, "err", err)
			}
		}
		t.mu.Unlock()
	}
	return n
}

// fenced is the error for a producer epoch that is not the current one:
// PRODUCER_FENCED from the version that KIP-588 introduced it in, else
// INVALID_PRODUCER_EPOCH.
func fenced(version, since int16) int16 {
	if version >= since {
		return kerr.ProducerFenced.Code
	}
	return kerr.InvalidProducerEpoch.Code
}
