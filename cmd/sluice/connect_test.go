package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker/brokertest"
)

// TestConnectAndConnectors runs `sluice connect` against a test broker and
// drives it with `sluice connectors ...`: a file source and a file sink
// copy lines from one file to another through a topic.
func TestConnectAndConnectors(t *testing.T) {
	b := brokertest.Start(t)
	out := newSignalWriter("sluice connect listening on http://")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cmd := newRootCmd()
	cmd.SetArgs([]string{"connect", "--brokers", b.Addr(), "--listen", "127.0.0.1:0", "--log-level", "warn"})
	cmd.SetOut(out)
	errOut := newSignalWriter("never")
	cmd.SetErr(errOut)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	select {
	case <-out.seen:
	case err := <-done:
		t.Fatalf("connect exited early: %v\nstderr:\n%s", err, errOut.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("connect did not report its URL within 60s:\n%s", out.String())
	}
	url := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(out.String())[1]

	dir := t.TempDir()
	in, dst := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	if err := os.WriteFile(in, []byte("hello\nworld\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := func(args ...string) string {
		return mustRun(t, "", append([]string{"connectors", "--url", url}, args...)...)
	}
	c("create", "src", "--config", "connector.class=file-source", "--config", "file="+in, "--config", "topic=copy")
	c("create", "dst", "--config", "connector.class=FileStreamSink", "--config", "file="+dst, "--config", "topics=copy")
	if got := c("list"); !strings.Contains(got, `"dst"`) || !strings.Contains(got, `"src"`) {
		t.Fatalf("list: %s", got)
	}
	if got := c("status", "src"); !strings.Contains(got, `"state": "RUNNING"`) {
		t.Fatalf("status: %s", got)
	}
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		b, _ := os.ReadFile(dst)
		if string(b) == "\"hello\"\n\"world\"\n" || string(b) == "hello\nworld\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sink file has %q", b)
		}
		<-tick.C
	}
	c("pause", "src")
	if got := c("status", "src"); !strings.Contains(got, `"state": "PAUSED"`) {
		t.Fatalf("paused status: %s", got)
	}
	c("resume", "src")
	if got := c("restart", "src", "--include-tasks"); !strings.Contains(got, `"state": "RUNNING"`) {
		t.Fatalf("restart: %s", got)
	}
	c("stop", "src")
	c("delete", "src")
	wantErr(t, "", []string{"connectors", "--url", url, "status", "src"}, "Connector src not found (HTTP 404)")
	wantErr(t, "", []string{"connectors", "--url", url, "create", "bad", "--config", "connector.class=nope"}, "Connector configuration is invalid", "HTTP 400")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("connect stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("connect did not stop within 30s")
	}
}
