package txn

import (
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/broker/internal/cluster"
	"github.com/sluicehq/sluice/broker/internal/group"
)

// InitProducerID handles InitProducerId for a transactional id (the broker
// answers idempotent producers itself). A new id gets a new producer id at
// epoch 0; a known one gets its epoch bumped, after any ongoing transaction
// is aborted (fencing the producer that opened it) and any interrupted
// completion is finished. From v3 (KIP-360) a request naming the producer
// id and epoch it has must name the current ones, or it is fenced.
func (c *Coordinator) InitProducerID(req *kmsg.InitProducerIDRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	id := *req.TransactionalID
	timeout := time.Duration(req.TransactionTimeoutMillis) * time.Millisecond
	switch {
	case id == "":
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	case req.TransactionTimeoutMillis <= 0 || timeout > c.cfg.MaxTimeout:
		resp.ErrorCode = kerr.InvalidTransactionTimeout.Code
		return resp
	}
	c.mu.Lock()
	t := c.mu.txns[id]
	if t == nil {
		t = &txn{id: id, pid: -1, epoch: -1, state: stateEmpty, parts: map[topicPartition]struct{}{}}
		c.mu.txns[id] = t
	}
	c.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	code := c.initLocked(t, req, timeout)
	if !t.created {
		// Never persisted: forget it, as if never asked.
		c.mu.Lock()
		if c.mu.txns[id] == t {
			delete(c.mu.txns, id)
		}
		c.mu.Unlock()
	}
	resp.ErrorCode = code
	if code == 0 {
		resp.ProducerID, resp.ProducerEpoch = t.pid, t.epoch
	}
	return resp
}

func (c *Coordinator) initLocked(t *txn, req *kmsg.InitProducerIDRequest, timeout time.Duration) int16 {
	if req.GetVersion() >= 3 && req.ProducerID >= 0 && t.pid >= 0 &&
		(req.ProducerID != t.pid || req.ProducerEpoch != t.epoch) {
		return fenced(req.GetVersion(), 4)
	}
	switch t.state {
	case statePrepareCommit, statePrepareAbort:
		if err := c.completeLocked(t, t.state == statePrepareCommit); err != nil {
			c.cfg.Logger.Error("complete a transaction", "transactional_id", t.id, "err", err)
			return kerr.ConcurrentTransactions.Code
		}
	case stateOngoing:
		if err := c.fenceLocked(t); err != nil {
			c.cfg.Logger.Error("abort the transaction of a fenced producer", "transactional_id", t.id, "err", err)
			return kerr.ConcurrentTransactions.Code
		}
	}
	oldPID, oldEpoch, oldTimeout, oldState := t.pid, t.epoch, t.timeout, t.state
	if t.pid < 0 || t.epoch >= math.MaxInt16-1 {
		pid, err := c.cl.NextProducerID()
		if err != nil {
			c.cfg.Logger.Error("allocate producer id", "err", err)
			return kerr.KafkaStorageError.Code
		}
		t.pid, t.epoch = pid, 0
	} else {
		t.epoch++
	}
	t.timeout, t.state = timeout, stateEmpty
	if err := c.persistLocked(t); err != nil {
		c.cfg.Logger.Error("write transaction state", "transactional_id", t.id, "err", err)
		t.pid, t.epoch, t.timeout, t.state = oldPID, oldEpoch, oldTimeout, oldState
		return kerr.CoordinatorNotAvailable.Code
	}
	return 0
}

// checkLocked applies the producer checks common to AddPartitionsToTxn,
// AddOffsetsToTxn, EndTxn and TxnOffsetCommit: the id must be known with
// this producer id (INVALID_PRODUCER_ID_MAPPING) and epoch (fenced).
func checkLocked(t *txn, pid int64, epoch int16, version, fencedSince int16) int16 {
	switch {
	case t == nil || t.pid != pid:
		return kerr.InvalidProducerIDMapping.Code
	case t.epoch != epoch:
		return fenced(version, fencedSince)
	}
	return 0
}

