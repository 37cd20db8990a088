package log

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/broker/internal/records"
	"github.com/sluicehq/sluice/broker/internal/vfs"
)

// Log is one partition's log. See the package doc for the format and the
// concurrency contract.
type Log struct {
	dir    string
	fs     vfs.FS
	logger *slog.Logger
	now    func() time.Time
	cfg    atomic.Pointer[Config]

	// adminMu serialises DeleteRecords, EnforceRetention and checkpoint
	// writes. Lock order: adminMu, appendMu, mu; syncer.mu and cache.mu
	// are leaves.
	adminMu sync.Mutex
	// appendMu serialises Append, rolls and Close.
	appendMu sync.Mutex
	// cleanMu serialises Clean passes; it comes before adminMu.
	cleanMu sync.Mutex
	// closing is set by Close so that a running Clean stops early.
	closing atomic.Bool

	mu struct {
		sync.RWMutex
		closed bool
		segs   []*segment // ascending base offsets; the last is active
		start  int64      // log start offset
		size   int64      // total bytes of all segments
		// firstDirty is the cleaner checkpoint: where the part of the
		// log not yet compacted against starts (see clean.go).
		firstDirty int64
		// tombstoneHorizon is the earliest delete horizon of the
		// tombstones and transaction markers the last clean pass kept
		// (math.MaxInt64: none known; after a restart they wait for the
		// next pass with dirty data).
		tombstoneHorizon int64
	}

	syncer struct {
		sync.Mutex
		cond    sync.Cond
		running bool
		err     error // sticky ErrSyncFailed
	}
	synced   atomic.Int64 // offsets below are fsynced
	dirDirty atomic.Bool  // a segment file was created since the last dir fsync

	// checkpointed is the start offset last written to the checkpoint
	// file (guarded by adminMu).
	checkpointed int64

	cache readCache
}

// AppendResult describes an appended batch.
type AppendResult struct {
	BaseOffset, LastOffset int64
	// LogAppendTime is the timestamp the log gave the batch, or -1 when the
	// topic uses CreateTime.
	LogAppendTime int64
	// LogStartOffset is the log start offset after the append.
	LogStartOffset int64
}

// Open opens the log in opts.Dir, creating the directory and an empty first
// segment if needed, and recovers it: leftovers are removed, indexes are
// checked or rebuilt, and the last segment is verified and cut at the first
// torn or corrupt batch. Open never panics on file contents; it returns an
// error only for I/O failures.
func Open(opts Options) (*Log, error) {
	l := &Log{dir: opts.Dir, fs: opts.FS, logger: opts.Logger, now: opts.Now}
	l.mu.tombstoneHorizon = math.MaxInt64
	if l.fs == nil {
		l.fs = vfs.Default
	}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	cfg := opts.Config.withDefaults()
	l.cfg.Store(&cfg)
	l.syncer.cond.L = &l.syncer.Mutex
	if err := l.fs.MkdirAll(l.dir, 0o755); err != nil {
		return nil, fmt.Errorf("broker/log: %w", err)
	}
	if err := l.load(&cfg); err != nil {
		for _, s := range l.mu.segs {
			s.release()
		}
		return nil, err
	}
	return l, nil
}

