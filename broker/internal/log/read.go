package log

import (
	"fmt"
	"slices"
	"sync"

	"github.com/sluicehq/sluice/broker/internal/records"
)

// readCache remembers where recent reads ended, so that a sequential
// consumer's next Read starts at the right position without an index lookup
// and header scan.
type readCache struct {
	mu      sync.Mutex
	entries [8]cacheEntry
	next    int
}

type cacheEntry struct {
	seg    *segment
	offset int64
	pos    int64
}

func (c *readCache) get(s *segment, offset int64) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.entries {
		if e := &c.entries[i]; e.seg == s && e.offset == offset {
			return e.pos, true
		}
	}
	return 0, false
}

func (c *readCache) put(s *segment, offset, pos int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.entries {
		if e := &c.entries[i]; e.seg == s && e.offset <= offset {
			// The same consumer moving forward: replace its entry.
			*e = cacheEntry{s, offset, pos}
			return
		}
	}
	c.entries[c.next] = cacheEntry{s, offset, pos}
	c.next = (c.next + 1) % len(c.entries)
}

// Read appends to dst whole batches, exactly as stored, starting with the
// batch that holds offset and continuing in order, without exceeding
// maxBytes appended bytes; with minOneBatch the first batch is appended
// even if it is larger. Only batches whose base offset is below upTo (the
// high watermark or last stable offset) are returned. Reading at the end
// offset returns dst unchanged; below the start offset or past the end
// offset returns ErrOffsetOutOfRange. Batches come from one segment per
// call; the next call continues with the next segment.
//
// Read does not allocate when dst has room for the result.
func (l *Log) Read(dst []byte, offset int64, maxBytes int, upTo int64, minOneBatch bool) ([]byte, error) {
	l.mu.RLock()
	if l.mu.closed {
		l.mu.RUnlock()
		return dst, ErrClosed
	}
	end := l.endLocked()
	if offset == end {
		l.mu.RUnlock()
		return dst, nil
	}
	if offset < l.mu.start || offset > end {
		start := l.mu.start
		l.mu.RUnlock()
		return dst, fmt.Errorf("%w: offset %d, log has [%d, %d)", ErrOffsetOutOfRange, offset, start, end)
	}
	s := l.mu.segs[l.findLocked(offset)]
	limit := s.size
	pos, ok := l.cache.get(s, offset)
	if !ok {
		pos = s.lookup(offset)
	}
	s.acquire()
	l.mu.RUnlock()
	defer s.release()
	return l.readSegment(dst, s, pos, limit, offset, maxBytes, upTo, minOneBatch)
}

