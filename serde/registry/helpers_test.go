package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker/brokertest"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startServer starts a registry on 127.0.0.1:0 against seed and waits
// until it is the elected writer or knows one.
func startServer(t testing.TB, seed string, opts ...func(*Config)) *Server {
	t.Helper()
	cfg := Config{Brokers: []kgo.Opt{kgo.SeedBrokers(seed)}, Listen: "127.0.0.1:0"}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	ran := false
	t.Cleanup(func() {
		s.Close()
		if ran {
			return
		}
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case <-s.ready:
	case err := <-done:
		ran = true
		t.Fatalf("Run: %v", err)
	case <-ctx.Done():
		t.Fatal("registry not ready after 30s")
	}
	if _, err := s.elect.leader(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// brokerAddr starts an in-process broker.
func brokerAddr(t testing.TB) string {
	t.Helper()
	return brokertest.Start(t).Addr()
}

// kfakeAddr starts franz-go's fake cluster.
func kfakeAddr(t testing.TB) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// backends runs fn on the in-process broker and on kfake.
func backends(t *testing.T, fn func(t *testing.T, seed string)) {
	t.Run("broker", func(t *testing.T) { fn(t, brokerAddr(t)) })
	t.Run("kfake", func(t *testing.T) { fn(t, kfakeAddr(t)) })
}

type httpResult struct {
	status int
	ctype  string
	body   []byte
}

func (r httpResult) json(t testing.TB) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return v
}

func (r httpResult) code(t testing.TB) int {
	t.Helper()
	var e Error
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return e.Code
}

func do(t testing.TB, base, method, path string, body any) httpResult {
	t.Helper()
	var rd io.Reader
	if body != nil {
		if s, ok := body.(string); ok {
			rd = bytes.NewReader([]byte(s))
		} else {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpResult{resp.StatusCode, resp.Header.Get("Content-Type"), b}
}
