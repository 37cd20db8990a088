package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestUpRunsBrokerAndRegistry starts `sluice up` on free ports, waits for the
// three services to report their addresses, checks the registry answers over
// HTTP (its schemas live in the broker) and connect lists its plugins, and
// stops it like SIGINT does.
func TestUpRunsBrokerAndRegistry(t *testing.T) {
	out := newSignalWriter("sluice connect listening on http://")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cmd := newRootCmd()
	cmd.SetArgs([]string{"up", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--registry-listen", "127.0.0.1:0", "--connect-listen", "127.0.0.1:0", "--log-level", "warn"})
	cmd.SetOut(out)
	errOut := newSignalWriter("never")
	cmd.SetErr(errOut)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	select {
	case <-out.seen:
	case err := <-done:
		t.Fatalf("up exited early: %v\nstderr:\n%s", err, errOut.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("up did not report both services within 60s:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "sluice broker listening on 127.0.0.1:") {
		t.Fatalf("no broker line in %q", out.String())
	}
	url := regexp.MustCompile(`sluice registry listening on (http://\S+)`).FindStringSubmatch(out.String())
	if url == nil {
		t.Fatalf("no registry URL in %q", out.String())
	}
	resp, err := http.Get(url[1] + "/subjects")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "[]" {
		t.Fatalf("GET /subjects: %d %s", resp.StatusCode, body)
	}
	curl := regexp.MustCompile(`sluice connect listening on (http://\S+)`).FindStringSubmatch(out.String())
	if curl == nil {
		t.Fatalf("no connect URL in %q", out.String())
	}
	resp, err = http.Get(curl[1] + "/connector-plugins")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"class":"file-source"`) || !strings.Contains(string(body), `"class":"postgres-cdc"`) || !strings.Contains(string(body), `"class":"postgres-sink"`) {
		t.Fatalf("GET /connector-plugins: %d %s", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("up stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("up did not stop within 30s")
	}
}
