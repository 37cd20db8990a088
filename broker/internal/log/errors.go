package log

import (
	"errors"
	"fmt"

	"github.com/sluicehq/sluice/broker/internal/records"
)

// Errors returned by Log methods; match them with errors.Is.
var (
	// ErrOffsetOutOfRange is returned by Read for an offset below the log
	// start offset or above the log end offset, and by DeleteRecords for an
	// offset above the end. It maps to OFFSET_OUT_OF_RANGE.
	ErrOffsetOutOfRange = errors.New("broker/log: offset out of range")
	// ErrRecordTooLarge is returned by Append for a batch larger than
	// max.message.bytes (or too large for a segment). It maps to
	// MESSAGE_TOO_LARGE / RECORD_LIST_TOO_LARGE.
	ErrRecordTooLarge = errors.New("broker/log: record batch too large")
	// ErrCorrupt is records.ErrCorrupt: Append returns it for damaged
	// batches (CORRUPT_MESSAGE), and reads wrap it in a *CorruptionError
	// when stored data does not parse.
	ErrCorrupt = records.ErrCorrupt
	// ErrInvalidRecord is records.ErrInvalidRecord: Append returns it for
	// structurally invalid batches (INVALID_RECORD).
	ErrInvalidRecord = records.ErrInvalidRecord
	// ErrClosed is returned by every method called after Close or Delete.
	ErrClosed = errors.New("broker/log: log closed")
	// ErrSyncFailed is returned by Sync, and by every later Sync, once an
	// fsync has failed: after a failed fsync the kernel may have dropped
	// dirty pages, so nothing can be reported durable any more. The
	// partition should be taken offline and reopened (which re-verifies the
	// tail).
	ErrSyncFailed = errors.New("broker/log: fsync failed")
)

// CorruptionError reports stored data that does not parse. It wraps
// ErrCorrupt.
type CorruptionError struct {
	Segment string // the segment file
	Pos     int64  // byte position in the file
	Reason  string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("broker/log: corrupt segment %s at position %d: %s", e.Segment, e.Pos, e.Reason)
}

// Unwrap returns ErrCorrupt.
func (e *CorruptionError) Unwrap() error { return ErrCorrupt }

// IsRetriable reports whether err may go away by itself: a failed write
// (for example ENOSPC) leaves the log as it was, so the append can be
// retried; out-of-range and validation errors cannot.
func IsRetriable(err error) bool {
	switch {
	case err == nil,
		errors.Is(err, ErrOffsetOutOfRange), errors.Is(err, ErrRecordTooLarge),
		errors.Is(err, ErrCorrupt), errors.Is(err, ErrInvalidRecord),
		errors.Is(err, records.ErrUnsupportedMagic), errors.Is(err, records.ErrUnsupportedCompression),
		errors.Is(err, ErrClosed), errors.Is(err, ErrSyncFailed):
		return false
	}
	return true
}
