package log

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/sluicehq/sluice/broker/internal/records"
	"github.com/sluicehq/sluice/broker/internal/vfs"
)

const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	indexEntrySize  = 8
	timeEntrySize   = 12
)

// offsetEntry is one sparse offset index entry: the batch at byte pos starts
// at offset base+rel.
type offsetEntry struct{ rel, pos uint32 }

// timeEntry is one time index entry: every record before offset base+rel
// has a timestamp below ts.
type timeEntry struct {
	ts  int64
	rel uint32
}

// segment is one .log file with its in-memory indexes.
//
// Fields under "guarded by Log.mu" are written only by the appender (who
// holds Log.appendMu) with Log.mu held for writing, and read by others with
// Log.mu held for reading; the appender itself may read them without mu.
type segment struct {
	base int64
	path string // the .log file
	f    vfs.File
	fs   vfs.FS

	// refs counts the log's own reference plus reads under way; the file
	// is closed when it drops to zero.
	refs atomic.Int32
	// synced is how many bytes of the file are known fsynced.
	synced atomic.Int64

	// guarded by Log.mu
	size        int64
	next        int64 // offset after the last batch; base when empty
	idx         []offsetEntry
	tidx        []timeEntry
	maxTs       int64 // largest batch MaxTimestamp; -1 when empty
	maxTsOffset int64 // base offset of the first batch reaching maxTs
	firstTs     int64 // MaxTimestamp of the first batch; -1 when empty
	createdMs   int64 // when the segment was created or opened

	// appender only
	sinceIndex int // bytes appended since the last index entry
}

func segmentName(dir string, base int64, suffix string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, suffix))
}

// parseSegmentName returns the base offset of a "%020d.log" name.
func parseSegmentName(name, suffix string) (int64, bool) {
	s, ok := strings.CutSuffix(name, suffix)
	if !ok || len(s) != 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0
}

func newSegment(fs vfs.FS, dir string, base int64, f vfs.File, nowMs int64) *segment {
	s := &segment{base: base, path: segmentName(dir, base, logSuffix), f: f, fs: fs,
		next: base, maxTs: -1, maxTsOffset: -1, firstTs: -1, createdMs: nowMs}
	s.refs.Store(1)
	return s
}

func (s *segment) acquire() { s.refs.Add(1) }

// release drops a reference, closing the file with the last one.
func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		s.f.Close()
	}
}

// track records a batch of size n at pos in the in-memory state, adding
// index entries as Append would. The caller holds Log.mu for writing (or
// owns s exclusively).
func (s *segment) track(h *records.BatchHeader, pos int64, n int, interval int) {
	if s.size > 0 && s.sinceIndex >= interval {
		s.idx = append(s.idx, offsetEntry{rel: uint32(h.BaseOffset - s.base), pos: uint32(pos)})
	}
	if h.MaxTimestamp > s.maxTs {
		s.maxTs, s.maxTsOffset = h.MaxTimestamp, h.BaseOffset
	}
	if s.size > 0 && s.sinceIndex >= interval {
		s.maybeAppendTimeEntry()
		s.sinceIndex = 0
	}
	if s.firstTs < 0 && s.size == 0 {
		s.firstTs = h.MaxTimestamp
	}
	s.sinceIndex += n
	s.size = pos + int64(n)
	s.next = h.LastOffset() + 1
}

// maybeAppendTimeEntry adds (maxTs, maxTsOffset) to the time index if it is
// newer than the last entry.
func (s *segment) maybeAppendTimeEntry() {
	if s.maxTs < 0 || (len(s.tidx) > 0 && s.tidx[len(s.tidx)-1].ts >= s.maxTs) {
		return
	}
	s.tidx = append(s.tidx, timeEntry{ts: s.maxTs, rel: uint32(s.maxTsOffset - s.base)})
}

// lookup returns the position of a batch at or before the one holding
// offset: the largest index entry not past it.
func (s *segment) lookup(offset int64) int64 {
	if offset <= s.base {
		return 0
	}
	rel := offset - s.base
	i := sort.Search(len(s.idx), func(i int) bool { return int64(s.idx[i].rel) > rel })
	if i == 0 {
		return 0
	}
	return int64(s.idx[i-1].pos)
}

// lookupTime returns an offset at or before the first record with a
// timestamp >= ts: the offset of the last time entry whose ts is lower.
func (s *segment) lookupTime(ts int64) int64 {
	i := sort.Search(len(s.tidx), func(i int) bool { return s.tidx[i].ts >= ts })
	if i == 0 {
		return s.base
	}
	return s.base + int64(s.tidx[i-1].rel)
}

