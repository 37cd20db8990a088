// Package pgtest starts a real PostgreSQL server for a test (see package
// pgserver). Tests skip when PostgreSQL is not installed, and fail instead
// when SLUICE_REQUIRE_COMPAT=1 or SLUICE_REQUIRE_POSTGRES=1 (as CI sets).
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/pgserver"
)

// Start starts a PostgreSQL server for t and stops it when t ends.
func Start(t testing.TB, o ...pgserver.Options) *pgserver.Server {
	t.Helper()
	var opts pgserver.Options
	if len(o) > 0 {
		opts = o[0]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := pgserver.Start(ctx, opts)
	if errors.Is(err, pgserver.ErrNotInstalled) && !required() {
		t.Skipf("skipping: %v (set SLUICE_REQUIRE_POSTGRES=1 to fail instead)", err)
	}
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop PostgreSQL: %v", err)
		}
	})
	return s
}

var dbSeq atomic.Int64

// Database creates a new, empty database on s and returns its name.
func Database(t testing.TB, s *pgserver.Server) string {
	t.Helper()
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.CreateDatabase(ctx, name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	return name
}

// Exec runs SQL on database db, failing the test on error.
func Exec(t testing.TB, s *pgserver.Server, db string, sql ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Exec(ctx, db, sql...); err != nil {
		t.Fatalf("exec: %v", err)
	}
}

func required() bool {
	for _, k := range []string{"SLUICE_REQUIRE_COMPAT", "SLUICE_REQUIRE_POSTGRES"} {
		if v := strings.TrimSpace(os.Getenv(k)); v != "" && v != "0" {
			return true
		}
	}
	return false
}
