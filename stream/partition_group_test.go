package stream

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func recsAt(topic string, offset int64, tss ...int64) []*kgo.Record {
	var out []*kgo.Record
	for _, ts := range tss {
		out = append(out, &kgo.Record{Topic: topic, Offset: offset, Timestamp: time.UnixMilli(ts)})
		offset++
	}
	return out
}

func popAll(g *partitionGroup, now time.Time, enforce bool) []string {
	var got []string
	for r := g.pop(now, enforce); r != nil; r = g.pop(now, enforce) {
		got = append(got, r.Topic+"@"+r.Timestamp.Format("05.000"))
	}
	return got
}

func TestPartitionGroupOrdersByTimestamp(t *testing.T) {
	g := newPartitionGroup(time.Second)
	a, b := tp{"a", 0}, tp{"b", 0}
	g.add(a, recsAt("a", 0, 1000, 3000, 5000), 0, 3)
	g.add(b, recsAt("b", 0, 2000, 2000, 6000), 0, 3)
	got := popAll(g, time.Now(), false)
	want := []string{"a@01.000", "b@02.000", "b@02.000", "a@03.000", "a@05.000", "b@06.000"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if g.buffered != 0 {
		t.Fatalf("buffered = %d after draining", g.buffered)
	}
}

func TestPartitionGroupWaitsForLaggingPartition(t *testing.T) {
	g := newPartitionGroup(time.Second)
	a, b := tp{"a", 0}, tp{"b", 0}
	// b's first fetch ended at offset 2 of 10: it lags.
	g.add(a, recsAt("a", 0, 5000, 6000), 0, 2)
	g.add(b, recsAt("b", 0, 1000, 2000), 0, 10)
	now := time.Now()
	got := popAll(g, now, false)
	if len(got) != 2 || got[0] != "b@01.000" || got[1] != "b@02.000" {
		t.Fatalf("before b's next fetch: got %v, want b's two records only", got)
	}
	if g.waitingUntil() != now.Add(time.Second) {
		t.Fatalf("waitingUntil = %v, want now+1s", g.waitingUntil())
	}
	// Still waiting just before the bound.
	if r := g.pop(now.Add(999*time.Millisecond), false); r != nil {
		t.Fatalf("popped %v while waiting", r.Topic)
	}
	// b's next fetch brings an earlier record than a's head.
	g.add(b, recsAt("b", 2, 3000), 0, 10)
	if r := g.pop(now.Add(time.Millisecond), false); r == nil || r.Topic != "b" {
		t.Fatalf("want b's record at 3000 first, got %v", r)
	}
	// b lags again: after the bound, a's records go out anyway.
	if r := g.pop(now.Add(2*time.Millisecond), false); r != nil {
		t.Fatalf("popped %v while waiting", r.Topic)
	}
	if got := popAll(g, now.Add(2*time.Second), false); len(got) != 2 {
		t.Fatalf("after the idle bound: got %v, want a's two records", got)
	}
}

func TestPartitionGroupCaughtUpAndControlRecords(t *testing.T) {
	g := newPartitionGroup(time.Hour)
	g.isControl = func(r *kgo.Record) bool { return r.Timestamp.IsZero() }
	a, b := tp{"a", 0}, tp{"b", 0}
	g.add(a, recsAt("a", 0, 5000), 0, 1)
	// b ends with a commit marker: once it is polled, b is caught up.
	brecs := recsAt("b", 0, 1000, 0)
	brecs[1].Timestamp = time.Time{}
	g.add(b, brecs, 0, 2)
	// The marker comes out (for the thread to commit past it) as soon as
	// it is at the head, and a does not wait for b.
	got := popAll(g, time.Now(), false)
	if len(got) != 3 || got[0] != "b@01.000" || got[1] != "b@00.000" || got[2] != "a@05.000" {
		t.Fatalf("got %v, want b, b's marker, then a without waiting", got)
	}
	// An empty partition is not waited for.
	g.add(tp{"c", 0}, nil, 0, 0)
	g.add(a, recsAt("a", 1, 7000), 0, 2)
	if got := popAll(g, time.Now(), false); len(got) != 1 {
		t.Fatalf("got %v, want a's record", got)
	}
	// Nothing is waited for while every queue holds records.
	g.add(b, recsAt("b", 2, 9000), 0, 50)
	g.add(a, recsAt("a", 2, 8000, 8500), 0, 3)
	if got := popAll(g, time.Now(), false); len(got) != 3 {
		t.Fatalf("got %v, want a, a, b", got)
	}
	// Then b lags: a waits, unless enforced (before a commit).
	g.add(a, recsAt("a", 4, 9500), 0, 5)
	if got := popAll(g, time.Now(), false); len(got) != 0 {
		t.Fatalf("got %v while b lags", got)
	}
	if got := popAll(g, time.Now(), true); len(got) != 1 {
		t.Fatalf("enforce: got %v, want a's record", got)
	}
}

func TestPartitionGroupWaitsOnceForUnknownPosition(t *testing.T) {
	g := newPartitionGroup(time.Second)
	g.add(tp{"a", 0}, recsAt("a", 0, 5000), 0, 1)
	g.add(tp{"b", 0}, nil, 0, 100) // holds records, none polled yet
	now := time.Now()
	if r := g.pop(now, false); r != nil {
		t.Fatal("a should wait for b's first records")
	}
	if r := g.pop(now.Add(time.Second), false); r == nil {
		t.Fatal("a should go after the idle bound")
	}
	// b stays unpolled (it was caught up): no further waits.
	g.add(tp{"a", 0}, recsAt("a", 1, 6000), 0, 2)
	if r := g.pop(now.Add(time.Second+time.Millisecond), false); r == nil {
		t.Fatal("a should not wait again")
	}
}

func TestPartitionGroupNeverWaitsWhenIdleNegative(t *testing.T) {
	g := newPartitionGroup(-1)
	g.add(tp{"a", 0}, recsAt("a", 0, 5000), 0, 1)
	g.add(tp{"b", 0}, recsAt("b", 0, 1000), 0, 100)
	if got := popAll(g, time.Now(), false); len(got) != 2 {
		t.Fatalf("got %v, want both records", got)
	}
}

func TestPartitionGroupBoundsBuffering(t *testing.T) {
	g := newPartitionGroup(time.Hour)
	g.maxBuffered = 3
	g.add(tp{"b", 0}, recsAt("b", 0, 1000), 0, 100) // b lags
	if r := g.pop(time.Now(), false); r == nil {
		t.Fatal("b's record should go")
	}
	g.add(tp{"a", 0}, recsAt("a", 0, 5000, 5001), 0, 2)
	if r := g.pop(time.Now(), false); r != nil {
		t.Fatal("a should wait for b with 2 records buffered")
	}
	g.add(tp{"a", 0}, recsAt("a", 2, 5002), 0, 3)
	// Full: records go until the buffer is under its bound again.
	if got := popAll(g, time.Now(), false); len(got) != 1 {
		t.Fatalf("with the buffer full: got %v, want a's first record", got)
	}
}
