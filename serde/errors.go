package serde

import (
	"errors"
	"fmt"
)

var (
	// ErrMalformed is wrapped by every error a Decode returns for bytes that
	// are not a valid encoding (wrong length, bad JSON, truncated or
	// oversized Avro). Retrying cannot help: treat the record as poison
	// (skip it, or send it to a dead-letter topic). The details are in a
	// *DecodeError, matched with errors.AsType[*DecodeError].
	ErrMalformed = errors.New("serde: malformed input")

	// ErrSchema is returned by the Avro constructors when a schema does not
	// parse, when the writer schema cannot be resolved to the reader schema,
	// or when the Go type does not fit the schema. It is a programming or
	// deployment error, found before any record is processed.
	ErrSchema = errors.New("serde: invalid schema")
)

// DecodeError describes bytes a serde could not decode. It wraps ErrMalformed
// and, when a library (encoding/json, the Avro codec) reported the failure,
// that library's error.
type DecodeError struct {
	// Format names the serde: "int64", "json", "avro", ...
	Format string
	// Offset is the byte offset at which the problem was found, or -1 when
	// the underlying decoder does not say.
	Offset int
	// Len is the length of the input.
	Len int
	// Reason says what is wrong, in lower case.
	Reason string
	// Err is the underlying error, or nil.
	Err error
}

// Error implements error.
func (e *DecodeError) Error() string {
	msg := fmt.Sprintf("serde/%s: malformed input (%d bytes)", e.Format, e.Len)
	if e.Offset >= 0 {
		msg += fmt.Sprintf(" at offset %d", e.Offset)
	}
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns ErrMalformed and, if set, Err.
func (e *DecodeError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrMalformed}
	}
	return []error{ErrMalformed, e.Err}
}

// malformed returns a *DecodeError for input b.
func malformed(format string, b []byte, off int, reason string, err error) error {
	return &DecodeError{Format: format, Offset: off, Len: len(b), Reason: reason, Err: err}
}
