package handler

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/broker/internal/cluster"
	"github.com/sluicehq/sluice/broker/internal/log"
	"github.com/sluicehq/sluice/broker/internal/records"
)

// leaderEpoch is the only partition leader epoch of a single node.
const leaderEpoch = 0

var noRecords = []byte{}

var fetchBufs = sync.Pool{New: func() any { return new([]byte) }}

type fetchState struct {
	req   *kmsg.FetchRequest
	resp  *kmsg.FetchResponse
	parts []*cluster.Partition // per response partition, in order; nil on error
	buf   *[]byte

	aborted []cluster.AbortedTxn // scratch for abortedFor
}

func (h *Handler) fetch(req *kmsg.FetchRequest) response {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.SetVersion(req.GetVersion())
	if req.SessionID != 0 {
		// The broker never creates fetch sessions (it answers session id 0,
		// which tells clients to send full requests), so no id can exist.
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return response{msg: resp}
	}
	st := &fetchState{req: req, resp: resp, buf: fetchBufs.Get().(*[]byte)}
	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		resp.Topics[ti].Topic = rt.Topic
		resp.Topics[ti].Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		for pi := range rt.Partitions {
			p, _ := h.cluster.Partition(rt.Topic, rt.Partitions[pi].Partition)
			st.parts = append(st.parts, p)
		}
	}
	n, failed := st.read()
	release := func() {
		// Drop references into the buffer before handing it back.
		if cap(*st.buf) <= 8<<20 {
			fetchBufs.Put(st.buf)
		}
	}
	if failed || n >= int(req.MinBytes) || req.MaxWaitMillis <= 0 {
		return response{msg: resp, release: release}
	}
	return response{msg: resp, release: release, finish: func(ctx context.Context) kmsg.Response {
		return st.wait(ctx, time.Duration(req.MaxWaitMillis)*time.Millisecond)
	}}
}

// wait long-polls until MinBytes are available or maxWait passes (then it
// answers with whatever there is, possibly nothing: never an error).
func (st *fetchState) wait(ctx context.Context, maxWait time.Duration) kmsg.Response {
	ch := make(chan struct{}, 1)
	for _, p := range st.parts {
		if p != nil {
			p.Watch(ch)
		}
	}
	defer func() {
		for _, p := range st.parts {
			if p != nil {
				p.Unwatch(ch)
			}
		}
	}()
	// Data appended between the first read and Watch woke nobody: look
	// again now that any later append will.
	if n, failed := st.read(); failed || n >= int(st.req.MinBytes) {
		return st.resp
	}
	timer := time.NewTimer(maxWait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			st.read()
			return st.resp
		case <-ch:
			if n, failed := st.read(); failed || n >= int(st.req.MinBytes) {
				return st.resp
			}
		}
	}
}

// abortedFor sets the aborted transactions a read_committed client needs to
// skip aborted data in the batches read (fetched from offset from): those
// overlapping [from, end of the last batch], producer id and first offset
// each, as Kafka answers. Nil when there are none (v4+ accepts null).
func (st *fetchState) abortedFor(sp *kmsg.FetchResponseTopicPartition, p *cluster.Partition, from int64, read []byte) {
	end := from
	for b := read; len(b) > 0; {
		h, err := records.ParseHeader(b)
		if err != nil || h.TotalSize() > len(b) {
			break
		}
		end = h.LastOffset() + 1
		b = b[h.TotalSize():]
	}
	st.aborted = p.AbortedTxns(st.aborted[:0], from, end)
	sp.AbortedTransactions = nil
	for _, a := range st.aborted {
		at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
		at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
		sp.AbortedTransactions = append(sp.AbortedTransactions, at)
	}
}

// read fills the response from the logs, returning the bytes of records
// read and whether any partition failed (which ends a long poll).
func (st *fetchState) read() (total int, failed bool) {
	req := st.req
	buf := (*st.buf)[:0]
	maxBytes := int(req.MaxBytes)
	if req.GetVersion() < 3 || maxBytes <= 0 {
		maxBytes = 1<<31 - 1
	}
	type span struct {
		tp         *kmsg.FetchResponseTopicPartition
		start, end int
	}
	var spans []span
	readCommitted := req.IsolationLevel == 1
	i := 0
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			sp := &st.resp.Topics[ti].Partitions[pi]
			p := st.parts[i]
			i++
			*sp = kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			// Never null: librdkafka rejects a MessageSetSize of -1.
			sp.RecordBatches = noRecords
			if p == nil {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				failed = true
				continue
			}
			if e := rp.CurrentLeaderEpoch; e != -1 && e != leaderEpoch {
				if e > leaderEpoch {
					sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
				} else {
					sp.ErrorCode = kerr.FencedLeaderEpoch.Code
				}
				failed = true
				continue
			}
			l := p.Log()
			lso := p.LastStableOffset()
			hw := l.EndOffset()
			sp.HighWatermark = hw
			sp.LastStableOffset = lso
			sp.LogStartOffset = l.StartOffset()
			upTo := hw
			if readCommitted {
				upTo = lso
			}
			limit := min(int(rp.PartitionMaxBytes), maxBytes-total)
			if limit <= 0 && total > 0 {
				continue
			}
			start := len(buf)
			var err error
			buf, err = l.Read(buf, rp.FetchOffset, max(limit, 0), upTo, total == 0)
			if err != nil {
				sp.ErrorCode = errCode(err)
				if errors.Is(err, log.ErrOffsetOutOfRange) {
					sp.LogStartOffset = l.StartOffset()
					sp.HighWatermark = l.EndOffset()
					sp.LastStableOffset = p.LastStableOffset()
				}
				failed = true
				buf = buf[:start]
				continue
			}
			total += len(buf) - start
			spans = append(spans, span{sp, start, len(buf)})
			if readCommitted && len(buf) > start {
				st.abortedFor(sp, p, rp.FetchOffset, buf[start:])
			}
		}
	}
	// Point the records at the buffer only now: appends may have moved it.
	for _, s := range spans {
		if s.end > s.start {
			s.tp.RecordBatches = buf[s.start:s.end:s.end]
		}
	}
	*st.buf = buf
	return total, failed
}