// load lists the directory and opens every segment.
func (l *Log) load(cfg *Config) error {
	entries, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("broker/log: %w", err)
	}
	var swaps []string
	for _, e := range entries {
		if name := e.Name(); !e.IsDir() && strings.HasSuffix(name, logSuffix+swapSuffix) {
			swaps = append(swaps, name)
		}
	}
	if len(swaps) > 0 {
		if err := l.completeSwaps(swaps, cfg.IndexIntervalBytes); err != nil {
			return err
		}
		if entries, err = l.fs.ReadDir(l.dir); err != nil {
			return fmt.Errorf("broker/log: %w", err)
		}
	}
	var bases []int64
	indexFiles := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		switch {
		case e.IsDir():
		case strings.HasSuffix(name, ".tmp"), strings.HasSuffix(name, ".deleted"),
			strings.HasSuffix(name, ".cleaned"), strings.HasSuffix(name, ".swap"):
			l.logger.Warn("broker/log: removing leftover file", "dir", l.dir, "file", name)
			if err := l.fs.Remove(l.path(name)); err != nil {
				return fmt.Errorf("broker/log: %w", err)
			}
		case strings.HasSuffix(name, logSuffix):
			if b, ok := parseSegmentName(name, logSuffix); ok {
				bases = append(bases, b)
			}
		case strings.HasSuffix(name, indexSuffix), strings.HasSuffix(name, timeIndexSuffix):
			indexFiles[name] = true
		}
	}
	slices.Sort(bases)
	// Index files without a segment are leftovers.
	for name := range indexFiles {
		b, ok := parseSegmentName(name, timeIndexSuffix)
		if !ok {
			b, ok = parseSegmentName(name, indexSuffix)
		}
		if ok && !slices.Contains(bases, b) {
			l.fs.Remove(l.path(name))
		}
	}

	nowMs := l.now().UnixMilli()
	var buf []byte
	for i, base := range bases {
		last := i == len(bases)-1
		s, err := l.openSegment(base, nowMs)
		if err != nil {
			return err
		}
		st, err := s.f.Stat()
		if err != nil {
			s.release()
			return fmt.Errorf("broker/log: %w", err)
		}
		size := st.Size()
		if size == 0 && !last {
			// An empty closed segment holds nothing; drop it.
			s.release()
			l.removeSegmentFiles(base)
			continue
		}
		if !last && s.loadIndexes(l.dir, size, cfg.IndexIntervalBytes) {
			if n := len(l.mu.segs); n > 0 && s.base < l.mu.segs[n-1].next {
				l.logger.Warn("broker/log: segment overlaps its predecessor", "dir", l.dir, "segment", s.path)
			}
			l.mu.segs = append(l.mu.segs, s)
			continue
		}
		if buf == nil {
			buf = make([]byte, 1<<20)
		}
		var res scanResult
		res, buf, err = s.recover(size, cfg.IndexIntervalBytes, buf[:cap(buf)])
		if err != nil {
			s.release()
			return fmt.Errorf("broker/log: recovering %s: %w", s.path, err)
		}
		if res.valid < size {
			l.logger.Warn("broker/log: truncating damaged segment tail",
				"dir", l.dir, "segment", s.path, "position", res.valid,
				"bytes_lost", size-res.valid, "first_lost_offset", s.next, "reason", res.reason)
			if err := s.f.Truncate(res.valid); err != nil {
				s.release()
				return fmt.Errorf("broker/log: truncating %s: %w", s.path, err)
			}
		}
		if res.valid == 0 && !last {
			s.release()
			l.removeSegmentFiles(base)
			continue
		}
		if !last {
			if err := s.writeIndexes(l.dir); err != nil {
				s.release()
				return fmt.Errorf("broker/log: %w", err)
			}
		}
		l.mu.segs = append(l.mu.segs, s)
	}
	if len(l.mu.segs) == 0 {
		s, err := l.createSegment(0, nowMs)
		if err != nil {
			return err
		}
		l.mu.segs = append(l.mu.segs, s)
	}
	for _, s := range l.mu.segs {
		l.mu.size += s.size
	}
	// Whatever the previous process wrote may still be only in the page
	// cache: make the recovered state durable before reporting it synced.
	// Fsyncing clean files is cheap.
	for _, s := range l.mu.segs {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("broker/log: %w", err)
		}
		s.synced.Store(s.size)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("broker/log: %w", err)
	}
	l.dirDirty.Store(false)
	active := l.mu.segs[len(l.mu.segs)-1]
	l.mu.start = l.mu.segs[0].base
	if ck, ok := l.readCheckpoint(); ok {
		l.checkpointed = ck
		l.mu.start = max(l.mu.start, ck)
	}
	if ck, ok := l.readOffsetFile(cleanerCheckpointName); ok {
		l.mu.firstDirty = ck
	}
	if end := active.next; l.mu.start > end {
		l.logger.Warn("broker/log: log start offset past the end; clamping", "dir", l.dir,
			"start", l.mu.start, "end", end)
		l.mu.start = end
	}
	l.synced.Store(active.next)
	return nil
}

func (l *Log) path(name string) string { return l.dir + string(os.PathSeparator) + name }

