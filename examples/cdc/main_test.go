package main

import (
	"os"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/pgserver"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/stream/streamtest"
)

// TestTopology feeds unwrapped change events (rows, and tombstones for
// deletes) and checks the totals the sink would upsert.
func TestTopology(t *testing.T) {
	topo, err := topology()
	if err != nil {
		t.Fatal(err)
	}
	d := streamtest.New(t, topo)
	in := streamtest.Input(d, changesTopic, serde.JSON[OrderKey](), serde.JSON[Order]())
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	in.Pipe(OrderKey{1}, Order{1, "ada", 1250}, now)
	in.Pipe(OrderKey{2}, Order{2, "grace", 990}, now)
	in.Pipe(OrderKey{3}, Order{3, "ada", 500}, now)
	in.Pipe(OrderKey{1}, Order{1, "ada", 2000}, now)  // update
	in.Pipe(OrderKey{3}, Order{3, "grace", 500}, now) // moved to another customer
	in.PipeTombstone(OrderKey{2}, now)                // delete
	got := map[string]Totals{}
	for _, kv := range streamtest.Output(d, totalsTopic, serde.JSON[TotalsKey](), serde.JSON[Totals]()).ReadKeyValues() {
		got[kv.Key.CustomerID] = kv.Value
	}
	want := map[string]Totals{
		"ada":   {"ada", 1, 2000},
		"grace": {"grace", 1, 500},
	}
	if len(got) != len(want) || got["ada"] != want["ada"] || got["grace"] != want["grace"] {
		t.Fatalf("latest totals %+v, want %+v", got, want)
	}
}

// TestDemo runs the whole example: a throwaway PostgreSQL, the embedded
// broker, the CDC source, the topology and the upsert sink; run fails if
// customer_totals does not match orders after each change.
func TestDemo(t *testing.T) {
	if _, err := pgserver.BinDir(); err != nil {
		if os.Getenv("SLUICE_REQUIRE_COMPAT") == "1" || os.Getenv("SLUICE_REQUIRE_POSTGRES") == "1" {
			t.Fatal(err)
		}
		t.Skipf("skipping: %v", err)
	}
	if err := run("", ""); err != nil {
		t.Fatal(err)
	}
}
