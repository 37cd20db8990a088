package table

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"sync/atomic"
)

// Layout says how a Segmented store reads the keys it is given (its
// external keys, the ones the record cache and the changelog carry).
type Layout uint8

const (
	// WindowLayout is the key of a fixed-size time window, in Kafka
	// Streams' TimeWindowedSerde format: the record key's bytes, then the
	// window start as an 8-byte big-endian int64. Records are segmented by
	// window start.
	WindowLayout Layout = iota + 1

	// SessionLayout is the key of a session: a 4-byte big-endian length,
	// the record key's bytes, the session end and the session start (each
	// an 8-byte big-endian int64). Records are segmented by session end.
	SessionLayout
)

// String returns "window" or "session".
func (l Layout) String() string {
	switch l {
	case WindowLayout:
		return "window"
	case SessionLayout:
		return "session"
	}
	return fmt.Sprintf("Layout(%d)", uint8(l))
}

// timesLen is the length of the times that end a key of the layout.
func (l Layout) timesLen() int {
	if l == SessionLayout {
		return 16
	}
	return 8
}

// split returns the record key and the times of an external key.
func (l Layout) split(ext []byte) (key, times []byte, ok bool) {
	switch l {
	case WindowLayout:
		if len(ext) < 8 {
			return nil, nil, false
		}
		return ext[:len(ext)-8], ext[len(ext)-8:], true
	case SessionLayout:
		if len(ext) < 4+16 {
			return nil, nil, false
		}
		n := uint64(binary.BigEndian.Uint32(ext))
		if uint64(len(ext)) != 4+n+16 {
			return nil, nil, false
		}
		return ext[4 : 4+n], ext[4+n:], true
	}
	return nil, nil, false
}

// External appends to dst the external key of record key key with the
// given times: for WindowLayout the window start, for SessionLayout the
// session end then start.
func (l Layout) External(dst, key []byte, times ...int64) []byte {
	if l == SessionLayout {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(key)))
	}
	dst = append(dst, key...)
	for _, t := range times {
		dst = binary.BigEndian.AppendUint64(dst, uint64(t))
	}
	return dst
}

// DefaultSegmentInterval returns the segment interval a Segmented store
// uses for a retention of retentionMs unless told otherwise: half the
// retention, at least a minute (Kafka Streams' rule).
func DefaultSegmentInterval(retentionMs int64) int64 { return max(retentionMs/2, 60_000) }

// maxSegments bounds retention / interval, so that no fetch visits more
// than about this many segments.
const maxSegments = 10_000

// SegmentedOpt configures NewSegmented.
type SegmentedOpt func(*Segmented)

// SegmentInterval sets the time span of one segment in ms (default
// DefaultSegmentInterval(retention)). Smaller segments free expired
// records sooner at the cost of more range scans per fetch; the store
// keeps about retention/interval + 1 live segments.
func SegmentInterval(ms int64) SegmentedOpt { return func(s *Segmented) { s.interval = ms } }

// segMetaKey holds the store's observed time (8 bytes) in the store below.
// It sorts after every record: a record key starts with its segment id,
// and the last id is refused.
var segMetaKey = []byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xffobserved")

// Segmented is a Store of time-windowed records (see Layout) that lays
// them out in the store below by time segment, so that expiry drops whole
// segments with one range delete and a fetch of one key over a time range
// reads only the segments that cover it. See the package documentation
// for the layout and for what expiry keeps.
//
// It keeps the Store contract for external keys, except that its scans
// (Range, Prefix, All) read every live segment and sort what they find:
// they cost O(n log n) and hold the result in memory. Use Fetch and
// FetchAll for anything but verification and small stores.
//
// The observed time of the store is the greatest time put into it (window
// start or session end) or passed to Expire. Records older than the
// observed time minus the retention are expired: reads skip them, puts
// of them are dropped, and their segments are deleted as soon as a
// segment holds nothing newer.
//
// Segmented does not implement Wrapper: Restore writes to it, so that
// restored records are laid out (and expired) like the others. Query
// returns a concurrent view over the query view of the store below.
type Segmented struct {
	base      Store
	layout    Layout
	interval  int64
	retention int64

	observed  atomic.Int64            // see the type doc; math.MinInt64: none
	segs      atomic.Pointer[[]int64] // live segment ids, ascending; replaced, never modified
	metaSaved int64                   // observed time last written to segMetaKey
	kbuf      []byte                  // Put/Get/Delete's internal key, task-owned
}

