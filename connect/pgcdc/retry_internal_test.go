package pgcdc

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestConnLost(t *testing.T) {
	pg := func(code string) error { return &pgconn.PgError{Severity: "FATAL", Code: code} }
	wrap := func(err error) error { return fmt.Errorf("pgcdc: replication stream: %w", err) }
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{wrap(pg("57P01")), true}, // admin shutdown, pg_terminate_backend
		{wrap(pg("57P02")), true},
		{wrap(pg("57P03")), true}, // starting up
		{wrap(pg("08006")), true},
		{wrap(pg("53300")), true},
		{wrap(io.EOF), true},
		{wrap(io.ErrUnexpectedEOF), true},
		{wrap(&net.OpError{Op: "read", Net: "unix", Err: syscall.ECONNRESET}), true},
		{wrap(pgconn.ErrConnClosed), true},
		{errStreamEnded, true},
		{wrap(pg("28P01")), false}, // authentication failed
		{wrap(pg("3D000")), false}, // no such database
		{wrap(pg("42501")), false}, // insufficient privilege
		{wrap(pg("55006")), false}, // slot in use
		{fmt.Errorf("%w: x", ErrNotLogical), false},
		{fmt.Errorf("%w: x", ErrSlotLost), false},
		{errors.New("pgcdc: decode pgoutput message"), false},
	} {
		if got := connLost(c.err); got != c.want {
			t.Errorf("connLost(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
