package log

import (
	"fmt"
)

// Sync returns once every byte of the offsets below upTo (capped at the end
// offset when Sync is called) is fsynced. Concurrent callers coalesce: one
// caller at a time fsyncs everything appended so far on behalf of all
// waiters (group commit). Rolled segments are fsynced before their
// successors' data counts as synced. No lock Append or Read needs is held
// across the fsync. After a failed fsync every Sync returns ErrSyncFailed.
func (l *Log) Sync(upTo int64) error {
	if l.synced.Load() >= upTo {
		return nil
	}
	upTo = min(upTo, l.EndOffset())
	s := &l.syncer
	s.Lock()
	for {
		if s.err != nil {
			err := s.err
			s.Unlock()
			return err
		}
		if l.synced.Load() >= upTo {
			s.Unlock()
			return nil
		}
		if !s.running {
			break
		}
		s.cond.Wait()
	}
	s.running = true
	s.Unlock()

	err := l.syncOnce()

	s.Lock()
	s.running = false
	if err != nil {
		s.err = fmt.Errorf("%w: %w", ErrSyncFailed, err)
		err = s.err
	}
	s.cond.Broadcast()
	s.Unlock()
	return err
}

// syncOnce fsyncs every segment with unsynced bytes and the directory if a
// segment was created, then publishes the end offset seen before it began.
// Only one syncOnce runs at a time.
func (l *Log) syncOnce() error {
	l.mu.RLock()
	if l.mu.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	// Read the end offset before the sizes: Append publishes both under
	// mu, so every byte of offsets below target is within the sizes.
	target := l.endLocked()
	var dirty []*segment
	var sizes []int64
	for i := len(l.mu.segs) - 1; i >= 0; i-- {
		sg := l.mu.segs[i]
		if sg.synced.Load() >= sg.size {
			if sg.size == 0 {
				// A freshly rolled, empty active segment: its
				// predecessor may still be dirty.
				continue
			}
			// Sync always covers every dirty segment, so everything
			// older than a synced segment is synced too.
			break
		}
		sg.acquire()
		dirty = append(dirty, sg)
		sizes = append(sizes, sg.size)
	}
	l.mu.RUnlock()
	defer releaseAll(dirty)

	// Oldest first, so a crash mid-way keeps a prefix.
	for i := len(dirty) - 1; i >= 0; i-- {
		if err := dirty[i].f.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", dirty[i].path, err)
		}
		dirty[i].synced.Store(max(dirty[i].synced.Load(), sizes[i]))
	}
	if l.dirDirty.Swap(false) {
		if err := l.fs.SyncDir(l.dir); err != nil {
			l.dirDirty.Store(true)
			return fmt.Errorf("fsync %s: %w", l.dir, err)
		}
	}
	if target > l.synced.Load() {
		l.synced.Store(target)
	}
	return nil
}

// SyncedOffset returns the offset below which every record is fsynced.
func (l *Log) SyncedOffset() int64 { return l.synced.Load() }