var (
	_ Store       = (*Segmented)(nil)
	_ BatchWriter = (*Segmented)(nil)
	_ Queryable   = (*Segmented)(nil)
)

// NewSegmented lays out the records of layout in base, keeping them for
// retentionMs (which must be positive) after their time. It finds the live
// segments and the observed time that base already holds (a persistent
// store), at a cost of one short scan per segment.
func NewSegmented(base Store, layout Layout, retentionMs int64, opts ...SegmentedOpt) (*Segmented, error) {
	s := &Segmented{base: base, layout: layout, retention: retentionMs, metaSaved: math.MinInt64}
	s.interval = DefaultSegmentInterval(retentionMs)
	for _, o := range opts {
		o(s)
	}
	switch {
	case layout != WindowLayout && layout != SessionLayout:
		return nil, fmt.Errorf("table: segmented store: unknown layout %d", layout)
	case retentionMs <= 0:
		return nil, fmt.Errorf("table: segmented store: retention must be positive, not %dms", retentionMs)
	case s.interval <= 0:
		return nil, fmt.Errorf("table: segmented store: segment interval must be positive, not %dms", s.interval)
	case retentionMs/s.interval > maxSegments:
		return nil, fmt.Errorf("table: segmented store: segment interval %dms is too small for retention %dms (at most %d segments)", s.interval, retentionMs, maxSegments)
	}
	s.observed.Store(math.MinInt64)
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// load finds the live segments and the observed time in base.
func (s *Segmented) load() error {
	var segs []int64
	from := encodeSeg(nil, math.MinInt64)
	for {
		var next []byte
		it := s.base.Range(from, nil)
		for k := range it.All() {
			next = bytes.Clone(k)
			break
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("table: segmented store: load: %w", err)
		}
		if next == nil || len(next) < 8 || bytes.Equal(next, segMetaKey) {
			break
		}
		seg := decodeSeg(next)
		segs = append(segs, seg)
		if seg == math.MaxInt64-1 {
			break
		}
		from = encodeSeg(from[:0], seg+1)
	}
	s.segs.Store(&segs)
	obs := int64(math.MinInt64)
	if len(segs) > 0 {
		obs = segs[len(segs)-1] * s.interval
	}
	v, err := s.base.Get(segMetaKey)
	switch {
	case err == nil && len(v) == 8:
		obs = max(obs, int64(binary.BigEndian.Uint64(v)))
		s.metaSaved = int64(binary.BigEndian.Uint64(v))
	case err != nil && !errors.Is(err, ErrNotFound):
		return fmt.Errorf("table: segmented store: load: %w", err)
	}
	s.observed.Store(obs)
	return nil
}

// Base returns the store below.
func (s *Segmented) Base() Store { return s.base }

// Layout returns the store's layout.
func (s *Segmented) Layout() Layout { return s.layout }

// Interval returns the segment interval in ms.
func (s *Segmented) Interval() int64 { return s.interval }

// Retention returns the retention in ms.
func (s *Segmented) Retention() int64 { return s.retention }

// Observed returns the observed time (math.MinInt64 before any).
func (s *Segmented) Observed() int64 { return s.observed.Load() }

// LowWater returns the oldest time a record may have to be live: records
// older than it are expired (see Segmented).
func (s *Segmented) LowWater() int64 { return lowWater(s.observed.Load(), s.retention) }

// Segments returns the ids of the live segments, ascending. Segment id i
// holds the times [i*interval, (i+1)*interval).
func (s *Segmented) Segments() []int64 { return slices.Clone(*s.segs.Load()) }

func lowWater(observed, retention int64) int64 {
	if observed == math.MinInt64 {
		return math.MinInt64
	}
	return observed - retention
}

// segOf returns the segment id of time t (floor division).
func (s *Segmented) segOf(t int64) int64 {
	q := t / s.interval
	if t%s.interval < 0 {
		q--
	}
	return q
}

// encodeSeg appends a segment id so that ids sort as byte strings
// (big-endian with the sign bit flipped). Times inside keys are encoded
// the same way.
func encodeSeg(dst []byte, seg int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(seg)^(1<<63))
}

