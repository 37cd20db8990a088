package window

import (
	"fmt"
	"time"
)

// SlidingSpec describes sliding windows, Kafka Streams' SlidingWindows
// (KIP-450): windows of a fixed time difference whose bounds follow the
// records rather than the epoch. Two records of a key fall in a common
// window when their timestamps differ by at most the time difference.
//
// A sliding window is a closed interval [Start, End] with End = Start +
// time difference: unlike tumbling and hopping windows, it includes its
// end. The windows that exist are those with at least one record that
// start or end at a record: each record has its left window [ts -
// difference, ts], and a right window [ts + 1, ts + 1 + difference] once a
// later record falls in it. Records earlier than the time difference
// (timestamps in [0, difference)) share the window [0, difference].
type SlidingSpec struct {
	diff, grace, retention int64 // ms; retention 0 = 2*diff + grace
}

// Sliding returns sliding windows of the given time difference, with no
// grace period (Kafka Streams' SlidingWindows.ofTimeDifferenceWithNoGrace);
// set one with Grace.
func Sliding(timeDifference time.Duration) SlidingSpec {
	return SlidingSpec{diff: timeDifference.Milliseconds()}
}

// Grace accepts records for a window until stream time passes its end plus
// d: a window [Start, End] takes updates while End >= stream time - d. A
// record whose every window has closed (ts + 1 + difference <= stream time
// - d) is dropped and counted as late.
func (s SlidingSpec) Grace(d time.Duration) SlidingSpec { s.grace = d.Milliseconds(); return s }

// Retention keeps windows in the store (for queries) for d after they
// start, at least 2 × time difference + grace (the aggregation looks back
// that far).
func (s SlidingSpec) Retention(d time.Duration) SlidingSpec {
	s.retention = d.Milliseconds()
	return s
}

// TimeDifference returns the time difference in ms: the largest distance
// between two records of one window, and each window's End - Start.
func (s SlidingSpec) TimeDifference() int64 { return s.diff }

// GraceMs returns the grace period in ms.
func (s SlidingSpec) GraceMs() int64 { return s.grace }

// RetentionMs returns how long windows are kept after their start, in ms.
func (s SlidingSpec) RetentionMs() int64 { return max(s.retention, 2*s.diff+s.grace) }

// Validate reports a spec that cannot work.
func (s SlidingSpec) Validate() error {
	switch {
	case s.diff <= 0:
		return fmt.Errorf("window: the time difference of sliding windows must be positive, not %dms", s.diff)
	case s.grace < 0:
		return fmt.Errorf("window: grace must not be negative")
	case s.retention != 0 && s.retention < 2*s.diff+s.grace:
		return fmt.Errorf("window: retention %dms is shorter than 2 × time difference + grace (%dms)", s.retention, 2*s.diff+s.grace)
	}
	return nil
}
