package stream

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// partitionGroup buffers the fetched records of a task's input partitions
// and hands them out in timestamp order across the partitions, as Kafka
// Streams' PartitionGroup does: a join sees the table update of 10:00
// before the stream record of 10:01 even when the two topics arrive in
// other fetches.
//
// The record picked next is the one with the smallest timestamp among the
// heads of the partitions' queues. While the queue of some partition is
// empty although the broker holds records of it that were not fetched yet
// (its fetched high watermark, or last stable offset under read_committed,
// is past the records polled so far), the task waits for them: for at most
// idle (MaxTaskIdle), after which it goes on with what it has (enforced
// processing). A partition known to be caught up is not waited for; one
// that holds records but of which nothing was polled yet (its position is
// not known) is, so a task started on a backlog waits once, for at most
// idle, when such a partition turns out to be caught up. Control records
// (transaction markers, kept by the consumer for this purpose) tell that a
// partition's position moved past them; pop returns them first, and the
// thread commits past them without processing them.
//
// Under at-least-once, buffered records survive commits (the thread
// commits the offsets of processed records only). Under exactly-once the
// transaction commits the offset of every polled record, so the thread
// defers a due commit while a task waits (at most idle) and then processes
// everything buffered first (pop with enforce).
type partitionGroup struct {
	queues   []*partQueue // in the order partitions were first seen
	byTP     map[tp]*partQueue
	buffered int

	idle         time.Duration // < 0: never wait
	maxBuffered  int           // past this many buffered records, never wait
	blockedSince time.Time     // zero: not waiting
	isControl    func(*kgo.Record) bool
}

// partQueue is one input partition's buffered records.
type partQueue struct {
	tp    tp
	recs  []*kgo.Record
	head  int
	next  int64 // offset after the last record polled (-1: none yet)
	end   int64 // the fetchable end the broker last reported (-1: unknown)
	start int64 // the log start offset the broker last reported (-1: unknown)
}

// defaultMaxBuffered bounds the records a task buffers while it waits for
// a lagging partition; beyond it, the task processes what it has.
const defaultMaxBuffered = 20000

func newPartitionGroup(idle time.Duration) *partitionGroup {
	return &partitionGroup{byTP: map[tp]*partQueue{}, idle: idle, maxBuffered: defaultMaxBuffered,
		isControl: func(r *kgo.Record) bool { return r.Attrs.IsControl() }}
}

// add buffers a fetched partition's records; start and end are the
// partition's log start offset and high watermark (or last stable offset)
// from the fetch, -1 if unknown.
func (g *partitionGroup) add(k tp, recs []*kgo.Record, start, end int64) {
	q := g.byTP[k]
	if q == nil {
		q = &partQueue{tp: k, next: -1, end: -1, start: -1}
		g.byTP[k] = q
		g.queues = append(g.queues, q)
	}
	if end >= 0 {
		q.end = end
	}
	if start >= 0 {
		q.start = start
	}
	if len(recs) == 0 {
		return
	}
	q.next = recs[len(recs)-1].Offset + 1
	if q.head == len(q.recs) {
		q.recs, q.head = q.recs[:0], 0
	}
	for _, r := range recs {
		q.recs = append(q.recs, r)
		g.buffered++
	}
}

// lagging reports whether the broker holds records of q that were not
// fetched yet (or may, when nothing of q was polled yet).
func (q *partQueue) lagging() bool {
	if q.head != len(q.recs) || q.end < 0 {
		return false
	}
	if q.next >= 0 {
		return q.end > q.next
	}
	return q.start >= 0 && q.end > q.start
}

// pop returns the next record to process, or nil when the group is empty
// or waits for a lagging partition. enforce skips waiting (the thread is
// about to commit).
func (g *partitionGroup) pop(now time.Time, enforce bool) *kgo.Record {
	// Control records at the heads go first: the thread only moves the
	// partition's committed offset past them.
	for _, q := range g.queues {
		if q.head < len(q.recs) && g.isControl(q.recs[q.head]) {
			return g.take(q)
		}
	}
	var best *partQueue
	waiting := false
	for _, q := range g.queues {
		if q.head == len(q.recs) {
			waiting = waiting || q.lagging()
			continue
		}
		if best == nil || q.recs[q.head].Timestamp.Before(best.recs[best.head].Timestamp) {
			best = q
		}
	}
	if best == nil {
		g.blockedSince = time.Time{}
		return nil
	}
	if waiting && !enforce && g.idle >= 0 && g.buffered < g.maxBuffered {
		if g.blockedSince.IsZero() {
			g.blockedSince = now
		}
		if now.Sub(g.blockedSince) < g.idle {
			return nil
		}
	} else if !waiting {
		g.blockedSince = time.Time{}
	}
	return g.take(best)
}

// take removes and returns q's head record.
func (g *partitionGroup) take(q *partQueue) *kgo.Record {
	r := q.recs[q.head]
	q.recs[q.head] = nil
	q.head++
	g.buffered--
	return r
}

// waitingUntil returns when the group stops waiting for a lagging
// partition (zero if it is not waiting).
func (g *partitionGroup) waitingUntil() time.Time {
	if g.blockedSince.IsZero() || g.buffered == 0 {
		return time.Time{}
	}
	return g.blockedSince.Add(g.idle)
}