func decodeSeg(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

// internal appends the internal key of an external key and returns it
// with the record's time.
func (s *Segmented) internal(dst, ext []byte) ([]byte, int64, error) {
	key, times, ok := s.layout.split(ext)
	if !ok || uint64(len(key)) > math.MaxUint32 {
		return dst, 0, fmt.Errorf("%w: %s key of %d bytes", ErrBadKey, s.layout, len(ext))
	}
	t := int64(binary.BigEndian.Uint64(times))
	seg := s.segOf(t)
	if seg == math.MaxInt64 {
		return dst, 0, fmt.Errorf("%w: time %d is out of range", ErrBadKey, t)
	}
	dst = encodeSeg(dst, seg)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(key)))
	dst = append(dst, key...)
	for i := 0; i < len(times); i += 8 {
		dst = encodeSeg(dst, int64(binary.BigEndian.Uint64(times[i:])))
	}
	return dst, t, nil
}

// keyPrefix appends the internal prefix of key's records in seg.
func keyPrefix(dst []byte, seg int64, key []byte) []byte {
	dst = encodeSeg(dst, seg)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(key)))
	return append(dst, key...)
}

// parseInternal returns the record key and the first time of an internal
// key, and appends its external key to dst.
func (l Layout) parseInternal(dst, in []byte) (ext []byte, t int64, ok bool) {
	tl := l.timesLen()
	if len(in) < 8+4+tl {
		return dst, 0, false
	}
	n := uint64(binary.BigEndian.Uint32(in[8:]))
	if uint64(len(in)) != 8+4+n+uint64(tl) {
		return dst, 0, false
	}
	key := in[12 : 12+n]
	times := in[12+n:]
	if l == SessionLayout {
		dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	}
	dst = append(dst, key...)
	for i := 0; i < tl; i += 8 {
		dst = binary.BigEndian.AppendUint64(dst, uint64(decodeSeg(times[i:])))
	}
	return dst, decodeSeg(times), true
}

// observe raises the observed time to t and drops the segments that it
// expires.
func (s *Segmented) observe(t int64) error {
	if t <= s.observed.Load() {
		return nil
	}
	s.observed.Store(t)
	return s.dropExpired()
}

// dropExpired deletes, with one range delete, the segments below the one
// that holds the low water mark: every record in them is expired.
func (s *Segmented) dropExpired() error {
	segs := *s.segs.Load()
	minLive := s.segOf(s.LowWater())
	if len(segs) == 0 || segs[0] >= minLive {
		return nil
	}
	i, _ := slices.BinarySearch(segs, minLive)
	// Readers first stop looking at the segments, then they go.
	rest := slices.Clone(segs[i:])
	s.segs.Store(&rest)
	from, to := encodeSeg(nil, segs[0]), encodeSeg(nil, minLive)
	if rd, ok := s.base.(RangeDeleter); ok {
		if err := rd.DeleteRange(from, to); err != nil {
			return fmt.Errorf("table: segmented store: drop segments: %w", err)
		}
		return nil
	}
	var keys [][]byte
	it := s.base.Range(from, to)
	for k := range it.All() {
		keys = append(keys, bytes.Clone(k))
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("table: segmented store: drop segments: %w", err)
	}
	for _, k := range keys {
		if err := s.base.Delete(k); err != nil {
			return fmt.Errorf("table: segmented store: drop segments: %w", err)
		}
	}
	return nil
}

// addSeg makes seg live.
func (s *Segmented) addSeg(seg int64) {
	segs := *s.segs.Load()
	i, found := slices.BinarySearch(segs, seg)
	if found {
		return
	}
	next := make([]int64, 0, len(segs)+1)
	next = append(append(append(next, segs[:i]...), seg), segs[i:]...)
	s.segs.Store(&next)
}

// Expire raises the observed time to now (typically the task's stream
// time) and drops the segments that hold only records older than now
// minus the retention. It costs one range delete when a segment expires
// and nothing otherwise.
func (s *Segmented) Expire(now int64) error { return s.observe(now) }

// Put implements Store. A record older than the low water mark (see
// Segmented) is dropped; a key that does not fit the layout is an
// ErrBadKey.
func (s *Segmented) Put(key, value []byte) error {
	in, t, err := s.internal(s.kbuf[:0], key)
	s.kbuf = in
	if err != nil {
		return err
	}
	seg := s.segOf(t)
	if t > s.observed.Load() {
		s.observed.Store(t)
	}
	if seg < s.segOf(s.LowWater()) {
		return nil
	}
	s.addSeg(seg)
	if err := s.base.Put(in, value); err != nil {
		return err
	}
	return s.dropExpired()
}

