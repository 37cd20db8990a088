package pgcdc

import (
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// errStreamEnded: the server ended the replication stream (it does when it
// shuts down); the task reconnects.
var errStreamEnded = errors.New("pgcdc: replication stream ended by the server")

// connLost reports whether err is a connection-level failure that goes
// away by itself, so that the task reconnects instead of failing: the
// server shut down, restarting or unreachable, the connection reset,
// closed or ended by an administrator. Errors the server reports for any
// other reason (authentication, a missing database, permissions, SQL) are
// not.
func connLost(err error) bool {
	if err == nil {
		return false
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch pe.Code {
		case "57P01", // admin_shutdown: fast shutdown, pg_terminate_backend
			"57P02", // crash_shutdown: another backend crashed
			"57P03", // cannot_connect_now: starting up, shutting down, in recovery
			"53300": // too_many_connections
			return true
		}
		return strings.HasPrefix(pe.Code, "08") // connection_exception
	}
	if errors.Is(err, errStreamEnded) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true // refused, no socket, unknown host, timed out
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true // reset, broken pipe, timeout
	}
	return false
}
