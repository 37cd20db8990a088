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
	var txnCheck func(topic string, p int32, pid int64, epoch int16) int16
	if req.Acks != 0 && req.Acks != 1 && req.Acks != -1 {
		ackErr = kerr.InvalidRequiredAcks.Code
	}
	if req.TransactionID != nil && ackErr == 0 {
		// Hold the transaction while its batches are checked and
		// appended, so that no marker lands in between (package txn).
		tp := h.txns.BeginProduce(*req.TransactionID)
		defer tp.Done()
		txnCheck = tp.Check
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
			bh, err := oneBatch(rp.Records, txnCheck != nil)
			if err != nil {
				sp.ErrorCode = errCode(err)
				sp.ErrorMessage = errMsg(err)
				continue
			}
			if bh.IsTransactional() {
				if code := txnCheck(rt.Topic, rp.Partition, bh.ProducerID, bh.ProducerEpoch); code != 0 {
					sp.ErrorCode = code
					continue
				}
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
// record batch, as Kafka requires for Produce v3+, and that a transactional
// batch comes with a transactional id (txn), from a producer id, and is not
// a control batch (only the coordinator writes markers).
func oneBatch(b []byte, txn bool) (records.BatchHeader, error) {
	h, err := records.ParseHeader(b)
	if err != nil {
		return h, fmt.Errorf("%w: produce records hold no whole record batch (%d bytes)", records.ErrInvalidRecord, len(b))
	}
	if h.Magic != 2 {
		return h, fmt.Errorf("%w: record batch magic %d; Produce v3+ needs magic 2", records.ErrInvalidRecord, h.Magic)
	}
	if h.TotalSize() != len(b) {
		return h, fmt.Errorf("%w: produce records must hold exactly one record batch (batch of %d bytes in %d)", records.ErrInvalidRecord, h.TotalSize(), len(b))
	}
	if h.IsControl() {
		return h, fmt.Errorf("%w: clients cannot produce control batches", records.ErrInvalidRecord)
	}
	if h.IsTransactional() && (!txn || h.ProducerID < 0) {
		return h, fmt.Errorf("%w: transactional batches need a transactional id and a producer id", records.ErrInvalidRecord)
	}
	return h, nil
}
