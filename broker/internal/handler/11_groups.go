package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Group APIs: JoinGroup (11), Heartbeat (12), LeaveGroup (13), SyncGroup
// (14), DescribeGroups (15), ListGroups (16), DeleteGroups (42), and
// TxnOffsetCommit (28). The transaction APIs AddPartitionsToTxn (24),
// AddOffsetsToTxn (25) and EndTxn (26) are answered by package txn
// directly (see handle). The logic
// lives in package group; these adapt requests and deferred answers.

func (h *Handler) joinGroup(req *kmsg.JoinGroupRequest, ci connInfo) response {
	resp, wait := h.groups.Join(req, ci.clientID, ci.host)
	resp.SetVersion(req.GetVersion())
	if wait == nil {
		return response{msg: resp}
	}
	return response{msg: resp, finish: wait}
}

func (h *Handler) syncGroup(req *kmsg.SyncGroupRequest) response {
	resp, wait := h.groups.Sync(req)
	resp.SetVersion(req.GetVersion())
	if wait == nil {
		return response{msg: resp}
	}
	return response{msg: resp, finish: wait}
}

func (h *Handler) offsetCommit(req *kmsg.OffsetCommitRequest) kmsg.Response {
	return h.groups.OffsetCommit(req, func(topic string, p int32) bool {
		_, ok := h.cluster.Partition(topic, p)
		return ok
	})
}

// txnOffsetCommit (TxnOffsetCommit, 28) is checked by the transaction
// coordinator and stored by the group coordinator.
func (h *Handler) txnOffsetCommit(req *kmsg.TxnOffsetCommitRequest) kmsg.Response {
	return h.txns.TxnOffsetCommit(req, func(topic string, p int32) bool {
		_, ok := h.cluster.Partition(topic, p)
		return ok
	})
}

// waitFunc adapts a coordinator wait to the connection's finish hook.
type waitFunc = func(context.Context) kmsg.Response
