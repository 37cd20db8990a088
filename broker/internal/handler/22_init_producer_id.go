package handler

import (
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (h *Handler) initProducerID(req *kmsg.InitProducerIDRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		// Transactional ids need the transaction coordinator, which is not
		// part of the broker yet: refuse clearly rather than pretend.
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		h.cfg.Logger.Warn("refused a transactional producer: transactions are not supported yet", "transactional_id", *req.TransactionalID)
		return resp
	}
	// KIP-360: an idempotent producer that already has an id may ask for an
	// epoch bump (to reset its sequences) instead of a new id.
	if req.ProducerID >= 0 && req.ProducerEpoch >= 0 && req.ProducerEpoch < math.MaxInt16-1 {
		resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch+1
		return resp
	}
	id, err := h.cluster.NextProducerID()
	if err != nil {
		h.cfg.Logger.Error("allocate producer id", "err", err)
		resp.ErrorCode = kerr.KafkaStorageError.Code
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp
}