// Delete implements Store.
func (s *Segmented) Delete(key []byte) error {
	in, t, err := s.internal(s.kbuf[:0], key)
	s.kbuf = in
	if err != nil {
		return err
	}
	if s.segOf(t) < s.segOf(s.LowWater()) {
		return nil // its segment is gone
	}
	return s.base.Delete(in)
}

// WriteBatch implements BatchWriter: it lays records out as Put does and
// writes them to the store below in batches when it can. Records older
// than the low water mark are skipped but counted as applied.
func (s *Segmented) WriteBatch(records iter.Seq2[[]byte, []byte]) (int, error) {
	n := 0
	var ferr error
	var kbuf []byte
	translated := func(yield func(k, v []byte) bool) {
		records(func(k, v []byte) bool {
			in, t, err := s.internal(kbuf[:0], k)
			kbuf = in
			if err != nil {
				ferr = err
				return false
			}
			if v != nil && t > s.observed.Load() {
				s.observed.Store(t)
			}
			seg := s.segOf(t)
			n++
			if seg < s.segOf(s.LowWater()) {
				return true
			}
			if v != nil {
				s.addSeg(seg)
			}
			return yield(in, v)
		})
	}
	var err error
	if bw, ok := s.base.(BatchWriter); ok {
		_, err = bw.WriteBatch(translated)
	} else {
		translated(func(k, v []byte) bool {
			if v == nil {
				err = s.base.Delete(k)
			} else {
				err = s.base.Put(k, v)
			}
			return err == nil
		})
	}
	// Records early in the batch may have been expired by later ones.
	return n, errors.Join(ferr, err, s.dropExpired())
}

// Get implements ReadOnly; an expired record is not found.
func (s *Segmented) Get(key []byte) ([]byte, error) {
	in, t, err := s.internal(s.kbuf[:0], key)
	s.kbuf = in
	if err != nil || t < s.LowWater() {
		return nil, ErrNotFound
	}
	return s.base.Get(in)
}

// Flush implements Store: it records the observed time in the store below
// (so that a reopened persistent store expires as before), then flushes it.
func (s *Segmented) Flush() error {
	if obs := s.observed.Load(); obs != s.metaSaved {
		if err := s.base.Put(segMetaKey, binary.BigEndian.AppendUint64(nil, uint64(obs))); err != nil {
			return err
		}
		s.metaSaved = obs
	}
	return s.base.Flush()
}

// Close implements Store by closing the store below.
func (s *Segmented) Close() error { return s.base.Close() }

// Range implements ReadOnly; see Segmented for its cost.
func (s *Segmented) Range(from, to []byte) *Iter[[]byte, []byte] {
	return s.reader(s.base).Range(from, to)
}

// Prefix implements ReadOnly; see Segmented for its cost.
func (s *Segmented) Prefix(p []byte) *Iter[[]byte, []byte] { return s.reader(s.base).Prefix(p) }

// All implements ReadOnly; see Segmented for its cost.
func (s *Segmented) All() *Iter[[]byte, []byte] { return s.reader(s.base).All() }

// Fetch scans the live records of record key key (its bytes, without
// length prefix or times) whose time is in [from, to], both inclusive, in
// ascending time order, yielding external keys (for SessionLayout: by
// end, then start). It reads only the segments that cover [from, to].
func (s *Segmented) Fetch(key []byte, from, to int64) *Iter[[]byte, []byte] {
	return s.reader(s.base).Fetch(key, from, to)
}

// FetchAll scans the live records of every key whose time is in [from,
// to], yielding external keys segment by segment; within a segment, by
// key (length first), then time.
func (s *Segmented) FetchAll(from, to int64) *Iter[[]byte, []byte] {
	return s.reader(s.base).FetchAll(from, to)
}

// Query implements Queryable: a SegmentedView over the query view of the
// store below (or the store itself if it has none).
func (s *Segmented) Query() ReadOnly { return s.View() }

// View returns the concurrent read-only view of the store, with Fetch and
// FetchAll.
func (s *Segmented) View() *SegmentedView {
	r, ok := QueryView(s.base)
	if !ok {
		r = s.base
	}
	return s.reader(r)
}

func (s *Segmented) reader(r ReadOnly) *SegmentedView { return &SegmentedView{s: s, r: r} }

// SegmentedView reads a Segmented store through a view of the store below:
// safe for concurrent use with the owning task's writes when that view is
// (see Segmented.View). Fetch and FetchAll read the segments that are live
// when the scan starts; a segment dropped during the scan may yield
// nothing.
type SegmentedView struct {
	s *Segmented
	r ReadOnly
}