// encodeIndexes returns the index files' contents.
func (s *segment) encodeIndexes() (idx, tidx []byte) {
	idx = make([]byte, 0, len(s.idx)*indexEntrySize)
	for _, e := range s.idx {
		idx = binary.BigEndian.AppendUint32(idx, e.rel)
		idx = binary.BigEndian.AppendUint32(idx, e.pos)
	}
	tidx = make([]byte, 0, len(s.tidx)*timeEntrySize)
	for _, e := range s.tidx {
		tidx = binary.BigEndian.AppendUint64(tidx, uint64(e.ts))
		tidx = binary.BigEndian.AppendUint32(tidx, e.rel)
	}
	return idx, tidx
}

// writeIndexes writes both index files whole. They are not fsynced: open
// checks them and rebuilds what does not check out.
func (s *segment) writeIndexes(dir string) error {
	idx, tidx := s.encodeIndexes()
	if err := writeFile(s.fs, segmentName(dir, s.base, indexSuffix), idx); err != nil {
		return err
	}
	return writeFile(s.fs, segmentName(dir, s.base, timeIndexSuffix), tidx)
}

func writeFile(fs vfs.FS, name string, b []byte) error {
	f, err := fs.Create(name)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func readFile(fs vfs.FS, name string, limit int64) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("broker/log: %s is %d bytes, more than %d", name, st.Size(), limit)
	}
	b := make([]byte, st.Size())
	n, err := f.ReadAt(b, 0)
	if err == io.EOF && n == len(b) {
		err = nil
	}
	return b[:n], err
}

// scanResult is what a recovery scan of a segment file found.
type scanResult struct {
	valid  int64  // bytes of whole, valid batches from the start
	reason string // why the scan stopped before the end, if it did
}

// recover rebuilds s's in-memory state from its file, verifying every
// batch's length and CRC, and reports where the valid prefix ends. fileSize
// is the file's current size. It reads the file in chunks through buf,
// which it may grow.
func (s *segment) recover(fileSize int64, interval int, buf []byte) (scanResult, []byte, error) {
	s.size, s.next, s.idx, s.tidx = 0, s.base, s.idx[:0], s.tidx[:0]
	s.maxTs, s.maxTsOffset, s.firstTs, s.sinceIndex = -1, -1, -1, 0
	var pos int64
	var chunk []byte // buf[:n] holding file bytes from chunkPos
	var chunkPos int64
	fail := func(format string, a ...any) (scanResult, []byte, error) {
		return scanResult{valid: pos, reason: fmt.Sprintf(format, a...)}, buf, nil
	}
	for pos < fileSize {
		if fileSize-pos < records.HeaderSize {
			return fail("torn batch header: %d bytes at the end", fileSize-pos)
		}
		// Make sure the header is in the chunk.
		if pos < chunkPos || pos+records.HeaderSize > chunkPos+int64(len(chunk)) {
			n := min(int64(cap(buf)), fileSize-pos)
			buf = buf[:n]
			if _, err := s.f.ReadAt(buf, pos); err != nil && err != io.EOF {
				return scanResult{valid: pos}, buf, err
			}
			chunk, chunkPos = buf, pos
		}
		h, err := records.ParseHeader(chunk[pos-chunkPos:])
		if err != nil {
			return fail("%v", err)
		}
		total := int64(h.TotalSize())
		if total > fileSize-pos {
			return fail("torn batch: length %d with %d bytes left", total, fileSize-pos)
		}
		if pos+total > chunkPos+int64(len(chunk)) {
			if int64(cap(buf)) < total {
				buf = make([]byte, total)
			}
			buf = buf[:total]
			if _, err := s.f.ReadAt(buf, pos); err != nil && err != io.EOF {
				return scanResult{valid: pos}, buf, err
			}
			chunk, chunkPos = buf, pos
		}
		b := chunk[pos-chunkPos : pos-chunkPos+total]
		if _, err := records.CheckCRC(b); err != nil {
			return fail("%v", err)
		}
		if reason := s.checkNext(&h, pos, total); reason != "" {
			return fail("%s", reason)
		}
		s.track(&h, pos, int(total), interval)
		pos += total
	}
	return scanResult{valid: pos}, buf, nil
}

