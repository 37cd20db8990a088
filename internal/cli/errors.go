package cli

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TopicError is a broker's refusal of an operation on one topic, worded for
// people. Err is the Kafka error (a *kerr.Error when the broker sent a code),
// so errors.Is(err, kerr.TopicAlreadyExists) works on it.
type TopicError struct {
	Topic  string
	Op     string // "create", "delete", "describe", "alter configs of", "produce to", ...
	Err    error
	Detail string // the broker's error message, if it sent one
}

// Error explains the failure and, when there is one, the usual remedy.
func (e *TopicError) Error() string {
	var msg string
	switch {
	case errors.Is(e.Err, kerr.TopicAlreadyExists):
		msg = fmt.Sprintf("topic %q already exists", e.Topic)
	case errors.Is(e.Err, kerr.UnknownTopicOrPartition), errors.Is(e.Err, kerr.UnknownTopicID):
		msg = fmt.Sprintf("topic %q does not exist (see `sluice topics list`)", e.Topic)
	case errors.Is(e.Err, kerr.InvalidTopicException):
		msg = fmt.Sprintf("invalid topic name %q (use letters, digits, '.', '_' and '-', at most 249 characters)", e.Topic)
	case errors.Is(e.Err, kerr.InvalidPartitions):
		msg = fmt.Sprintf("cannot %s topic %q: invalid partition count", e.Op, e.Topic)
	case errors.Is(e.Err, kerr.InvalidReplicationFactor):
		msg = fmt.Sprintf("cannot %s topic %q: invalid replication factor (a single sluice broker supports only 1)", e.Op, e.Topic)
	case errors.Is(e.Err, kerr.InvalidConfig):
		msg = fmt.Sprintf("cannot %s topic %q: invalid config", e.Op, e.Topic)
	case errors.Is(e.Err, kerr.TopicAuthorizationFailed):
		msg = fmt.Sprintf("not authorized to %s topic %q", e.Op, e.Topic)
	default:
		msg = fmt.Sprintf("cannot %s topic %q: %s", e.Op, e.Topic, describe(e.Err))
	}
	if e.Detail != "" && (e.Err == nil || e.Detail != e.Err.Error()) {
		msg += ": " + e.Detail
	}
	return msg
}

// Unwrap returns the Kafka error.
func (e *TopicError) Unwrap() error { return e.Err }

// topicErr wraps err as a *TopicError, or returns nil when err is nil.
func topicErr(op, topic string, err error, detail string) error {
	if err == nil {
		return nil
	}
	return &TopicError{Topic: topic, Op: op, Err: err, Detail: detail}
}

// describe renders a Kafka error as "NAME: description" and other errors as
// they are.
func describe(err error) string {
	if ke, ok := errors.AsType[*kerr.Error](err); ok {
		return fmt.Sprintf("%s: %s", ke.Message, ke.Description)
	}
	return err.Error()
}
