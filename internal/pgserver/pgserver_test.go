package pgserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/pgserver/pgtest"
)

func TestStartLogical(t *testing.T) {
	s := pgtest.Start(t)
	db := pgtest.Database(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := s.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var level string
	if err := c.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		t.Fatal(err)
	}
	if level != "logical" {
		t.Fatalf("wal_level = %q, want logical", level)
	}
	var n int
	if err := c.QueryRow(ctx, "SELECT 40 + 2").Scan(&n); err != nil || n != 42 {
		t.Fatalf("query: %d, %v", n, err)
	}
}

// TestRestart: a restarted server keeps its data, socket and port; open
// connections are ended by the restart and new ones work.
func TestRestart(t *testing.T) {
	s := pgtest.Start(t)
	db := pgtest.Database(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pgtest.Exec(t, s, db, "CREATE TABLE a (id int)", "INSERT INTO a VALUES (1)")
	old, err := s.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close(ctx)
	host, port := s.Host, s.Port
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Host != host || s.Port != port {
		t.Fatalf("restarted on %s:%d, was %s:%d", s.Host, s.Port, host, port)
	}
	if _, err := old.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("a connection from before the restart still works")
	}
	c, err := s.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM a").Scan(&n); err != nil || n != 1 {
		t.Fatalf("after the restart: %d rows, %v", n, err)
	}
}
