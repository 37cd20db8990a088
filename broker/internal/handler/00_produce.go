package handler

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/broker/internal/cluster"
	"github.com/sluicehq/sluice/broker/internal/records"
)

type syncTarget struct {
	p      *cluster.Partition
	upTo   int64
	ti, pi int
}

func (h *Handler) produce(req *kmsg.ProduceRequest) (response, bool) {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	resp.SetVersion(req.GetVersion())
	var syncs []syncTarget
	ackErr := int16(0)
	switch {
	case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
		ackErr = kerr.InvalidRequiredAcks.Code
	case req.TransactionID != nil:
		// Transactions arrive with the transaction coordinator; until then no
		// transactional id can be initialised, so none can produce.
		ackErr = kerr.TransactionalIDAuthorizationFailed.Code
	}
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		st := &resp.Topics[ti]
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			sp := &st.Partitions[pi]
			sp.Default()
			sp.Partition = rp.Partition
			if ackErr != 0 {
				sp.ErrorCode = ackErr
				continue
			}
			p, ok := h.cluster.Partition(rt.Topic, rp.Partition)
			if !ok {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			if cluster.IsInternal(rt.Topic) {
				sp.ErrorCode = kerr.InvalidTopicException.Code
				sp.ErrorMessage = errMsg(fmt.Errorf("cannot produce to the internal topic %s", rt.Topic))
				continue
			}
			if err := oneBatch(rp.Records); err != nil {
				sp.ErrorCode = errCode(err)
				sp.ErrorMessage = errMsg(err)
				continue
			}
			r, err := p.Append(rp.Records)
			if err != nil {
				sp.ErrorCode = errCode(err)
				sp.ErrorMessage = errMsg(err)
				if sp.ErrorCode == kerr.KafkaStorageError.Code {
					h.cfg.Logger.Error("append failed", "topic", rt.Topic, "partition", rp.Partition, "err", err)
				}
				continue
			}
			sp.BaseOffset = r.BaseOffset
			sp.LogAppendTime = r.LogAppendTime
			sp.LogStartOffset = r.LogStartOffset
			if h.cfg.SyncOnAck && req.Acks != 0 && !r.Duplicate {
				syncs = append(syncs, syncTarget{p: p, upTo: r.LastOffset + 1, ti: ti, pi: pi})
			}
		}
	}
	if req.Acks == 0 {
		return response{}, false
	}
	if len(syncs) == 0 {
		return response{msg: resp}, true
	}
	// fsync=always: acknowledge once the data is on disk. The writer runs
	// this while the reader goes on appending pipelined requests, so one
	// fsync covers them all (group commit).
	return response{msg: resp, finish: func(context.Context) kmsg.Response {
		for _, s := range syncs {
			if err := s.p.Log().Sync(s.upTo); err != nil {
				sp := &resp.Topics[s.ti].Partitions[s.pi]
				sp.ErrorCode = kerr.KafkaStorageError.Code
				sp.ErrorMessage = errMsg(err)
				h.cfg.Logger.Error("fsync failed", "topic", s.p.Topic, "partition", s.p.Index, "err", err)
			}
		}
		return resp
	}}, true
}

// oneBatch checks that a produce partition carries exactly one magic-2
// record batch, as Kafka requires for Produce v3+.
func oneBatch(b []byte) error {
	h, err := records.ParseHeader(b)
	if err != nil {
		return fmt.Errorf("%w: produce records hold no whole record batch (%d bytes)", records.ErrInvalidRecord, len(b))
	}
	if h.Magic != 2 {
		return fmt.Errorf("%w: record batch magic %d; Produce v3+ needs magic 2", records.ErrInvalidRecord, h.Magic)
	}
	if h.TotalSize() != len(b) {
		return fmt.Errorf("%w: produce records must hold exactly one record batch (batch of %d bytes in %d)", records.ErrInvalidRecord, h.TotalSize(), len(b))
	}
	if h.IsTransactional() {
		return fmt.Errorf("%w: transactional batches need a transactional producer", records.ErrInvalidRecord)
	}
	return nil
}