func (l *Log) openSegment(base, nowMs int64) (*segment, error) {
	name := segmentName(l.dir, base, logSuffix)
	f, err := l.fs.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("broker/log: %w", err)
	}
	return newSegment(l.fs, l.dir, base, f, nowMs), nil
}

func (l *Log) createSegment(base, nowMs int64) (*segment, error) {
	name := segmentName(l.dir, base, logSuffix)
	f, err := l.fs.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("broker/log: %w", err)
	}
	// Stale index files of an earlier segment with this base must go.
	l.fs.Remove(segmentName(l.dir, base, indexSuffix))
	l.fs.Remove(segmentName(l.dir, base, timeIndexSuffix))
	l.dirDirty.Store(true)
	return newSegment(l.fs, l.dir, base, f, nowMs), nil
}

func (l *Log) removeSegmentFiles(base int64) error {
	var errs []error
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		if err := l.fs.Remove(segmentName(l.dir, base, suf)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	l.dirDirty.Store(true)
	return errors.Join(errs...)
}

// SetConfig changes the config; it applies to the next Append and
// EnforceRetention.
func (l *Log) SetConfig(c Config) {
	c = c.withDefaults()
	l.cfg.Store(&c)
}

// Config returns the config in use.
func (l *Log) Config() Config { return *l.cfg.Load() }

// Append validates batch (exactly one record batch, as received in a
// Produce request), assigns it the next offsets, stamps it when the topic
// uses LogAppendTime, and writes it to the active segment with one write.
// batch is rewritten in place and not retained. When Append returns nil the
// batch is in the file (not necessarily fsynced; see Sync). A write failure
// leaves the log as it was and may be retried (IsRetriable).
func (l *Log) Append(batch []byte) (AppendResult, error) {
	cfg := l.cfg.Load()
	if len(batch) > cfg.MaxMessageBytes {
		return AppendResult{}, fmt.Errorf("%w: %d bytes, max.message.bytes is %d", ErrRecordTooLarge, len(batch), cfg.MaxMessageBytes)
	}
	if int64(len(batch)) > cfg.SegmentBytes {
		return AppendResult{}, fmt.Errorf("%w: %d bytes, segment.bytes is %d", ErrRecordTooLarge, len(batch), cfg.SegmentBytes)
	}
	h, err := records.Validate(batch, cfg.decompressBound())
	if err != nil {
		return AppendResult{}, err
	}
	if cfg.Compact && !h.IsControl() {
		if err := checkKeys(batch, cfg.decompressBound()); err != nil {
			return AppendResult{}, err
		}
	}
	n := int64(len(batch))

	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.mu.closed {
		return AppendResult{}, ErrClosed
	}
	nowMs := l.now().UnixMilli()
	res := AppendResult{LogAppendTime: -1}
	if cfg.LogAppendTime {
		records.SetLogAppendTime(batch, nowMs)
		h.MaxTimestamp, h.FirstTimestamp = nowMs, nowMs
		h.Attributes |= 0x08
		res.LogAppendTime = nowMs
	}
	s := l.mu.segs[len(l.mu.segs)-1]
	base := s.next
	if s.size > 0 && (s.size+n > cfg.SegmentBytes ||
		s.waitedMs(h.MaxTimestamp, nowMs) > cfg.rollMs() ||
		base+int64(h.LastOffsetDelta)-s.base > maxRelOffset) {
		if s, err = l.rollLocked(nowMs); err != nil {
			return AppendResult{}, err
		}
	}
	records.SetBaseOffset(batch, base)
	h.BaseOffset = base
	pos := s.size
	if w, err := s.f.WriteAt(batch, pos); err != nil {
		// Undo the partial write; reads never see past s.size, and the
		// next append writes at pos again, so even a failed truncate
		// leaves the log consistent (recovery cuts the garbage tail).
		if w > 0 {
			if terr := s.f.Truncate(pos); terr != nil {
				err = errors.Join(err, terr)
			}
		}
		return AppendResult{}, fmt.Errorf("broker/log: appending to %s: %w", s.path, err)
	}
	interval := cfg.IndexIntervalBytes
	l.mu.Lock()
	s.track(&h, pos, int(n), interval)
	l.mu.size += n
	res.LogStartOffset = l.mu.start
	l.mu.Unlock()
	res.BaseOffset, res.LastOffset = base, h.LastOffset()
	return res, nil
}

const maxRelOffset = 1<<32 - 1

// checkKeys rejects a batch for a compacted topic holding a record with a
// null key, as Kafka does (INVALID_RECORD): the cleaner could never
// compact it. It walks the records a second time after Validate; compacted
// topics are rarely hot enough for that to matter.
func checkKeys(batch []byte, bound int) error {
	bad := -1
	i := 0
	err := records.Records(batch, nil, bound, func(r records.Record) bool {
		if r.KeyNull {
			bad = i
			return false
		}
		i++
		return true
	})
	if err != nil {
		return err
	}
	if bad >= 0 {
		return fmt.Errorf("%w: record %d has a null key, which a compacted topic (cleanup.policy=compact) does not accept", ErrInvalidRecord, bad)
	}
	return nil
}

// waitedMs is how old the segment is for segment.ms, like Kafka: the
// incoming batch's timestamp minus the first batch's, or the time since the
// segment was created when it has no usable timestamp.
func (s *segment) waitedMs(incomingTs, nowMs int64) int64 {
	if s.firstTs >= 0 {
		return incomingTs - s.firstTs
	}
	return nowMs - s.createdMs
}

// rollLocked closes the active segment and starts a new one at the end
// offset. The caller holds appendMu.
func (l *Log) rollLocked(nowMs int64) (*segment, error) {
	old := l.mu.segs[len(l.mu.segs)-1]
	ns, err := l.createSegment(old.next, nowMs)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	old.maybeAppendTimeEntry()
	l.mu.segs = append(l.mu.segs, ns)
	l.mu.Unlock()
	// old is no longer written: reading its indexes without mu is safe.
	if err := old.writeIndexes(l.dir); err != nil {
		l.logger.Warn("broker/log: writing segment indexes", "segment", old.path, "err", err)
	}
	return ns, nil
}

// StartOffset returns the log start offset: the first offset a Read may ask
// for.
func (l *Log) StartOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.start
}