// checkNext returns why a batch with header h cannot follow the segment's
// current state at pos, or "".
func (s *segment) checkNext(h *records.BatchHeader, pos, total int64) string {
	switch {
	case h.LastOffsetDelta < 0 || h.NumRecords < 0:
		return fmt.Sprintf("negative last offset delta %d or record count %d", h.LastOffsetDelta, h.NumRecords)
	case h.BaseOffset < s.next:
		return fmt.Sprintf("base offset %d below the expected %d", h.BaseOffset, s.next)
	case h.BaseOffset > math.MaxInt64-int64(h.LastOffsetDelta)-1,
		h.LastOffset()-s.base > math.MaxUint32:
		return fmt.Sprintf("offset %d out of the segment's range", h.BaseOffset)
	case pos+total > maxSegmentBytes:
		return "segment larger than 2 GiB"
	}
	return ""
}

// loadIndexes tries to restore s's in-memory state of a closed segment from
// its index files, checking them against the file. It returns false when
// they do not check out, and the segment must be recovered instead.
func (s *segment) loadIndexes(dir string, fileSize int64, interval int) bool {
	if fileSize == 0 || fileSize > maxSegmentBytes {
		return false
	}
	ib, err := readFile(s.fs, segmentName(dir, s.base, indexSuffix), fileSize)
	if err != nil || len(ib)%indexEntrySize != 0 {
		return false
	}
	tb, err := readFile(s.fs, segmentName(dir, s.base, timeIndexSuffix), fileSize*2)
	if err != nil || len(tb)%timeEntrySize != 0 {
		return false
	}
	s.idx = make([]offsetEntry, 0, len(ib)/indexEntrySize)
	for i := 0; i < len(ib); i += indexEntrySize {
		e := offsetEntry{rel: binary.BigEndian.Uint32(ib[i:]), pos: binary.BigEndian.Uint32(ib[i+4:])}
		if int64(e.pos) >= fileSize || e.pos < records.HeaderSize || e.rel == 0 {
			return false
		}
		if n := len(s.idx); n > 0 && (e.rel <= s.idx[n-1].rel || e.pos <= s.idx[n-1].pos) {
			return false
		}
		s.idx = append(s.idx, e)
	}
	s.tidx = make([]timeEntry, 0, len(tb)/timeEntrySize)
	for i := 0; i < len(tb); i += timeEntrySize {
		e := timeEntry{ts: int64(binary.BigEndian.Uint64(tb[i:])), rel: binary.BigEndian.Uint32(tb[i+8:])}
		if n := len(s.tidx); e.ts < 0 || (n > 0 && (e.ts <= s.tidx[n-1].ts || e.rel < s.tidx[n-1].rel)) {
			return false
		}
		s.tidx = append(s.tidx, e)
	}
	// Walk the batch headers from the last offset index entry to the end:
	// they must chain exactly to the end of the file.
	var hdr [records.HeaderSize]byte
	first, ok := s.readHeader(hdr[:], 0)
	if !ok || first.BaseOffset < s.base {
		return false
	}
	s.firstTs = first.MaxTimestamp
	pos, want := int64(0), s.base
	s.maxTs, s.maxTsOffset = -1, -1
	if n := len(s.tidx); n > 0 {
		s.maxTs, s.maxTsOffset = s.tidx[n-1].ts, s.base+int64(s.tidx[n-1].rel)
	}
	if n := len(s.idx); n > 0 {
		pos, want = int64(s.idx[n-1].pos), s.base+int64(s.idx[n-1].rel)
	}
	for atEntry := len(s.idx) > 0; pos < fileSize; atEntry = false {
		h, ok := s.readHeader(hdr[:], pos)
		if !ok || h.TotalSize() > int(fileSize-pos) || h.LastOffsetDelta < 0 {
			return false
		}
		if atEntry && h.BaseOffset != want {
			return false
		}
		if h.BaseOffset < want || h.LastOffset()-s.base > math.MaxUint32 {
			return false
		}
		if h.MaxTimestamp > s.maxTs {
			s.maxTs, s.maxTsOffset = h.MaxTimestamp, h.BaseOffset
		}
		want = h.LastOffset() + 1
		pos += int64(h.TotalSize())
	}
	if n := len(s.tidx); n > 0 && s.base+int64(s.tidx[n-1].rel) >= want {
		return false
	}
	s.size, s.next = fileSize, want
	s.synced.Store(fileSize)
	return true
}

// readHeader reads and parses the batch header at pos.
func (s *segment) readHeader(buf []byte, pos int64) (records.BatchHeader, bool) {
	if _, err := s.f.ReadAt(buf[:records.HeaderSize], pos); err != nil {
		return records.BatchHeader{}, false
	}
	h, err := records.ParseHeader(buf)
	return h, err == nil && h.Magic == 2
}
