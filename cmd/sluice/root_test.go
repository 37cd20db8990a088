package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// closedAddr returns an address nothing listens on: a port just released.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestFlagValidation(t *testing.T) {
	// A closed address: if validation let a case through, it fails on
	// connecting instead, with a message the case does not expect.
	b := "--brokers=" + closedAddr(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"produce", "t", "--bogus"}, "unknown flag: --bogus (see `sluice produce --help`)"},
		{"missing topic", []string{"produce"}, "accepts 1 arg(s), received 0"},
		{"bad brokers", []string{"topics", "list", "--brokers", "localhost"}, `invalid broker address "localhost": want host:port`},
		{"bad output", []string{"topics", "list", "--output", "yaml", b}, `invalid --output "yaml": want text or json`},
		{"partitions", []string{"topics", "create", "x", "--partitions", "0", b}, "invalid --partitions 0"},
		{"replication", []string{"topics", "create", "x", "--replication-factor", "0", b}, "invalid --replication-factor 0"},
		{"config without =", []string{"topics", "create", "x", "--config", "retention.ms", b}, `invalid --config "retention.ms": want key=value`},
		{"alter nothing", []string{"topics", "alter-config", "x", b}, "nothing to change"},
		{"acks", []string{"produce", "t", "--acks", "2", b}, `invalid --acks "2": want all, 1 or 0`},
		{"compression", []string{"produce", "t", "--compression", "brotli", b}, `invalid --compression "brotli"`},
		{"header", []string{"produce", "t", "--header", "=v", b}, `invalid --header "=v"`},
		{"produce partition", []string{"produce", "t", "--partition", "-2", b}, "invalid --partition -2"},
		{"start twice", []string{"consume", "t", "--from-beginning", "--offset", "5", b}, "--from-beginning and --offset cannot be used together"},
		{"offset", []string{"consume", "t", "--offset", "soon", b}, `invalid --offset "soon"`},
		{"format verb", []string{"consume", "t", "--format", "%q", b}, "unknown verb %q"},
		{"format escape", []string{"consume", "t", "--format", `\x`, b}, `unknown escape \x`},
		{"format and json", []string{"consume", "t", "--format", "%v", "-o", "json", b}, "--format and --output json cannot be used together"},
		{"group and partition", []string{"consume", "t", "--group", "g", "--partition", "0", b}, "--partition and --group cannot be used together"},
		{"max", []string{"consume", "t", "--max", "-1", b}, "invalid --max -1"},
		{"reset no target", []string{"groups", "reset-offsets", "g", "--topic", "t", b}, "give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by (got 0)"},
		{"reset two targets", []string{"groups", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--to-offset", "3", b}, "give exactly one of --to-earliest"},
		{"reset no partitions", []string{"groups", "reset-offsets", "g", "--to-earliest", b}, "give --topic T[:P,P...] (repeatable) or --all-topics"},
		{"reset topic and all", []string{"groups", "reset-offsets", "g", "--topic", "t", "--all-topics", "--to-earliest", b}, "--topic and --all-topics cannot be used together"},
		{"reset bad topic", []string{"groups", "reset-offsets", "g", "--topic", "t:x", "--to-earliest", b}, `invalid --topic "t:x"`},
		{"reset negative offset", []string{"groups", "reset-offsets", "g", "--topic", "t", "--to-offset", "-1", b}, "invalid --to-offset -1"},
		{"reset bad datetime", []string{"groups", "reset-offsets", "g", "--topic", "t", "--to-datetime", "noon", b}, `invalid --to-datetime "noon": want RFC 3339`},
		{"describe no group", []string{"groups", "describe", b}, "requires at least 1 arg(s)"},
		{"delete-offsets no topic", []string{"groups", "delete-offsets", "g", b}, "no topic given"},
		{"bench records", []string{"bench", "produce", "--records", "0", b}, "invalid --records 0"},
		{"bench idempotent acks", []string{"bench", "produce", "--acks", "1", "--idempotent", b}, "--idempotent needs --acks all"},
		{"bench inflight", []string{"bench", "produce", "--max-inflight", "3", b}, "--max-inflight needs --idempotent=false"},
		{"bench linger", []string{"bench", "produce", "--linger", "-1s", b}, "invalid --linger"},
		{"bench clients", []string{"bench", "produce", "--clients", "0", b}, "invalid --clients 0"},
		{"fsync", []string{"broker", "--fsync", "sometimes"}, `invalid --fsync "sometimes"`},
		{"log level", []string{"broker", "--log-level", "loud"}, `invalid --log-level "loud"`},
		{"default partitions", []string{"broker", "--default-partitions", "0"}, "invalid --default-partitions 0"},
		{"topic default", []string{"broker", "--topic-default", "retention.ms"}, `invalid --topic-default "retention.ms": want key=value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, "", tt.args, tt.want)
		})
	}
}

func TestUnreachableBroker(t *testing.T) {
	addr := closedAddr(t)
	for _, args := range [][]string{
		{"topics", "list"},
		{"produce", "t"},
		{"consume", "t"},
		{"groups", "list"},
		{"bench", "produce", "-q"},
	} {
		wantErr(t, "x\n", append(args, "--brokers", addr),
			"cannot reach broker at "+addr+": connection refused (is `sluice broker` running? set --brokers")
	}
}

func TestBrokerCommand(t *testing.T) {
	dir := t.TempDir()
	out := newSignalWriter("sluice broker listening on 127.0.0.1:")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cmd := newRootCmd()
	cmd.SetArgs([]string{"broker", "--data-dir", dir, "--listen", "127.0.0.1:0", "--fsync", "always", "--log-level", "debug"})
	cmd.SetOut(out)
	errOut := newSignalWriter(`msg="broker stopped"`)
	cmd.SetErr(errOut)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	select {
	case <-out.seen:
	case err := <-done:
		t.Fatalf("broker exited before listening: %v\nstderr:\n%s", err, errOut.String())
	case <-time.After(30 * time.Second):
		t.Fatal("broker did not report listening within 30s")
	}
	if !strings.Contains(out.String(), "(data dir "+dir+")") {
		t.Fatalf("listening line %q does not name the data dir", out.String())
	}
	cancel() // what SIGINT does through signal.NotifyContext in main
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("broker stopped with %v, want a clean exit", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("broker did not stop within 30s of cancellation")
	}
	if !strings.Contains(errOut.String(), `level=INFO msg="broker started"`) {
		t.Fatalf("stderr lacks the slog text start line:\n%s", errOut.String())
	}
}

func TestBrokerPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	wantErr(t, "", []string{"broker", "--data-dir", t.TempDir(), "--listen", ln.Addr().String()},
		"cannot listen on "+ln.Addr().String()+": address already in use")
}

// TestHelpHasExamples checks that every command explains itself with an example.
func TestHelpHasExamples(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() == "help" || c.Name() == "completion" || c.Parent() != nil && c.Parent().Name() == "completion" {
			return
		}
		t.Run(c.CommandPath(), func(t *testing.T) {
			out := mustRun(t, "", append(strings.Fields(c.CommandPath())[1:], "--help")...)
			if !strings.Contains(out, "Examples:") || c.Short == "" {
				t.Errorf("%s --help has no short description or no example:\n%s", c.CommandPath(), out)
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
}