// readSegment reads from s starting at pos (a batch start at or before the
// batch holding offset) up to limit.
func (l *Log) readSegment(dst []byte, s *segment, pos, limit, offset int64, maxBytes int, upTo int64, minOneBatch bool) ([]byte, error) {
	start := len(dst)
	for pos < limit {
		// Read a chunk straight into dst: usually it starts with the
		// wanted batch and holds all that will be returned.
		want := min(int64(max(maxBytes, records.HeaderSize)), limit-pos)
		dst = slices.Grow(dst[:start], int(want))
		chunk := dst[start : start+int(want)]
		if err := readFull(s, chunk, pos); err != nil {
			return dst[:start], err
		}
		var off int // position in chunk
		for off+records.HeaderSize <= len(chunk) {
			h, err := records.ParseHeader(chunk[off:])
			if err != nil || h.TotalSize() > int(limit-pos-int64(off)) {
				return dst[:start], &CorruptionError{Segment: s.path, Pos: pos + int64(off), Reason: "bad batch header"}
			}
			if h.LastOffset() < offset {
				off += h.TotalSize()
				continue
			}
			// Found the first batch to return.
			if h.BaseOffset >= upTo {
				return dst[:start], nil
			}
			if off > 0 {
				copy(chunk, chunk[off:])
				chunk = chunk[:len(chunk)-off]
				pos += int64(off)
				off = 0
			}
			total := h.TotalSize()
			if total > maxBytes && !minOneBatch {
				return dst[:start], nil
			}
			if total > len(chunk) {
				if total > maxBytes {
					// Just this batch, read whole.
					dst = slices.Grow(dst[:start], total)
					if err := readFull(s, dst[start:start+total], pos); err != nil {
						return dst[:start], err
					}
					l.cache.put(s, h.LastOffset()+1, pos+int64(total))
					return dst[:start+total], nil
				}
				// It fits in maxBytes but the chunk was cut short by
				// skipping: read again from its start.
				break
			}
			// Take every whole batch below upTo that fits.
			n, last := 0, h.LastOffset()
			for n+records.HeaderSize <= len(chunk) {
				h, err := records.ParseHeader(chunk[n:])
				if err != nil {
					return dst[:start], &CorruptionError{Segment: s.path, Pos: pos + int64(n), Reason: "bad batch header"}
				}
				if n+h.TotalSize() > len(chunk) || h.BaseOffset >= upTo || (n > 0 && n+h.TotalSize() > maxBytes) {
					break
				}
				n += h.TotalSize()
				last = h.LastOffset()
			}
			l.cache.put(s, last+1, pos+int64(n))
			return dst[:start+n], nil
		}
		pos += int64(off)
	}
	return dst[:start], nil
}

// headerScanner reads batch headers of one segment in order through a
// reusable buffer.
type headerScanner struct {
	buf      []byte
	chunk    []byte
	chunkPos int64
}

// header returns the batch header at pos of s (whose committed size is
// limit).
func (hs *headerScanner) header(s *segment, pos, limit int64) (records.BatchHeader, error) {
	if pos < hs.chunkPos || pos+records.HeaderSize > hs.chunkPos+int64(len(hs.chunk)) {
		if hs.buf == nil {
			hs.buf = make([]byte, 64<<10)
		}
		n := min(int64(len(hs.buf)), limit-pos)
		if n < records.HeaderSize {
			return records.BatchHeader{}, &CorruptionError{Segment: s.path, Pos: pos, Reason: "torn batch header"}
		}
		if err := readFull(s, hs.buf[:n], pos); err != nil {
			return records.BatchHeader{}, err
		}
		hs.chunk, hs.chunkPos = hs.buf[:n], pos
	}
	h, err := records.ParseHeader(hs.chunk[pos-hs.chunkPos:])
	if err != nil || int64(h.TotalSize()) > limit-pos {
		return h, &CorruptionError{Segment: s.path, Pos: pos, Reason: "bad batch header"}
	}
	return h, nil
}

// snapshot returns the segments from the one holding offset on, acquired,
// with their committed sizes. The caller releases them.
func (l *Log) snapshot(offset int64) ([]*segment, []int64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.closed {
		return nil, nil, ErrClosed
	}
	segs := slices.Clone(l.mu.segs[l.findLocked(offset):])
	sizes := make([]int64, len(segs))
	for i, s := range segs {
		s.acquire()
		sizes[i] = s.size
	}
	return segs, sizes, nil
}

func releaseAll(segs []*segment) {
	for _, s := range segs {
		s.release()
	}
}

// ScanBatches calls fn with the header of every batch holding offsets at or
// past from, in offset order, until fn returns false. It sees the batches
// appended before it was called. It is used to rebuild producer state at
// startup.
func (l *Log) ScanBatches(from int64, fn func(h records.BatchHeader) bool) error {
	segs, sizes, err := l.snapshot(from)
	if err != nil {
		return err
	}
	defer releaseAll(segs)
	var hs headerScanner
	for i, s := range segs {
		hs.chunk = nil
		l.mu.RLock()
		pos := s.lookup(from)
		l.mu.RUnlock()
		for pos < sizes[i] {
			h, err := hs.header(s, pos, sizes[i])
			if err != nil {
				return err
			}
			pos += int64(h.TotalSize())
			if h.LastOffset() < from {
				continue
			}
			if !fn(h) {
				return nil
			}
		}
	}
	return nil
}