// EndOffset returns the log end offset: the offset the next appended record
// gets.
func (l *Log) EndOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.endLocked()
}

func (l *Log) endLocked() int64 { return l.mu.segs[len(l.mu.segs)-1].next }

// Size returns the total size of the segment files in bytes.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.size
}

// NumSegments returns how many segments the log has.
func (l *Log) NumSegments() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.mu.segs)
}

// Dir returns the partition directory.
func (l *Log) Dir() string { return l.dir }

// findLocked returns the index of the first segment holding offsets at or
// past offset (whose next is beyond it), or len(segs).
func (l *Log) findLocked(offset int64) int {
	segs := l.mu.segs
	return sort.Search(len(segs), func(i int) bool { return segs[i].next > offset })
}

// Close writes the active segment's indexes, fsyncs what is not yet synced,
// and closes the files. Reads under way finish first. Close is idempotent.
func (l *Log) Close() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.RLock()
	closed := l.mu.closed
	l.mu.RUnlock()
	if closed {
		return nil
	}
	l.closing.Store(true)
	syncErr := l.Sync(l.EndOffset())
	l.mu.Lock()
	l.mu.closed = true
	segs := l.mu.segs
	l.mu.Unlock()
	active := segs[len(segs)-1]
	idxErr := active.writeIndexes(l.dir)
	for _, s := range segs {
		s.release()
	}
	return errors.Join(syncErr, idxErr)
}

// Delete closes the log and removes its directory with every file in it.
func (l *Log) Delete() error {
	cerr := l.Close()
	if errors.Is(cerr, ErrSyncFailed) {
		cerr = nil
	}
	return errors.Join(cerr, l.fs.RemoveAll(l.dir))
}

// readFull reads len(b) bytes at pos, treating a short read as corruption.
func readFull(s *segment, b []byte, pos int64) error {
	n, err := s.f.ReadAt(b, pos)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		return &CorruptionError{Segment: s.path, Pos: pos, Reason: fmt.Sprintf("short read: %d of %d bytes", n, len(b))}
	}
	return fmt.Errorf("broker/log: reading %s: %w", s.path, err)
}
