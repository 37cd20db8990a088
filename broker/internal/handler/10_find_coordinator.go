package handler

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// findCoordinator answers that this node coordinates every group and every
// transactional id: with one node there is no other choice.
func (h *Handler) findCoordinator(req *kmsg.FindCoordinatorRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	answer := func(key string) (int16, *string) {
		switch req.CoordinatorType {
		case 0: // group
			// Kafka creates the offsets topic when a coordinator is first
			// looked up.
			if err := h.offsets.Ensure(); err != nil {
				h.cfg.Logger.Error("create offsets topic", "err", err)
				return kerr.CoordinatorNotAvailable.Code, errMsg(err)
			}
			return 0, nil
		case 1: // transaction
			if key == "" {
				msg := "empty transactional id"
				return kerr.InvalidRequest.Code, &msg
			}
			// Kafka creates __transaction_state when a transaction
			// coordinator is first looked up.
			if err := h.txnLog.Ensure(); err != nil {
				h.cfg.Logger.Error("create transaction state topic", "err", err)
				return kerr.CoordinatorNotAvailable.Code, errMsg(err)
			}
			return 0, nil
		}
		msg := "unknown coordinator type"
		return kerr.InvalidRequest.Code, &msg
	}
	if req.Version < 4 {
		resp.ErrorCode, resp.ErrorMessage = answer(req.CoordinatorKey)
		if resp.ErrorCode == 0 {
			resp.NodeID, resp.Host, resp.Port = h.cfg.NodeID, h.cfg.AdvertiseHost, h.cfg.AdvertisePort
		} else {
			resp.NodeID, resp.Port = -1, -1
		}
		return resp
	}
	for _, key := range req.CoordinatorKeys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		c.ErrorCode, c.ErrorMessage = answer(key)
		if c.ErrorCode == 0 {
			c.NodeID, c.Host, c.Port = h.cfg.NodeID, h.cfg.AdvertiseHost, h.cfg.AdvertisePort
		} else {
			c.NodeID, c.Port = -1, -1
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return resp
}
