package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// run executes the sluice command line args in-process with stdin and
// returns what it printed. Every run is bounded so a hang fails the test.
func run(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := newRootCmd()
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err = cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// mustRun is run for commands expected to succeed; it returns stdout.
func mustRun(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := run(t, stdin, args...)
	if err != nil {
		t.Fatalf("sluice %s: %v\nstderr:\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// wantErr runs args, expecting an error that contains every one of wants.
func wantErr(t *testing.T, stdin string, args []string, wants ...string) {
	t.Helper()
	_, _, err := run(t, stdin, args...)
	if err == nil {
		t.Fatalf("sluice %s: no error, want one containing %q", strings.Join(args, " "), wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("sluice %s: error %q does not contain %q", strings.Join(args, " "), err, w)
		}
	}
}

// signalWriter is a concurrency-safe buffer that closes seen once the text
// written so far contains want.
type signalWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	once sync.Once
	seen chan struct{}
}

func newSignalWriter(want string) *signalWriter {
	return &signalWriter{want: want, seen: make(chan struct{})}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
