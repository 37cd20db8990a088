// Package cli holds the logic behind the sluice client commands (topics,
// produce, consume, groups): connecting to brokers, running admin requests, reading
// records from and writing them to text streams, and turning Kafka errors into
// messages that say what to do. cmd/sluice only parses flags and calls in here.
//
// Every function talks to the brokers through franz-go and only through it, so
// the commands work against any Kafka-compatible cluster.
package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultBrokers is the broker list used when neither --brokers nor
// SLUICE_BROKERS is set.
const DefaultBrokers = "127.0.0.1:9092"

// BrokersEnv names the environment variable that supplies the broker list
// when --brokers is not given.
const BrokersEnv = "SLUICE_BROKERS"

// pingTimeout bounds the first contact with the brokers, so a wrong address
// fails in seconds instead of after franz-go's retries.
const pingTimeout = 10 * time.Second

// ErrUnreachable is returned (wrapped in an *UnreachableError) by Connect when
// no seed broker answers. Callers report it to the user; retrying rarely helps
// until a broker is started or the address corrected.
var ErrUnreachable = errors.New("cli: cannot reach broker")

// UnreachableError reports that none of Brokers answered.
type UnreachableError struct {
	Brokers []string
	Err     error // the last dial or request error
}

// Error says which brokers failed, why, and what to try.
func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach broker at %s: %s (is `sluice broker` running? set --brokers or %s)",
		strings.Join(e.Brokers, ","), shortNetError(e.Err), BrokersEnv)
}

// Unwrap returns ErrUnreachable and the underlying error.
func (e *UnreachableError) Unwrap() []error { return []error{ErrUnreachable, e.Err} }

// shortNetError trims "dial tcp 127.0.0.1:9092: connect: connection refused"
// to "connection refused": the address is already in the message.
func shortNetError(err error) string {
	if se, ok := errors.AsType[*os.SyscallError](err); ok {
		return se.Err.Error()
	}
	if de, ok := errors.AsType[*net.DNSError](err); ok {
		return de.Error()
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return "timed out"
	}
	return err.Error()
}

// ParseBrokers splits a comma-separated host:port list and checks each
// entry. An empty list is an error.
func ParseBrokers(s string) ([]string, error) {
	var out []string
	for b := range strings.SplitSeq(s, ",") {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(b); err != nil {
			return nil, fmt.Errorf("invalid broker address %q: want host:port", b)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.New("no broker address given: set --brokers host:port")
	}
	return out, nil
}

// Connect creates a franz-go client for brokers with opts and checks that at
// least one broker answers, so that a wrong address is reported at once and
// clearly (*UnreachableError) rather than after minutes of retries. The
// caller closes the client.
func Connect(ctx context.Context, brokers []string, opts ...kgo.Opt) (*kgo.Client, error) {
	all := append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &UnreachableError{Brokers: brokers, Err: err}
	}
	return cl, nil
}
