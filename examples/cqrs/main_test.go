package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker/brokertest"
)

// TestDemo runs the no-flag mode in-process: embedded broker, sample orders,
// the app, and its HTTP read model queried over 127.0.0.1.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, nil, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"alice       46.00",
		"bob         15.00",
		"carol      130.00",
		"dave        42.00",
		`?key=alice -> 200 {"key":"alice","value":4600}`,
		"?key=mallory -> 404",
		"done",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

func TestFlags(t *testing.T) {
	if err := run(t.Context(), []string{"--no-such-flag"}, &strings.Builder{}); err == nil {
		t.Fatal("an unknown flag was accepted")
	}
}

// TestServe runs the --brokers mode against a test broker: it serves the
// totals until its context ends.
func TestServe(t *testing.T) {
	addr := brokertest.Start(t).Addr()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, []string{"--brokers", addr, "--listen", "127.0.0.1:0", "--state-dir", t.TempDir()}, pw)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("first line: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(f[1], "http://") {
		t.Fatalf("first line %q does not name the address", line)
	}
	base := f[1]
	if err := produceOrders(ctx, []string{addr}, sampleOrders); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for _, o := range sampleOrders {
		want[o.Customer] += o.AmountCents
	}
	for {
		all, err := getAll(ctx, base)
		if err != nil {
			t.Fatal(err)
		}
		if matches(all, want) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("serve stopped: %v", err)
		case <-ctx.Done():
			t.Fatalf("totals %v, want %v", all, want)
		case <-time.After(20 * time.Millisecond): // polling a condition with a deadline
		}
	}
	body, status, err := get(ctx, base+"?key=bob")
	if err != nil || status != 200 || !strings.Contains(string(body), `"value":1500`) {
		t.Errorf("GET ?key=bob: %d %s %v", status, body, err)
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("serve did not stop")
	}
}
