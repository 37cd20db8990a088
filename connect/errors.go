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
)

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
