package connect

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNotFound is returned by Worker methods for a connector, task or
	// plugin that does not exist. The REST API answers 404.
	ErrNotFound = errors.New("connect: not found")
	// ErrExists is returned by Worker.Create for a connector that already
	// exists. The REST API answers 409.
	ErrExists = errors.New("connect: already exists")
	// ErrBadRequest marks a malformed request, such as a configuration whose
	// name does not match the URL. The REST API answers 400.
	ErrBadRequest = errors.New("connect: bad request")
	// ErrClosed is returned by Worker methods after the worker stopped.
	ErrClosed = errors.New("connect: worker closed")
	// ErrRetriable marks a task error as transient (Kafka Connect's
	// RetriableException): a database restarting, a lost connection, a
	// serialization failure. Wrap errors with Retriable.
	ErrRetriable = errors.New("connect: retriable")
)

// Retriable marks err as transient. A SourceTask's Poll, or a SinkTask's
// Put or Flush, returning it is retried after a backoff (100ms, doubling up
// to errors.retry.max.delay.ms, default 60s) for as long as the task runs,
// instead of failing the task:
//
//   - Poll is called again.
//   - Put is called again with the same records, then Flush (if the task
//     is a Flusher): a task that buffers records in Put must accept records
//     it already holds (an upsert sink naturally does). Offsets are
//     committed only once Put and Flush succeed.
//
// The task stays RUNNING while it retries; each failure is logged.
func Retriable(err error) error {
	if err == nil {
		return nil
	}
	return retriableError{err}
}

type retriableError struct{ err error }

func (e retriableError) Error() string { return e.err.Error() }
func (e retriableError) Unwrap() []error {
	return []error{e.err, ErrRetriable}
}

// InvalidConfigError is returned when a connector configuration does not
// validate; the REST API answers 400 with Kafka Connect's message.
type InvalidConfigError struct {
	Errors []ConfigError
}

// Error returns Kafka Connect's message for an invalid configuration.
func (e *InvalidConfigError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Connector configuration is invalid and contains the following %d error(s):", len(e.Errors))
	for _, ce := range e.Errors {
		fmt.Fprintf(&b, "\n%s: %s", ce.Key, ce.Message)
	}
	b.WriteString("\nYou can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`")
	return b.String()
}

// Unwrap makes the error match ErrBadRequest.
func (e *InvalidConfigError) Unwrap() error { return ErrBadRequest }

// RejectedRecord is a record a sink task did not take, and why.
type RejectedRecord struct {
	Record SinkRecord
	Err    error
}

// PutError is returned by SinkTask.Put for the records it rejects one by
// one (a value it cannot write, say) when it took all the others of the
// call: they are buffered or written as if they had been passed alone.
//
// With errors.tolerance=all the worker logs each rejected record, sends it
// to errors.deadletterqueue.topic.name when one is set (stage TASK_PUT),
// and goes on to Flush and commit the offsets of the whole batch. With
// none, the task fails with the error, like any other Put error. Kafka
// Connect's sinks report such records through an ErrantRecordReporter.
type PutError struct {
	Rejected []RejectedRecord
}

// Error summarises the rejected records with the first one's error.
func (e *PutError) Error() string {
	if len(e.Rejected) == 0 {
		return "connect: no records rejected"
	}
	r := e.Rejected[0]
	msg := fmt.Sprintf("%s-%d@%d: %v", r.Record.Topic, r.Record.Partition, r.Record.Offset, r.Err)
	if n := len(e.Rejected); n > 1 {
		msg += fmt.Sprintf(" (and %d more rejected records)", n-1)
	}
	return msg
}

// Unwrap returns the errors of the rejected records.
func (e *PutError) Unwrap() []error {
	out := make([]error, len(e.Rejected))
	for i, r := range e.Rejected {
		out[i] = r.Err
	}
	return out
}