// lock returns the transaction with its mu held, or nil.
func (c *Coordinator) lock(id string) *txn {
	t := c.get(id)
	if t != nil {
		t.mu.Lock()
	}
	return t
}

func unlock(t *txn) {
	if t != nil {
		t.mu.Unlock()
	}
}

// addLocked adds partitions to t's transaction, making it Ongoing.
func (c *Coordinator) addLocked(t *txn, tps []topicPartition) int16 {
	switch t.state {
	case statePrepareCommit, statePrepareAbort:
		return kerr.ConcurrentTransactions.Code
	}
	missing := t.state != stateOngoing
	for _, tp := range tps {
		if _, ok := t.parts[tp]; !ok {
			missing = true
		}
	}
	if !missing {
		return 0
	}
	oldState, oldStart, added := t.state, t.start, []topicPartition{}
	if t.state != stateOngoing {
		t.state, t.start = stateOngoing, c.cfg.Now()
	}
	for _, tp := range tps {
		if _, ok := t.parts[tp]; !ok {
			t.parts[tp] = struct{}{}
			added = append(added, tp)
		}
	}
	if err := c.persistLocked(t); err != nil {
		c.cfg.Logger.Error("write transaction state", "transactional_id", t.id, "err", err)
		t.state, t.start = oldState, oldStart
		for _, tp := range added {
			delete(t.parts, tp)
		}
		return kerr.CoordinatorNotAvailable.Code
	}
	return 0
}

