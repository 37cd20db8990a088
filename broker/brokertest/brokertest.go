// Package brokertest starts in-process brokers for tests.
//
//	b := brokertest.Start(t)
//	client, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
//
// The broker listens on 127.0.0.1 on an ephemeral port, keeps its data in
// t.TempDir(), logs through t.Log when the test fails verbosely, and is
// closed by t.Cleanup.
package brokertest

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/sluicehq/sluice/broker"
)

// Broker is a broker started for a test.
type Broker struct {
	*broker.Broker
	// Config is the configuration it was started with (defaults filled).
	Config broker.Config
	done   chan error
}

// Option changes the configuration before the broker starts.
type Option func(*broker.Config)

// WithConfig applies fn to the configuration.
func WithConfig(fn func(*broker.Config)) Option { return Option(fn) }

// DataDir makes the broker use dir instead of a new temporary directory,
// e.g. to restart on the data of a previous broker.
func DataDir(dir string) Option { return func(c *broker.Config) { c.DataDir = dir } }

// Start starts a broker and registers its shutdown with t.Cleanup. It fails
// the test if the broker cannot start.
func Start(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	cfg := broker.Config{
		DataDir: t.TempDir(),
		Listen:  "127.0.0.1:0",
		Logger:  slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatalf("brokertest: start broker: %v", err)
	}
	cfg.EnsureDefaults()
	tb := &Broker{Broker: b, Config: cfg, done: make(chan error, 1)}
	go func() { tb.done <- b.Run(context.Background()) }()
	t.Cleanup(func() { tb.Stop(t) })
	return tb
}

// Stop closes the broker and waits for Run to return, failing the test on
// an error. It may be called before the test ends (e.g. to restart on the
// same DataDir); later calls do nothing.
func (b *Broker) Stop(t testing.TB) {
	t.Helper()
	if err := b.Close(); err != nil {
		t.Errorf("brokertest: close broker: %v", err)
	}
	if b.done == nil {
		return
	}
	if err := <-b.done; err != nil && !errors.Is(err, broker.ErrRunning) {
		t.Errorf("brokertest: broker run: %v", err)
	}
	b.done = nil
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}
