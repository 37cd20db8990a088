package stream

import (
	"errors"
	"fmt"
)

// Errors returned by Build and the runtime.
var (
	// ErrInvalidTopology is wrapped by every Build error; the message names
	// the operator at fault.
	ErrInvalidTopology = errors.New("stream: invalid topology")
	// ErrMissingSerde: an operator needs a serde the topology does not know
	// (after a type-changing operation, pass one with With or Grouped).
	ErrMissingSerde = errors.New("stream: missing serde")
	// ErrClosed: the app was closed.
	ErrClosed = errors.New("stream: app closed")
	// ErrFenced: under ExactlyOnce, a stream thread's transactional
	// producer was fenced by a newer one with the same transactional id
	// (this instance's id is in use by another process: same InstanceID
	// or StateDir). The app stops with it; it does not rejoin, since two
	// processes sharing an identity cannot both be right.
	ErrFenced = errors.New("stream: fenced by another instance")
)

// ProcessingError is what the processing-error handler receives when a user
// callback panics or a Processor returns an error.
type ProcessingError struct {
	Processor string // the operator's name
	Topic     string // the source record's topic, partition and offset
	Partition int32
	Offset    int64
	Err       error
}

func (e *ProcessingError) Error() string {
	return fmt.Sprintf("stream: processor %s failed on %s-%d@%d: %v", e.Processor, e.Topic, e.Partition, e.Offset, e.Err)
}

// Unwrap returns the cause.
func (e *ProcessingError) Unwrap() error { return e.Err }

// DeserializationError is what the deserialization-error handler receives
// for a record whose key or value its serde rejects.
type DeserializationError struct {
	Topic      string
	Partition  int32
	Offset     int64
	IsKey      bool
	Err        error
	Key, Value []byte // the record as read (do not retain)
	Timestamp  int64
	Headers    []Header
}

func (e *DeserializationError) Error() string {
	what := "value"
	if e.IsKey {
		what = "key"
	}
	return fmt.Sprintf("stream: cannot deserialize the %s of %s-%d@%d: %v", what, e.Topic, e.Partition, e.Offset, e.Err)
}

// Unwrap returns the cause.
func (e *DeserializationError) Unwrap() error { return e.Err }

func buildErr(op, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidTopology, op, fmt.Sprintf(format, args...))
}
