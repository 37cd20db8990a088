package table

import (
	"fmt"
	"iter"
)

// Changelog receives a store's writes. The runtime supplies it: it sends
// each record to the compacted topic <app-id>-<store>-changelog, in the
// partition of the task that owns the store. The store knows nothing of
// Kafka.
//
// Append is called by the owning task's goroutine, in write order. A nil
// value is a tombstone (a delete); a put of an empty value arrives as a
// non-nil empty slice, which must be produced as an empty value, not as
// null. Append must not retain key or value after it returns (copy them:
// the caller reuses its buffers). An error means the record could not be
// queued; asynchronous production failures are the runtime's to report.
type Changelog interface {
	Append(key, value []byte) error
}

// ChangelogFunc adapts a function to the Changelog interface.
type ChangelogFunc func(key, value []byte) error

// Append calls f(key, value).
func (f ChangelogFunc) Append(key, value []byte) error { return f(key, value) }

// Logged is a Store that writes through to another store and records every
// Put and Delete in a Changelog, after the inner store accepted it.
type Logged struct {
	inner Store
	log   Changelog
}

var (
	_ Store   = (*Logged)(nil)
	_ Wrapper = (*Logged)(nil)
)

// emptyValue is the non-nil empty value that stands for a put of nothing.
var emptyValue = []byte{}

// NewLogged returns a store that records the writes to inner in log.
// Restore bypasses it (it writes to the innermost store), so restoring does
// not log again.
func NewLogged(inner Store, log Changelog) *Logged {
	return &Logged{inner: inner, log: log}
}

// Unwrap implements Wrapper.
func (l *Logged) Unwrap() Store { return l.inner }

// Get implements ReadOnly.
func (l *Logged) Get(key []byte) ([]byte, error) { return l.inner.Get(key) }

// Range implements ReadOnly.
func (l *Logged) Range(from, to []byte) *Iter[[]byte, []byte] { return l.inner.Range(from, to) }

// Prefix implements ReadOnly.
func (l *Logged) Prefix(p []byte) *Iter[[]byte, []byte] { return l.inner.Prefix(p) }

// All implements ReadOnly.
func (l *Logged) All() *Iter[[]byte, []byte] { return l.inner.All() }

// Put implements Store.
func (l *Logged) Put(key, value []byte) error {
	if err := l.inner.Put(key, value); err != nil {
		return err
	}
	if value == nil {
		value = emptyValue
	}
	if err := l.log.Append(key, value); err != nil {
		return fmt.Errorf("table: changelog append: %w", err)
	}
	return nil
}

// Delete implements Store. It logs a tombstone even if the key was absent:
// knowing would cost a read, and compaction drops it anyway.
func (l *Logged) Delete(key []byte) error {
	if err := l.inner.Delete(key); err != nil {
		return err
	}
	if err := l.log.Append(key, nil); err != nil {
		return fmt.Errorf("table: changelog append: %w", err)
	}
	return nil
}

// Flush implements Store by flushing the inner store. It does not flush the
// Changelog: the runtime flushes its producer.
func (l *Logged) Flush() error { return l.inner.Flush() }

// Close implements Store by closing the inner store.
func (l *Logged) Close() error { return l.inner.Close() }

// Restore applies changelog records, in changelog order, to the innermost
// store under s (see Innermost), bypassing record caches and changelogging.
// A nil value deletes the key. It uses BatchWriter when the store has it.
// Records are not retained. It returns how many records it applied; on
// error a prefix of them may have been applied, and the restore should
// start over from the same offset (applying a record twice is harmless:
// changelog records are whole values, not deltas).
//
// The runtime calls it once per fetched batch of the changelog partition,
// from the store's RestoreFrom offset (0 for stores that are not
// Persistent) up to the end offset it found when restoration started.
func Restore(s Store, records iter.Seq2[[]byte, []byte]) (int, error) {
	s = Innermost(s)
	if bw, ok := s.(BatchWriter); ok {
		return bw.WriteBatch(records)
	}
	n := 0
	var err error
	records(func(k, v []byte) bool {
		if v == nil {
			err = s.Delete(k)
		} else {
			err = s.Put(k, v)
		}
		if err != nil {
			return false
		}
		n++
		return true
	})
	return n, err
}
