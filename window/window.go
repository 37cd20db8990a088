// Package window defines event-time windows for stream aggregations and
// joins: tumbling, hopping, sliding and session windows with a grace period,
// the Windowed[K] key of windowed results, and its serde in Kafka Streams'
// byte format.
package window

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/serde"
)

// Window is a half-open interval of event time [Start, End), in
// milliseconds since the epoch. Session windows are closed intervals
// [Start, End] of the records they hold, as in Kafka Streams, and so are
// sliding windows, whose End is Start + time difference (see SlidingSpec).
type Window struct {
	Start, End int64
}

// StartTime returns the window's start as a time.
func (w Window) StartTime() time.Time { return time.UnixMilli(w.Start) }

// EndTime returns the window's end as a time.
func (w Window) EndTime() time.Time { return time.UnixMilli(w.End) }

func (w Window) String() string { return fmt.Sprintf("[%d,%d)", w.Start, w.End) }

// Windowed is the key of a windowed result: the record key and its window.
type Windowed[K any] struct {
	Key    K
	Window Window
}

// Spec describes fixed-size time windows (tumbling or hopping): which
// windows a timestamp falls in, and how long late records are accepted.
type Spec struct {
	size, advance int64 // ms
	grace         int64 // ms
	retention     int64 // ms; 0 = size + grace
}

// Tumbling returns non-overlapping windows of the given size, aligned to
// the epoch. The default grace period is 0 (Kafka Streams 3+'s
// ofSizeWithNoGrace); set one with Grace.
func Tumbling(size time.Duration) Spec {
	return Spec{size: size.Milliseconds(), advance: size.Milliseconds()}
}

// Hopping returns windows of the given size starting every advance (so a
// record falls in size/advance windows), aligned to the epoch.
func Hopping(size, advance time.Duration) Spec {
	return Spec{size: size.Milliseconds(), advance: advance.Milliseconds()}
}

// Grace accepts records up to d after their window ends (by stream time);
// later records are dropped (and counted as late).
func (s Spec) Grace(d time.Duration) Spec { s.grace = d.Milliseconds(); return s }

// Retention keeps windows in the store (for queries) for d after they
// start, at least size + grace.
func (s Spec) Retention(d time.Duration) Spec { s.retention = d.Milliseconds(); return s }

// Size returns the window size in ms.
func (s Spec) Size() int64 { return s.size }

// Advance returns the hop in ms.
func (s Spec) Advance() int64 { return s.advance }

// GraceMs returns the grace period in ms.
func (s Spec) GraceMs() int64 { return s.grace }

// RetentionMs returns how long windows are kept after their start, in ms.
func (s Spec) RetentionMs() int64 { return max(s.retention, s.size+s.grace) }

// Validate reports a spec that cannot work.
func (s Spec) Validate() error {
	switch {
	case s.size <= 0:
		return fmt.Errorf("window: size must be positive, not %dms", s.size)
	case s.advance <= 0 || s.advance > s.size:
		return fmt.Errorf("window: advance must be in (0, size], not %dms (size %dms)", s.advance, s.size)
	case s.grace < 0:
		return fmt.Errorf("window: grace must not be negative")
	case s.retention != 0 && s.retention < s.size+s.grace:
		return fmt.Errorf("window: retention %dms is shorter than size + grace (%dms)", s.retention, s.size+s.grace)
	}
	return nil
}

// WindowsFor returns the windows a record at ts belongs to, oldest first.
func (s Spec) WindowsFor(ts int64) []Window {
	if ts < 0 {
		return nil
	}
	// The latest window starting at or before ts, then back by advance
	// while the window still covers ts.
	last := ts - ts%s.advance
	var out []Window
	for start := last; start >= 0 && start > ts-s.size; start -= s.advance {
		out = append(out, Window{Start: start, End: start + s.size})
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// Sessions are windows that grow while records of a key keep arriving within
// the inactivity gap of each other, and merge when a record bridges two.
type Sessions struct {
	gap, grace, retention int64
}

// Session returns session windows with the given inactivity gap.
func Session(gap time.Duration) Sessions { return Sessions{gap: gap.Milliseconds()} }

// Grace accepts records up to d after the session they would join has
// closed (its end + gap), by stream time.
func (s Sessions) Grace(d time.Duration) Sessions { s.grace = d.Milliseconds(); return s }

// Gap returns the inactivity gap in ms.
func (s Sessions) Gap() int64 { return s.gap }

// GraceMs returns the grace period in ms.
func (s Sessions) GraceMs() int64 { return s.grace }

// KeySerde returns a serde for Windowed[K] of fixed-size time windows in
// Kafka Streams' TimeWindowedSerde format: the key's bytes followed by the
// window start as an 8-byte big-endian int64. The end is start + size (the
// format does not carry it), so size must be the windows' size.
func KeySerde[K any](k serde.Serde[K], size time.Duration) serde.Serde[Windowed[K]] {
	return timeWindowedSerde[K]{inner: k, size: size.Milliseconds()}
}

type timeWindowedSerde[K any] struct {
	inner serde.Serde[K]
	size  int64
}

func (s timeWindowedSerde[K]) AppendEncode(dst []byte, w Windowed[K]) ([]byte, error) {
	dst, err := s.inner.AppendEncode(dst, w.Key)
	if err != nil {
		return dst, err
	}
	return binary.BigEndian.AppendUint64(dst, uint64(w.Window.Start)), nil
}

func (s timeWindowedSerde[K]) Decode(b []byte) (Windowed[K], error) {
	if len(b) < 8 {
		return Windowed[K]{}, fmt.Errorf("%w: a windowed key needs at least 8 bytes, got %d", serde.ErrMalformed, len(b))
	}
	k, err := s.inner.Decode(b[:len(b)-8])
	if err != nil {
		return Windowed[K]{}, err
	}
	start := int64(binary.BigEndian.Uint64(b[len(b)-8:]))
	return Windowed[K]{Key: k, Window: Window{Start: start, End: start + s.size}}, nil
}

// SessionKeySerde returns a serde for session-windowed keys in Kafka
// Streams' SessionWindowedSerde format: the key's bytes, the window end and
// the window start, each an 8-byte big-endian int64.
func SessionKeySerde[K any](k serde.Serde[K]) serde.Serde[Windowed[K]] {
	return sessionSerde[K]{inner: k}
}

type sessionSerde[K any] struct{ inner serde.Serde[K] }

func (s sessionSerde[K]) AppendEncode(dst []byte, w Windowed[K]) ([]byte, error) {
	dst, err := s.inner.AppendEncode(dst, w.Key)
	if err != nil {
		return dst, err
	}
	dst = binary.BigEndian.AppendUint64(dst, uint64(w.Window.End))
	return binary.BigEndian.AppendUint64(dst, uint64(w.Window.Start)), nil
}

func (s sessionSerde[K]) Decode(b []byte) (Windowed[K], error) {
	if len(b) < 16 {
		return Windowed[K]{}, fmt.Errorf("%w: a session-windowed key needs at least 16 bytes, got %d", serde.ErrMalformed, len(b))
	}
	k, err := s.inner.Decode(b[:len(b)-16])
	if err != nil {
		return Windowed[K]{}, err
	}
	end := int64(binary.BigEndian.Uint64(b[len(b)-16:]))
	start := int64(binary.BigEndian.Uint64(b[len(b)-8:]))
	return Windowed[K]{Key: k, Window: Window{Start: start, End: end}}, nil
}
