package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
)

func TestTopicsLifecycle(t *testing.T) {
	b := "--brokers=" + startCluster(t)

	out := mustRun(t, "", "topics", "create", "orders", "--partitions", "3", "--config", "retention.ms=3600000", b)
	if want := "created topic orders with 3 partitions\n"; out != want {
		t.Fatalf("create printed %q, want %q", out, want)
	}
	wantErr(t, "", []string{"topics", "create", "orders", b}, `topic "orders" already exists`)

	out = mustRun(t, "", "topics", "list", b)
	if !strings.HasPrefix(out, "NAME") || !hasRow(out, "orders", "3") {
		t.Fatalf("list:\n%s\nwant a header and the row: orders 3", out)
	}
	var listed []struct {
		Name       string `json:"name"`
		Partitions int    `json:"partitions"`
	}
	decode(t, mustRun(t, "", "topics", "list", b, "--output", "json"), &listed)
	if len(listed) != 1 || listed[0].Name != "orders" || listed[0].Partitions != 3 {
		t.Fatalf("list --output json = %+v, want orders with 3 partitions", listed)
	}

	out = mustRun(t, "", "topics", "describe", "orders", b)
	for _, row := range [][]string{
		{"PARTITION", "LEADER", "REPLICAS", "ISR", "LOG-START", "LOG-END"},
		{"0", "0", "0", "0", "0", "0"},
		{"2", "0", "0", "0", "0", "0"},
		{"retention.ms", "3600000", "topic"},
	} {
		if !hasRow(out, row...) {
			t.Fatalf("describe:\n%s\nwant the row %q", out, row)
		}
	}

	mustRun(t, "", "topics", "alter-config", "orders", "--config", "retention.ms=60000", "--config", "cleanup.policy=compact", b)
	var desc struct {
		Name       string `json:"name"`
		Partitions []struct {
			Partition int   `json:"partition"`
			EndOffset int64 `json:"log_end_offset"`
		} `json:"partitions"`
		Configs []struct{ Name, Value, Source string } `json:"configs"`
	}
	decode(t, mustRun(t, "", "topics", "describe", "orders", "-o", "json", b), &desc)
	configs := map[string]string{}
	for _, c := range desc.Configs {
		configs[c.Name] = c.Value
	}
	if desc.Name != "orders" || len(desc.Partitions) != 3 || configs["retention.ms"] != "60000" || configs["cleanup.policy"] != "compact" {
		t.Fatalf("describe after alter-config = %+v", desc)
	}
	mustRun(t, "", "topics", "alter-config", "orders", "--delete-config", "retention.ms", b)
	if out := mustRun(t, "", "topics", "describe", "orders", b); hasRow(out, "retention.ms", "60000", "topic") {
		t.Fatalf("retention.ms still set by the topic after --delete-config:\n%s", out)
	}

	if out := mustRun(t, "", "topics", "delete", "orders", b); out != "deleted topic orders\n" {
		t.Fatalf("delete printed %q", out)
	}
	var res struct{ Topic, Result string }
	decode(t, mustRun(t, "", "topics", "create", "second", "-o", "json", b), &res)
	if res.Topic != "second" || res.Result != "created" {
		t.Fatalf("create -o json = %+v", res)
	}
	if out := mustRun(t, "", "topics", "list", b); hasRow(out, "orders", "3") {
		t.Fatalf("orders still listed after delete:\n%s", out)
	}
	wantErr(t, "", []string{"topics", "describe", "orders", b}, `topic "orders" does not exist`)
	wantErr(t, "", []string{"topics", "delete", "orders", b}, `topic "orders" does not exist`)
}

func TestBrokersFromEnv(t *testing.T) {
	t.Setenv("SLUICE_BROKERS", startCluster(t))
	mustRun(t, "", "topics", "create", "from-env")
	if out := mustRun(t, "", "topics", "list"); !hasRow(out, "from-env", "1") {
		t.Fatalf("list with SLUICE_BROKERS:\n%s", out)
	}
}

// hasRow reports whether some line of out consists of exactly the fields
// want, after splitting on white space.
func hasRow(out string, want ...string) bool {
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) == len(want) && strings.Join(f, " ") == strings.Join(want, " ") {
			return true
		}
	}
	return false
}

func decode(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
}

// TestTopicsDescribeConfigSources runs `sluice broker` with a broker-wide
// topic default and checks that describe tells the three sources apart.
func TestTopicsDescribeConfigSources(t *testing.T) {
	out := newSignalWriter(" (data dir ")
	ctx, cancel := context.WithCancel(t.Context())
	cmd := newRootCmd()
	cmd.SetArgs([]string{"broker", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0",
		"--topic-default", "retention.ms=1000", "--log-level", "warn"})
	cmd.SetOut(out)
	cmd.SetErr(io.Discard)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("broker: %v", err)
		}
	})
	select {
	case <-out.seen:
	case err := <-done:
		t.Fatalf("broker exited before listening: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("broker did not report listening within 30s")
	}
	addr, _, _ := strings.Cut(strings.TrimPrefix(out.String(), "sluice broker listening on "), " ")
	b := "--brokers=" + addr

	mustRun(t, "", "topics", "create", "orders", "--config", "segment.ms=5000", b)
	desc := mustRun(t, "", "topics", "describe", "orders", b)
	for _, row := range [][]string{
		{"NAME", "VALUE", "SOURCE"},
		{"segment.ms", "5000", "topic"},
		{"retention.ms", "1000", "static-broker"},
		{"cleanup.policy", "delete", "default"},
	} {
		if !hasRow(desc, row...) {
			t.Fatalf("describe:\n%s\nwant the row %q", desc, row)
		}
	}
	// A topic's own value wins over the broker's; deleting it falls back.
	mustRun(t, "", "topics", "alter-config", "orders", "--config", "retention.ms=2000", b)
	if desc := mustRun(t, "", "topics", "describe", "orders", b); !hasRow(desc, "retention.ms", "2000", "topic") {
		t.Fatalf("after alter-config:\n%s", desc)
	}
	mustRun(t, "", "topics", "alter-config", "orders", "--delete-config", "retention.ms", b)
	if desc := mustRun(t, "", "topics", "describe", "orders", b); !hasRow(desc, "retention.ms", "1000", "static-broker") {
		t.Fatalf("after --delete-config:\n%s", desc)
	}
}
