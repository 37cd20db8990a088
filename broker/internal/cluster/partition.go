package cluster

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

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
		// ongoing maps a producer id with an open transaction on this
		// partition to the offset of its first batch in it.
		ongoing map[int64]int64
	}
	// firstUnstable is the smallest offset of mu.ongoing, or -1 when no
	// transaction is open: the last stable offset when set. It is set
	// before a transaction's first batch is appended and cleared after
	// its marker (and aborted entry) are written, so a reader that loads
	// it never sees open transactional data below it.
	firstUnstable atomic.Int64

	abortMu sync.RWMutex
	// aborted is the aborted-transaction index, in marker offset order.
	aborted []AbortedTxn
	// emptyAborts holds the markers of aborted transactions whose data
	// the last clean pass reported gone, for the next MaybeClean to
	// forget.
	emptyAborts []int64

	waitMu  sync.Mutex
	waiters map[chan struct{}]struct{}
}

func newPartition(topic string, index int32, l *log.Log) (*Partition, error) {
	p := &Partition{Topic: topic, Index: index, log: l, waiters: map[chan struct{}]struct{}{}}
	p.mu.producers = map[int64]*producerState{}
	p.mu.ongoing = map[int64]int64{}
	p.firstUnstable.Store(-1)
	// Rebuild the producer state and the transaction state from the batch
	// headers in the log, so retries after a restart are still recognised
	// as duplicates, open transactions still hold the last stable offset
	// back and aborted transactions are still known to read_committed
	// fetches: a transactional batch opens its producer's transaction, the
	// producer's next control batch (whose record is read for its type)
	// closes it.
	var markerErr error
	var buf []byte
	err := l.ScanBatches(l.StartOffset(), func(h records.BatchHeader) bool {
		switch {
		case h.ProducerID < 0:
		case h.IsControl():
			buf, markerErr = l.Read(buf[:0], h.BaseOffset, h.TotalSize(), h.LastOffset()+1, true)
			if markerErr != nil {
				return false
			}
			typ, _ := records.ControlType(buf)
			p.markerLocked(h.ProducerID, h.ProducerEpoch, typ == records.ControlCommit, h.BaseOffset)
		default:
			if h.IsTransactional() {
				p.openTxnLocked(h.ProducerID, h.BaseOffset)
			}
			p.recordLocked(h.ProducerID, h.ProducerEpoch, batchMeta{
				firstSeq: h.BaseSequence, lastSeq: lastSeq(h.BaseSequence, h.LastOffsetDelta),
				baseOffset: h.BaseOffset, lastOffset: h.LastOffset(),
			})
		}
		return true
	})
	if err == nil {
		err = markerErr
	}
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
// when the batch carries a producer id. A transactional batch opens its
// producer's transaction on the partition if none is open (the caller, the
// produce path, has checked with the transaction coordinator that the
// partition is part of an ongoing transaction).
func (p *Partition) Append(batch []byte) (AppendResult, error) {
	return p.append(batch, true)
}

// AppendCoordinator appends a batch written by a coordinator of this
// broker (transactional offset commits): like Append but without sequence
// checks, since coordinators write no sequence numbers, as in Kafka.
func (p *Partition) AppendCoordinator(batch []byte) (AppendResult, error) {
	return p.append(batch, false)
}

func (p *Partition) append(batch []byte, checkSeq bool) (AppendResult, error) {
	h, err := records.ParseHeader(batch)
	if err != nil {
		return AppendResult{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	idem := h.ProducerID >= 0 && checkSeq
	if idem {
		if r, dup, err := p.checkSequenceLocked(h); err != nil || dup {
			return r, err
		}
	}
	txn := h.ProducerID >= 0 && h.IsTransactional() && !h.IsControl()
	opened := false
	if txn {
		// Open the transaction before the data is readable, so that no
		// fetch sees a last stable offset above it.
		if _, ok := p.mu.ongoing[h.ProducerID]; !ok {
			p.openTxnLocked(h.ProducerID, p.log.EndOffset())
			opened = true
		}
	}
	r, err := p.log.Append(batch)
	if err != nil {
		if opened {
			delete(p.mu.ongoing, h.ProducerID)
			p.updateUnstableLocked()
		}
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

// AbortedTxn is one entry of a partition's aborted-transaction index: the
// producer's first offset in the aborted transaction and the offset of its
// ABORT marker.
type AbortedTxn struct {
	ProducerID              int64
	FirstOffset, LastOffset int64
}

func (p *Partition) openTxnLocked(pid, first int64) {
	if _, ok := p.mu.ongoing[pid]; ok {
		return
	}
	p.mu.ongoing[pid] = first
	p.updateUnstableLocked()
}

func (p *Partition) updateUnstableLocked() {
	first := int64(-1)
	for _, off := range p.mu.ongoing {
		if first < 0 || off < first {
			first = off
		}
	}
	p.firstUnstable.Store(first)
}

// markerLocked applies a marker of producer pid at offset off: it closes the
// producer's open transaction (recording it in the aborted index when
// aborted) and moves the producer to the marker's epoch (a coordinator that
// fenced the producer wrote the marker with a bumped epoch).
func (p *Partition) markerLocked(pid int64, epoch int16, commit bool, off int64) {
	if s := p.mu.producers[pid]; s == nil || epoch > s.epoch {
		p.mu.producers[pid] = &producerState{epoch: epoch}
	}
	first, ok := p.mu.ongoing[pid]
	if !ok {
		return
	}
	if !commit {
		p.abortMu.Lock()
		p.aborted = append(p.aborted, AbortedTxn{ProducerID: pid, FirstOffset: first, LastOffset: off})
		p.abortMu.Unlock()
	}
	delete(p.mu.ongoing, pid)
	p.updateUnstableLocked()
}

// WriteMarker appends a COMMIT or ABORT marker of producer pid (at the
// given epoch) and closes its transaction on this partition. It returns the
// marker's offset. A marker for a producer with no open transaction here is
// written anyway (a coordinator resuming an interrupted commit writes every
// marker again), as Kafka does.
func (p *Partition) WriteMarker(pid int64, epoch int16, commit bool, coordinatorEpoch int32, nowMs int64) (int64, error) {
	batch := records.AppendMarker(nil, pid, epoch, commit, coordinatorEpoch, nowMs)
	p.mu.Lock()
	r, err := p.log.Append(batch)
	if err != nil {
		p.mu.Unlock()
		return 0, err
	}
	p.markerLocked(pid, epoch, commit, r.BaseOffset)
	p.mu.Unlock()
	p.notify()
	return r.BaseOffset, nil
}

// LastStableOffset returns the partition's last stable offset: the first
// offset of its earliest open transaction, or the high watermark (the log
// end offset on one node) when none is open.
func (p *Partition) LastStableOffset() int64 {
	if f := p.firstUnstable.Load(); f >= 0 {
		return f
	}
	hw := p.log.EndOffset()
	// An open transaction may have started between the two loads.
	if f := p.firstUnstable.Load(); f >= 0 {
		return f
	}
	return hw
}

// MaybeClean runs the log cleaner on the partition's log when it is due
// (log.Log.MaybeClean). Before that, it forgets the aborted transactions
// whose data the previous pass reported gone (CleanStats.EmptyAborts),
// since their ABORT markers may go in this pass: a read_committed consumer
// told of an aborted transaction skips its producer's batches until it
// meets the marker. Forgetting them one pass late (not right after the
// pass that removed their data) keeps the entries for any fetch that read
// the old data before that pass's swap and asks for the aborted
// transactions after it; the marker itself can only go in a later pass.
func (p *Partition) MaybeClean() (log.CleanStats, bool, error) {
	p.abortMu.Lock()
	forget := p.emptyAborts
	p.emptyAborts = nil
	p.abortMu.Unlock()
	p.forgetAborted(forget)
	st, cleaned, err := p.log.MaybeClean()
	p.abortMu.Lock()
	p.emptyAborts = append(p.emptyAborts, st.EmptyAborts...)
	p.abortMu.Unlock()
	return st, cleaned, err
}

// forgetAborted removes from the aborted-transaction index the entries
// whose marker is at one of the offsets markers.
func (p *Partition) forgetAborted(markers []int64) {
	if len(markers) == 0 {
		return
	}
	set := make(map[int64]bool, len(markers))
	for _, m := range markers {
		set[m] = true
	}
	p.abortMu.Lock()
	defer p.abortMu.Unlock()
	p.aborted = slices.DeleteFunc(p.aborted, func(a AbortedTxn) bool { return set[a.LastOffset] })
}

// AbortedTxns appends to dst the aborted transactions that overlap the
// offsets [from, to): those whose marker is at or past from and whose first
// offset is below to, which is what a read_committed fetch of that range
// needs (Kafka's collectAbortedTransactions).
func (p *Partition) AbortedTxns(dst []AbortedTxn, from, to int64) []AbortedTxn {
	p.abortMu.RLock()
	defer p.abortMu.RUnlock()
	i, _ := slices.BinarySearchFunc(p.aborted, from, func(a AbortedTxn, off int64) int { return cmp.Compare(a.LastOffset, off) })
	for _, a := range p.aborted[i:] {
		if a.FirstOffset < to {
			dst = append(dst, a)
		}
	}
	return dst
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
