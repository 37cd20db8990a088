// Package registrytest starts schema registries for tests.
//
//	b := brokertest.Start(t)
//	reg := registrytest.Start(t, b.Addr())
//	cl, err := sr.NewClient(sr.URLs(reg.URL()))
//
// The registry listens on 127.0.0.1 on an ephemeral port, keeps its schemas
// in the cluster's _schemas topic, is ready (topic replayed, writer elected)
// when Start returns, and is closed by t.Cleanup.
package registrytest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/serde/registry"
)

// Start starts a registry against the Kafka cluster at seeds and waits
// until it accepts writes. opts change the configuration first.
func Start(t testing.TB, seeds string, opts ...func(*registry.Config)) *registry.Server {
	t.Helper()
	cfg := registry.Config{Brokers: []kgo.Opt{kgo.SeedBrokers(seeds)}, Listen: "127.0.0.1:0"}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := registry.NewServer(cfg)
	if err != nil {
		t.Fatalf("registrytest: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	stopped := false
	t.Cleanup(func() {
		s.Close()
		if stopped {
			return
		}
		if err := <-done; err != nil {
			t.Errorf("registrytest: Run: %v", err)
		}
	})
	// Ready once it answers HTTP (the topic is replayed) and knows the
	// elected writer (writes will not wait).
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		resp, err := http.Get(s.URL() + "/mode")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 && s.Writer() != "" {
				return s
			}
		}
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("registrytest: Run: %v", err)
		case <-ctx.Done():
			t.Fatalf("registrytest: registry not ready: %v", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
