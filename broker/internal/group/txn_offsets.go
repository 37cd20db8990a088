package group

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/broker/internal/records"
)

// Transactional offset commits (TxnOffsetCommit), as Kafka's group
// coordinator keeps them: the offsets are written to the group's
// __consumer_offsets partition in a transactional batch carrying the
// producer's id and epoch, held per producer as pending, and materialised
// when the transaction coordinator writes the COMMIT marker to that
// partition (CompleteTxn), or dropped on ABORT. Replaying the partition at
// startup does the same with the markers in the log, so pending offsets of
// a transaction still open survive a restart. While a group has pending
// offsets for a partition, OffsetFetch with RequireStable answers
// UNSTABLE_OFFSET_COMMIT for it (KIP-447), so a new consumer does not start
// from an offset about to change.

func (g *group) addTxnOffsetLocked(pid int64, tp topicPartition, o offset) {
	m := g.txnOffsets[pid]
	if m == nil {
		m = map[topicPartition]offset{}
		g.txnOffsets[pid] = m
	}
	m[tp] = o
	g.c.txn.Lock()
	gs := g.c.txn.groups[pid]
	if gs == nil {
		gs = map[string]struct{}{}
		g.c.txn.groups[pid] = gs
	}
	gs[g.id] = struct{}{}
	g.c.txn.Unlock()
}

// TxnOffsetCommit handles a TxnOffsetCommit request whose producer id and
// epoch the transaction coordinator has already checked against the
// transaction (which must hold the group). From v3 (KIP-447) a request
// carrying a member id or generation is checked against the group like an
// OffsetCommit: UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, ILLEGAL_GENERATION.
func (c *Coordinator) TxnOffsetCommit(req *kmsg.TxnOffsetCommitRequest, partitionExists func(topic string, p int32) bool) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	var code int16
	var g *group
	if req.Group == "" {
		code = kerr.InvalidGroupID.Code
	} else if g = c.get(req.Group, true); g == nil {
		code = kerr.CoordinatorNotAvailable.Code
	}
	if g != nil {
		g.mu.Lock()
		defer g.mu.Unlock()
		code = g.txnCommitAllowedLocked(req)
	}
	type entry struct {
		ti, pi int
		tp     topicPartition
		o      offset
	}
	var kvs []records.KV
	var entries []entry
	now := c.cfg.Now()
	for ti, rt := range req.Topics {
		st := kmsg.TxnOffsetCommitResponseTopic{Topic: rt.Topic}
		for pi, rp := range rt.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			if code != 0 {
				sp.ErrorCode = code
			} else if o, kv, ec := c.commitEntry(req.Group, rt.Topic, rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata,
				req.GetVersion() >= 2, now, partitionExists); ec != 0 {
				sp.ErrorCode = ec
			} else {
				kvs = append(kvs, kv)
				entries = append(entries, entry{ti, pi, topicPartition{rt.Topic, rp.Partition}, o})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(entries) == 0 {
		return resp
	}
	st := c.store
	batch := records.AppendBatch(nil, records.BatchSpec{
		Timestamp: now.UnixMilli(), Attributes: records.AttrTransactional,
		ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch, BaseSequence: -1,
	}, kvs)
	if err := st.Append(Partition(g.id, st.Partitions()), batch); err != nil {
		c.cfg.Logger.Error("write transactional offsets", "group", req.Group, "err", err)
		for _, e := range entries {
			resp.Topics[e.ti].Partitions[e.pi].ErrorCode = kerr.CoordinatorNotAvailable.Code
		}
		return resp
	}
	for _, e := range entries {
		g.addTxnOffsetLocked(req.ProducerID, e.tp, e.o)
	}
	return resp
}

func (g *group) txnCommitAllowedLocked(req *kmsg.TxnOffsetCommitRequest) int16 {
	if g.dead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if req.GetVersion() < 3 || (req.MemberID == "" && req.Generation < 0) {
		return 0
	}
	switch m := g.members[req.MemberID]; {
	case g.fencedLocked(req.InstanceID, req.MemberID):
		return kerr.FencedInstanceID.Code
	case req.MemberID != "" && m == nil:
		return kerr.UnknownMemberID.Code
	case req.Generation >= 0 && req.Generation != g.generation:
		return kerr.IllegalGeneration.Code
	}
	return 0
}

// CompleteTxn applies a transaction marker of producer pid written to
// __consumer_offsets partition part: on commit the producer's pending
// offsets of every group of that partition become committed offsets, on
// abort they are dropped. The transaction coordinator calls it after the
// marker is in the log.
func (c *Coordinator) CompleteTxn(part int32, pid int64, commit bool) {
	n := c.store.Partitions()
	c.txn.Lock()
	var ids []string
	for id := range c.txn.groups[pid] {
		if Partition(id, n) == part {
			ids = append(ids, id)
			delete(c.txn.groups[pid], id)
		}
	}
	if len(c.txn.groups[pid]) == 0 {
		delete(c.txn.groups, pid)
	}
	c.txn.Unlock()
	for _, id := range ids {
		g := c.get(id, false)
		if g == nil {
			continue
		}
		g.mu.Lock()
		if commit {
			for tp, o := range g.txnOffsets[pid] {
				g.offsets[tp] = o
			}
		}
		delete(g.txnOffsets, pid)
		g.mu.Unlock()
	}
}