// Get implements ReadOnly.
func (v *SegmentedView) Get(key []byte) ([]byte, error) {
	in, t, err := v.s.internal(nil, key)
	if err != nil || t < v.s.LowWater() {
		return nil, ErrNotFound
	}
	return v.r.Get(in)
}

// Range implements ReadOnly; see Segmented for its cost.
func (v *SegmentedView) Range(from, to []byte) *Iter[[]byte, []byte] {
	from, to = cloneBound(from), cloneBound(to)
	return NewIter(func(yield func(k, v []byte) bool) error {
		var kvs []cachedKV
		lw := v.s.LowWater()
		it := v.r.All()
		for k, val := range it.All() {
			ext, t, ok := v.s.layout.parseInternal(nil, k)
			if !ok || t < lw || !inRange(ext, from, to) {
				continue
			}
			kvs = append(kvs, cachedKV{key: ext, value: bytes.Clone(val)})
		}
		if err := it.Err(); err != nil {
			return err
		}
		slices.SortFunc(kvs, func(a, b cachedKV) int { return bytes.Compare(a.key, b.key) })
		for _, kv := range kvs {
			if !yield(kv.key, kv.value) {
				return nil
			}
		}
		return nil
	})
}

// Prefix implements ReadOnly.
func (v *SegmentedView) Prefix(p []byte) *Iter[[]byte, []byte] {
	return v.Range(bytes.Clone(p), PrefixEnd(p))
}

// All implements ReadOnly.
func (v *SegmentedView) All() *Iter[[]byte, []byte] { return v.Range(nil, nil) }

// LowWater returns the store's low water mark (see Segmented.LowWater).
func (v *SegmentedView) LowWater() int64 { return v.s.LowWater() }

// liveSegs returns the live segments that may hold times in [from, to],
// with from raised to the low water mark.
func (v *SegmentedView) liveSegs(from, to int64) ([]int64, int64) {
	from = max(from, v.s.LowWater())
	if from > to {
		return nil, from
	}
	segs := *v.s.segs.Load()
	lo, _ := slices.BinarySearch(segs, v.s.segOf(from))
	hi, found := slices.BinarySearch(segs, v.s.segOf(to))
	if found {
		hi++
	}
	return segs[lo:hi], from
}

// Fetch is Segmented.Fetch on the view.
func (v *SegmentedView) Fetch(key []byte, from, to int64) *Iter[[]byte, []byte] {
	key = bytes.Clone(key)
	return NewIter(func(yield func(k, v []byte) bool) error {
		segs, from := v.liveSegs(from, to)
		// One key range per live segment, read through one iterator
		// when the store below can (ScanRanges).
		rs := make([]KeyRange, 0, len(segs))
		for _, seg := range segs {
			lo := encodeSeg(keyPrefix(nil, seg, key), from)
			var hi []byte
			if to == math.MaxInt64 {
				hi = PrefixEnd(keyPrefix(nil, seg, key))
			} else {
				hi = encodeSeg(keyPrefix(nil, seg, key), to+1)
			}
			if bytes.Compare(lo, hi) < 0 {
				rs = append(rs, KeyRange{lo, hi})
			}
		}
		var ext []byte
		return ScanRanges(v.r, rs, func(k, val []byte) bool {
			var ok bool
			if ext, _, ok = v.s.layout.parseInternal(ext[:0], k); !ok {
				return true
			}
			return yield(ext, val)
		})
	})
}

// FetchAll is Segmented.FetchAll on the view.
func (v *SegmentedView) FetchAll(from, to int64) *Iter[[]byte, []byte] {
	return NewIter(func(yield func(k, v []byte) bool) error {
		segs, from := v.liveSegs(from, to)
		var lo, hi, ext []byte
		for _, seg := range segs {
			lo, hi = encodeSeg(lo[:0], seg), encodeSeg(hi[:0], seg+1)
			it := v.r.Range(lo, hi)
			stopped := false
			for k, val := range it.All() {
				var t int64
				var ok bool
				if ext, t, ok = v.s.layout.parseInternal(ext[:0], k); !ok || t < from || t > to {
					continue
				}
				if !yield(ext, val) {
					stopped = true
					break
				}
			}
			if err := it.Err(); err != nil || stopped {
				return err
			}
		}
		return nil
	})
}