// AddPartitionsToTxn handles AddPartitionsToTxn v0-3. Partitions that do
// not exist get UNKNOWN_TOPIC_OR_PARTITION and the others
// OPERATION_NOT_ATTEMPTED, as in Kafka; internal topics cannot be added.
func (c *Coordinator) AddPartitionsToTxn(req *kmsg.AddPartitionsToTxnRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	var tps []topicPartition
	bad := map[topicPartition]int16{}
	for _, rt := range req.Topics {
		for _, p := range rt.Partitions {
			tp := topicPartition{rt.Topic, p}
			switch _, ok := c.cl.Partition(rt.Topic, p); {
			case cluster.IsInternal(rt.Topic):
				bad[tp] = kerr.TopicAuthorizationFailed.Code
			case !ok:
				bad[tp] = kerr.UnknownTopicOrPartition.Code
			}
			tps = append(tps, tp)
		}
	}
	var code int16
	switch {
	case req.TransactionalID == "":
		code = kerr.InvalidRequest.Code
	case len(bad) > 0:
		code = kerr.OperationNotAttempted.Code
	default:
		t := c.lock(req.TransactionalID)
		if code = checkLocked(t, req.ProducerID, req.ProducerEpoch, req.GetVersion(), 2); code == 0 {
			code = c.addLocked(t, tps)
		}
		unlock(t)
	}
	for _, rt := range req.Topics {
		st := kmsg.AddPartitionsToTxnResponseTopic{Topic: rt.Topic}
		for _, p := range rt.Partitions {
			sp := kmsg.AddPartitionsToTxnResponseTopicPartition{Partition: p, ErrorCode: code}
			if e, ok := bad[topicPartition{rt.Topic, p}]; ok {
				sp.ErrorCode = e
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// AddOffsetsToTxn handles AddOffsetsToTxn: the group's __consumer_offsets
// partition joins the transaction, so that EndTxn writes a marker there.
func (c *Coordinator) AddOffsetsToTxn(req *kmsg.AddOffsetsToTxnRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	switch {
	case req.TransactionalID == "":
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	case req.Group == "":
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	if err := c.offsets.Ensure(); err != nil {
		c.cfg.Logger.Error("create offsets topic", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
	t := c.lock(req.TransactionalID)
	defer unlock(t)
	if resp.ErrorCode = checkLocked(t, req.ProducerID, req.ProducerEpoch, req.GetVersion(), 2); resp.ErrorCode != 0 {
		return resp
	}
	tp := topicPartition{cluster.OffsetsTopic, group.Partition(req.Group, c.offsets.Partitions())}
	resp.ErrorCode = c.addLocked(t, []topicPartition{tp})
	return resp
}

// EndTxn handles EndTxn: commit or abort the ongoing transaction. A retry of
// an EndTxn that completed gets success; asking for the other outcome, or
// ending a transaction that never began, gets INVALID_TXN_STATE.
func (c *Coordinator) EndTxn(req *kmsg.EndTxnRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	if req.TransactionalID == "" {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	t := c.lock(req.TransactionalID)
	defer unlock(t)
	if resp.ErrorCode = checkLocked(t, req.ProducerID, req.ProducerEpoch, req.GetVersion(), 2); resp.ErrorCode != 0 {
		return resp
	}
	switch {
	case t.state == stateOngoing,
		t.state == statePrepareCommit && req.Commit, t.state == statePrepareAbort && !req.Commit:
		if err := c.completeLocked(t, req.Commit); err != nil {
			c.cfg.Logger.Error("complete a transaction", "transactional_id", t.id, "commit", req.Commit, "err", err)
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		}
	case t.state == stateCompleteCommit && req.Commit, t.state == stateCompleteAbort && !req.Commit:
		// A retry of what already happened.
	default:
		resp.ErrorCode = kerr.InvalidTxnState.Code
	}
	return resp
}

// TxnOffsetCommit handles TxnOffsetCommit: the producer must own the
// transaction, which must already hold the group's offsets partition
// (AddOffsetsToTxn); then the group coordinator stores the offsets as
// pending until the transaction ends.
func (c *Coordinator) TxnOffsetCommit(req *kmsg.TxnOffsetCommitRequest, partitionExists func(string, int32) bool) kmsg.Response {
	code := int16(0)
	t := c.lock(req.TransactionalID)
	defer unlock(t)
	switch {
	case req.TransactionalID == "":
		code = kerr.InvalidRequest.Code
	default:
		code = checkLocked(t, req.ProducerID, req.ProducerEpoch, req.GetVersion(), 3)
		if code == 0 {
			tp := topicPartition{cluster.OffsetsTopic, group.Partition(req.Group, c.offsets.Partitions())}
			if _, ok := t.parts[tp]; t.state != stateOngoing || !ok {
				code = kerr.InvalidTxnState.Code
			}
		}
	}
	if code == 0 {
		return c.groups.TxnOffsetCommit(req, partitionExists)
	}
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	for _, rt := range req.Topics {
		st := kmsg.TxnOffsetCommitResponseTopic{Topic: rt.Topic}
		for _, rp := range rt.Partitions {
			st.Partitions = append(st.Partitions, kmsg.TxnOffsetCommitResponseTopicPartition{Partition: rp.Partition, ErrorCode: code})
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// Produce is a transactional produce request in progress: it holds the
// transaction's lock (see the package doc) until Done.
type Produce struct {
	t *txn
}

// BeginProduce starts checking the batches of a produce request of
// transactional id id. Call Done when its batches are appended.
func (c *Coordinator) BeginProduce(id string) Produce {
	return Produce{t: c.lock(id)}
}

// Check returns the error code for a transactional batch of producer pid at
// epoch for a partition, or 0 if it may be appended: the id must be known
// with that producer id (INVALID_PRODUCER_ID_MAPPING), at that epoch
// (INVALID_PRODUCER_EPOCH, which producers treat as fenced), and the
// partition must have been added to its ongoing transaction
// (INVALID_TXN_STATE).
func (p Produce) Check(topic string, partition int32, pid int64, epoch int16) int16 {
	if code := checkLocked(p.t, pid, epoch, 0, math.MaxInt16); code != 0 {
		return code
	}
	if _, ok := p.t.parts[topicPartition{topic, partition}]; p.t.state != stateOngoing || !ok {
		return kerr.InvalidTxnState.Code
	}
	return 0
}

// Done releases the transaction.
func (p Produce) Done() { unlock(p.t) }
