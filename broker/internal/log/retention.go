package log

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

const checkpointName = "log-start-offset"

// DeleteRecords moves the log start offset to before (-1 means the end
// offset), deletes the segments entirely below it and persists the new
// start offset. It returns the new start offset; a before at or below the
// current start changes nothing. before past the end offset returns
// ErrOffsetOutOfRange.
func (l *Log) DeleteRecords(before int64) (newStart int64, err error) {
	l.adminMu.Lock()
	defer l.adminMu.Unlock()
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return -1, ErrClosed
	}
	end := l.endLocked()
	if before == -1 {
		before = end
	}
	if before < 0 || before > end {
		l.mu.Unlock()
		return -1, fmt.Errorf("%w: delete records before %d, log end offset is %d", ErrOffsetOutOfRange, before, end)
	}
	if before <= l.mu.start {
		start := l.mu.start
		l.mu.Unlock()
		return start, nil
	}
	l.mu.start = before
	l.mu.Unlock()
	if err := l.writeCheckpoint(before); err != nil {
		return before, err
	}
	_, err = l.deleteSegments(func(s *segment, _ int64) bool { return s.next <= before })
	return before, err
}

// EnforceRetention applies retention.ms and retention.bytes (unless
// Config.NoDelete: cleanup.policy=compact), deleting whole segments from
// the oldest, and rolls the active segment first when it is due by
// segment.ms (capped by max.compaction.lag.ms for compacted topics) or
// wholly expired by retention.ms (as Kafka does). It returns how many
// segments it deleted.
func (l *Log) EnforceRetention() (deleted int, err error) {
	l.adminMu.Lock()
	defer l.adminMu.Unlock()
	cfg := l.cfg.Load()
	nowMs := l.now().UnixMilli()

	l.appendMu.Lock()
	l.mu.RLock()
	if l.mu.closed {
		l.mu.RUnlock()
		l.appendMu.Unlock()
		return 0, ErrClosed
	}
	active := l.mu.segs[len(l.mu.segs)-1]
	l.mu.RUnlock()
	retMs, retBytes := cfg.retentionMs(), cfg.retentionBytes()
	if active.size > 0 &&
		((retMs >= 0 && active.maxTs < nowMs-retMs) ||
			active.waitedMs(nowMs, nowMs) > cfg.rollMs()) {
		if _, err := l.rollLocked(nowMs); err != nil {
			l.appendMu.Unlock()
			return 0, err
		}
	}
	l.appendMu.Unlock()

	l.mu.RLock()
	excess := l.mu.size - retBytes
	start := l.mu.start
	l.mu.RUnlock()
	return l.deleteSegments(func(s *segment, _ int64) bool {
		switch {
		case s.next <= start:
			return true
		case retMs >= 0 && s.maxTs < nowMs-retMs:
			return true
		case retBytes >= 0 && excess-s.size >= 0:
			excess -= s.size
			return true
		}
		return false
	})
}

// deleteSegments deletes the longest prefix of non-active segments for
// which del returns true, moves the start offset up to the new first
// segment and persists it.
func (l *Log) deleteSegments(del func(s *segment, size int64) bool) (int, error) {
	// The appender reads the segment list without mu; swapping it needs
	// appendMu too. No I/O happens under either.
	l.appendMu.Lock()
	l.mu.Lock()
	unlock := func() { l.mu.Unlock(); l.appendMu.Unlock() }
	if l.mu.closed {
		unlock()
		return 0, ErrClosed
	}
	n := 0
	for n < len(l.mu.segs)-1 && del(l.mu.segs[n], l.mu.segs[n].size) {
		n++
	}
	if n == 0 {
		unlock()
		return 0, nil
	}
	gone := l.mu.segs[:n]
	l.mu.segs = append([]*segment(nil), l.mu.segs[n:]...)
	for _, s := range gone {
		l.mu.size -= s.size
	}
	l.mu.start = max(l.mu.start, l.mu.segs[0].base)
	start := l.mu.start
	unlock()

	var errs []error
	for _, s := range gone {
		// Reads under way keep the file open until they release it.
		errs = append(errs, l.removeSegmentFiles(s.base))
		s.release()
	}
	if start > l.checkpointed {
		errs = append(errs, l.writeCheckpoint(start))
	}
	return n, errors.Join(errs...)
}

// writeCheckpoint persists the log start offset. The caller holds adminMu.
func (l *Log) writeCheckpoint(start int64) error {
	if err := l.writeOffsetFile(checkpointName, start); err != nil {
		return err
	}
	l.checkpointed = start
	return nil
}

// writeOffsetFile atomically replaces the file name in the partition
// directory with "1 <off>\n": temp file, fsync, rename, fsync the
// directory.
func (l *Log) writeOffsetFile(name string, off int64) error {
	tmp := l.path(name + ".tmp")
	f, err := l.fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("broker/log: writing %s: %w", name, err)
	}
	_, err = f.WriteAt([]byte("1 "+strconv.FormatInt(off, 10)+"\n"), 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = l.fs.Rename(tmp, l.path(name))
	}
	if err == nil {
		err = l.fs.SyncDir(l.dir)
	}
	if err != nil {
		return fmt.Errorf("broker/log: writing %s: %w", name, err)
	}
	return nil
}

// readCheckpoint reads the persisted log start offset.
func (l *Log) readCheckpoint() (int64, bool) { return l.readOffsetFile(checkpointName) }

// readOffsetFile reads a file written by writeOffsetFile.
func (l *Log) readOffsetFile(name string) (int64, bool) {
	b, err := readFile(l.fs, l.path(name), 64)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			l.logger.Warn("broker/log: unreadable offset checkpoint", "dir", l.dir, "file", name, "err", err)
		}
		return 0, false
	}
	s, ok := strings.CutPrefix(string(b), "1 ")
	s, ok2 := strings.CutSuffix(s, "\n")
	n, err := strconv.ParseInt(s, 10, 64)
	if !ok || !ok2 || err != nil || n < 0 {
		l.logger.Warn("broker/log: ignoring corrupt offset checkpoint", "dir", l.dir, "file", name, "content", string(b))
		return 0, false
	}
	return n, true
}
