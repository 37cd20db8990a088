package window

import (
	"testing"
	"time"
)

func TestSlidingSpec(t *testing.T) {
	s := Sliding(10 * time.Millisecond).Grace(5 * time.Millisecond)
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if s.TimeDifference() != 10 || s.GraceMs() != 5 {
		t.Fatalf("accessors: %d %d", s.TimeDifference(), s.GraceMs())
	}
	// The aggregation looks back 2 × time difference from a record that
	// may be up to grace late: that is the least retention.
	if got := s.RetentionMs(); got != 25 {
		t.Fatalf("default retention %d, want 25", got)
	}
	if got := s.Retention(time.Second).RetentionMs(); got != 1000 {
		t.Fatalf("retention %d, want 1000", got)
	}
	for name, bad := range map[string]SlidingSpec{
		"zero difference":   Sliding(0),
		"negative grace":    Sliding(time.Second).Grace(-time.Millisecond),
		"short retention":   Sliding(time.Second).Retention(1500 * time.Millisecond),
		"negative diff":     Sliding(-time.Second),
		"retention < grace": Sliding(time.Millisecond).Grace(time.Second).Retention(time.Second),
	} {
		if bad.Validate() == nil {
			t.Errorf("%s: %+v validated", name, bad)
		}
	}
}