// OffsetForTime returns the first offset at or past the log start offset
// whose record timestamp is >= ts, and that record's timestamp (ListOffsets
// by timestamp). ok is false when no record is that recent.
func (l *Log) OffsetForTime(ts int64) (offset, timestamp int64, ok bool, err error) {
	startOff := l.StartOffset()
	segs, sizes, err := l.snapshot(startOff)
	if err != nil {
		return -1, -1, false, err
	}
	defer releaseAll(segs)
	var hs headerScanner
	var batch []byte
	var d records.Decompressor
	cfg := l.cfg.Load()
	for i, s := range segs {
		l.mu.RLock()
		if s.maxTs < ts {
			l.mu.RUnlock()
			continue
		}
		from := max(s.lookupTime(ts), startOff)
		pos := s.lookup(from)
		l.mu.RUnlock()
		hs.chunk = nil
		for pos < sizes[i] {
			h, err := hs.header(s, pos, sizes[i])
			if err != nil {
				return -1, -1, false, err
			}
			bpos := pos
			pos += int64(h.TotalSize())
			if h.LastOffset() < from || h.MaxTimestamp < ts {
				continue
			}
			if h.LogAppendTime() {
				return max(h.BaseOffset, from), h.MaxTimestamp, true, nil
			}
			batch = slices.Grow(batch[:0], h.TotalSize())[:h.TotalSize()]
			if err := readFull(s, batch, bpos); err != nil {
				return -1, -1, false, err
			}
			found := false
			err = records.Records(batch, &d, cfg.decompressBound(), func(r records.Record) bool {
				o, t := h.BaseOffset+int64(r.OffsetDelta), h.FirstTimestamp+r.TimestampDelta
				if o >= from && t >= ts {
					offset, timestamp, found = o, t, true
					return false
				}
				return true
			})
			if err != nil {
				return -1, -1, false, fmt.Errorf("broker/log: reading %s at %d: %w", s.path, bpos, err)
			}
			if found {
				return offset, timestamp, true, nil
			}
		}
	}
	return -1, -1, false, nil
}

// MaxTimestamp returns the offset and timestamp of the first record with
// the largest timestamp in the log (ListOffsets MAX_TIMESTAMP, KIP-734), or
// (-1, -1) when the log is empty.
func (l *Log) MaxTimestamp() (offset, timestamp int64) {
	l.mu.RLock()
	if l.mu.closed || l.mu.start == l.endLocked() {
		l.mu.RUnlock()
		return -1, -1
	}
	var best *segment
	for _, s := range l.mu.segs {
		if s.size > 0 && (best == nil || s.maxTs > best.maxTs) {
			best = s
		}
	}
	if best == nil {
		l.mu.RUnlock()
		return -1, -1
	}
	ts, batchOff, size := best.maxTs, best.maxTsOffset, best.size
	pos := best.lookup(batchOff)
	best.acquire()
	l.mu.RUnlock()
	defer best.release()

	// Find the batch, then the first record carrying the timestamp.
	var hs headerScanner
	for pos < size {
		h, err := hs.header(best, pos, size)
		if err != nil {
			break
		}
		if h.BaseOffset != batchOff {
			pos += int64(h.TotalSize())
			continue
		}
		if h.LogAppendTime() {
			return h.BaseOffset, ts
		}
		batch := make([]byte, h.TotalSize())
		if readFull(best, batch, pos) != nil {
			break
		}
		offset = h.LastOffset()
		records.Records(batch, nil, l.cfg.Load().decompressBound(), func(r records.Record) bool {
			if h.FirstTimestamp+r.TimestampDelta == ts {
				offset = h.BaseOffset + int64(r.OffsetDelta)
				return false
			}
			return true
		})
		return offset, ts
	}
	return batchOff, ts
}
