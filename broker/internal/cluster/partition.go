package cluster

import (
	"errors"
	"fmt"
	"sync"

	"github.com/sluicehq/sluice/broker/internal/log"
	"github.com/sluicehq/sluice/broker/internal/records"
)

// Errors of idempotent produce, mapped to Kafka's error codes by the broker.
var (
	// ErrOutOfOrderSequence: a batch's sequence does not follow the last
	// one of its producer (OUT_OF_ORDER_SEQUENCE_NUMBER).
	ErrOutOfOrderSequence = errors.New("broker/cluster: out of order sequence number")
	// ErrInvalidProducerEpoch: a batch from an older producer epoch
	// (INVALID_PRODUCER_EPOCH).
	ErrInvalidProducerEpoch = errors.New("broker/cluster: invalid producer epoch")
)

// producerWindow is how many recent batches per producer are remembered to
// answer retried duplicates, as in Kafka (max.in.flight = 5).
const producerWindow = 5

type batchMeta struct {
	firstSeq, lastSeq      int32
	baseOffset, lastOffset int64
}

type producerState struct {
	epoch   int16
	batches [producerWindow]batchMeta
	n       int // batches held, at most producerWindow
	head    int // index of the newest batch
}

func (s *producerState) newest() batchMeta { return s.batches[s.head] }

func (s *producerState) add(m batchMeta) {
	if s.n > 0 {
		s.head = (s.head + 1) % producerWindow
	}
	s.batches[s.head] = m
	s.n = min(s.n+1, producerWindow)
}

func (s *producerState) duplicate(first, last int32) (batchMeta, bool) {
	for i := range s.n {
		m := s.batches[(s.head-i+producerWindow)%producerWindow]
		if m.firstSeq == first && m.lastSeq == last {
			return m, true
		}
	}
	return batchMeta{}, false
}

// Partition is one topic partition: its log, the idempotent-producer state,
// and the fetch requests waiting for new data.
type Partition struct {
	Topic string
	Index int32

	log *log.Log

	mu struct {
		sync.Mutex
		producers map[int64]*producerState
	}

	waitMu  sync.Mutex
	waiters map[chan struct{}]struct{}
}

func newPartition(topic string, index int32, l *log.Log) (*Partition, error) {
	p := &Partition{Topic: topic, Index: index, log: l, waiters: map[chan struct{}]struct{}{}}
	p.mu.producers = map[int64]*producerState{}
	// Rebuild the producer state from the batch headers in the log, so
	// retries after a restart are still recognised as duplicates.
	err := l.ScanBatches(l.StartOffset(), func(h records.BatchHeader) bool {
		if h.ProducerID >= 0 && !h.IsControl() {
			p.recordLocked(h.ProducerID, h.ProducerEpoch, batchMeta{
				firstSeq: h.BaseSequence, lastSeq: lastSeq(h.BaseSequence, h.LastOffsetDelta),
				baseOffset: h.BaseOffset, lastOffset: h.LastOffset(),
			})
		}
		return true
	})
	if err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("broker/cluster: rebuild producer state of %s-%d: %w", topic, index, err)
	}
	return p, nil
}

// Log returns the partition's log.
func (p *Partition) Log() *log.Log { return p.log }

func lastSeq(first, delta int32) int32 {
	s := int64(first) + int64(delta)
	if s > 1<<31-1 {
		s -= 1 << 31
	}
	return int32(s)
}

func (p *Partition) recordLocked(pid int64, epoch int16, m batchMeta) {
	s := p.mu.producers[pid]
	if s == nil || epoch != s.epoch {
		s = &producerState{epoch: epoch}
		p.mu.producers[pid] = s
	}
	s.add(m)
}

// AppendResult is the outcome of Append.
type AppendResult struct {
	log.AppendResult
	// Duplicate is true when the batch was a retry of one already in the
	// log; the offsets are those of the original.
	Duplicate bool
}

// Append validates and appends one record batch (the caller's buffer, which
// may be rewritten in place), applying Kafka's idempotent-producer checks
// when the batch carries a producer id.
func (p *Partition) Append(batch []byte) (AppendResult, error) {
	h, err := records.ParseHeader(batch)
	if err != nil {
		return AppendResult{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	idem := h.ProducerID >= 0
	if idem {
		if r, dup, err := p.checkSequenceLocked(h); err != nil || dup {
			return r, err
		}
	}
	r, err := p.log.Append(batch)
	if err != nil {
		return AppendResult{}, err
	}
	if idem {
		p.recordLocked(h.ProducerID, h.ProducerEpoch, batchMeta{
			firstSeq: h.BaseSequence, lastSeq: lastSeq(h.BaseSequence, h.LastOffsetDelta),
			baseOffset: r.BaseOffset, lastOffset: r.LastOffset,
		})
	}
	p.notify()
	return AppendResult{AppendResult: r}, nil
}

// checkSequenceLocked applies Kafka's rules (ProducerStateManager): a new
// epoch must start at sequence 0 (unless the producer is unknown, e.g. after
// its batches were deleted by retention), an older epoch is fenced, a batch
// equal to one of the last five is a duplicate, and any other batch must
// follow the newest one.
func (p *Partition) checkSequenceLocked(h records.BatchHeader) (AppendResult, bool, error) {
	s := p.mu.producers[h.ProducerID]
	if s == nil {
		return AppendResult{}, false, nil
	}
	switch {
	case h.ProducerEpoch < s.epoch:
		return AppendResult{}, false, fmt.Errorf("%w: producer %d epoch %d is older than the current %d",
			ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, s.epoch)
	case h.ProducerEpoch > s.epoch:
		if h.BaseSequence != 0 {
			return AppendResult{}, false, fmt.Errorf("%w: producer %d new epoch %d must start at sequence 0, not %d",
				ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		return AppendResult{}, false, nil
	}
	last := lastSeq(h.BaseSequence, h.LastOffsetDelta)
	if m, ok := s.duplicate(h.BaseSequence, last); ok {
		return AppendResult{
			AppendResult: log.AppendResult{BaseOffset: m.baseOffset, LastOffset: m.lastOffset, LogAppendTime: -1, LogStartOffset: p.log.StartOffset()},
			Duplicate:    true,
		}, true, nil
	}
	if s.n > 0 {
		want := lastSeq(s.newest().lastSeq, 1)
		if h.BaseSequence != want {
			return AppendResult{}, false, fmt.Errorf("%w: producer %d expected sequence %d, got %d",
				ErrOutOfOrderSequence, h.ProducerID, want, h.BaseSequence)
		}
	}
	return AppendResult{}, false, nil
}

// Watch registers ch to receive a value (without blocking) when data is
// appended. Unwatch removes it.
func (p *Partition) Watch(ch chan struct{}) {
	p.waitMu.Lock()
	p.waiters[ch] = struct{}{}
	p.waitMu.Unlock()
}

// Unwatch undoes Watch.
func (p *Partition) Unwatch(ch chan struct{}) {
	p.waitMu.Lock()
	delete(p.waiters, ch)
	p.waitMu.Unlock()
}

func (p *Partition) notify() {
	p.waitMu.Lock()
	for ch := range p.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	p.waitMu.Unlock()
}

func (p *Partition) close() error {
	p.notify()
	return p.log.Close()
}
