package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Config configures a registry server.
type Config struct {
	// Brokers are the options of the franz-go clients the server uses to
	// reach Kafka; at least kgo.SeedBrokers. Required.
	Brokers []kgo.Opt
	// Topic is the schemas topic; default "_schemas" (Confluent's
	// kafkastore.topic).
	Topic string
	// Listen is the HTTP listen address; default "127.0.0.1:8081".
	Listen string
	// Listener, if set, is used instead of listening on Listen.
	Listener net.Listener
	// GroupID is the consumer group used to elect the one writer among the
	// instances sharing Topic; default "schema-registry".
	GroupID string
	// AdvertisedURL is the URL other instances forward writes to; default
	// "http://" + the listener's address.
	AdvertisedURL string
	// WriteTimeout bounds how long a write waits for an elected writer and
	// for Kafka; default 30s.
	WriteTimeout time.Duration
	// Logger receives the server's logs; default discards.
	Logger *slog.Logger
}

// EnsureDefaults fills unset fields with their defaults.
func (c *Config) EnsureDefaults() {
	if c.Topic == "" {
		c.Topic = "_schemas"
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8081"
	}
	if c.GroupID == "" {
		c.GroupID = "schema-registry"
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports a configuration that cannot work.
func (c *Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("serde/registry: Config.Brokers is required")
	}
	return nil
}

// Server is a Schema Registry serving Confluent's REST API over HTTP and
// keeping its data in a Kafka topic.
type Server struct {
	cfg     Config
	ln      net.Listener
	url     string
	store   *store
	elect   *election
	handler http.Handler
	http    *http.Server
	logger  *slog.Logger

	writeMu   sync.Mutex // serialises writes on the elected instance
	ran       chan struct{}
	closeOnce sync.Once
	cancel    context.CancelFunc
	ctx       context.Context
	wg        sync.WaitGroup
	ready     chan struct{} // closed once the topic has been replayed
}

// NewServer validates cfg, binds the listener (so Addr is valid at once) and
// creates the Kafka clients. Nothing is served until Run.
func NewServer(cfg Config) (*Server, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("serde/registry: listen: %w", err)
		}
	}
	s := &Server{cfg: cfg, ln: ln, logger: cfg.Logger, ran: make(chan struct{}, 1), ready: make(chan struct{})}
	s.url = cfg.AdvertisedURL
	if s.url == "" {
		s.url = "http://" + ln.Addr().String()
	}
	var err error
	if s.store, err = newStore(cfg.Brokers, cfg.Topic, cfg.Logger); err != nil {
		ln.Close()
		return nil, err
	}
	if s.elect, err = newElection(cfg.Brokers, cfg.GroupID, cfg.Topic, s.url); err != nil {
		s.store.close()
		ln.Close()
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.handler = s.routes()
	s.http = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL returns the server's advertised URL.
func (s *Server) URL() string { return s.url }

// Handler returns the REST API handler; it waits for the topic to be
// replayed before answering.
func (s *Server) Handler() http.Handler { return s.handler }

// Run creates the topic if missing, replays it, joins the writer election
// and serves HTTP until ctx ends or Close is called. It can be called once.
func (s *Server) Run(ctx context.Context) error {
	select {
	case s.ran <- struct{}{}:
	default:
		return errors.New("serde/registry: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-ctx.Done():
		case <-s.ctx.Done():
		}
		cancel()
	}()
	if err := s.store.ensureTopic(ctx); err != nil {
		return err
	}
	end, err := s.store.endOffset(ctx)
	if err != nil {
		return err
	}
	s.wg.Go(func() { s.store.run(s.ctx) })
	if end > 0 {
		if err := s.store.waitFor(ctx, end-1); err != nil {
			return err
		}
	}
	close(s.ready)
	s.wg.Go(func() { s.elect.run(s.ctx) })
	s.logger.Info("registry: serving", "addr", s.Addr(), "topic", s.cfg.Topic)
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(s.ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) || s.ctx.Err() != nil {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	_ = s.http.Shutdown(sctx)
	return nil
}

// Close stops the server and its clients and waits for its goroutines. It
// is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		_ = s.http.Close()
		s.ln.Close()
		s.elect.close()
		s.wg.Wait()
		s.store.close()
	})
	return nil
}

// Writer returns the URL of the elected writer, "" while none is known
// (before the first election, and during rebalances).
func (s *Server) Writer() string {
	s.elect.mu.Lock()
	defer s.elect.mu.Unlock()
	return s.elect.mu.leader
}

// IsWriter reports whether this instance is the elected writer.
func (s *Server) IsWriter() bool {
	s.elect.mu.Lock()
	defer s.elect.mu.Unlock()
	return s.elect.mu.leader == s.url
}

// forward sends the request to the leader.
func (s *Server) forward(ctx context.Context, r *http.Request, leader string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, r.Method, leader+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set(headerForwarded, s.url)
	return http.DefaultClient.Do(req)
}

const (
	headerForwarded = "X-Sluice-Registry-Forwarded"
	headerOffset    = "X-Sluice-Registry-Offset"
)

// write runs fn on the elected writer: here if this instance is the writer
// (fn returns the offset of its last write, or -1), or by forwarding the
// HTTP request to it. After a forwarded write, it waits until this
// instance has read the write, so a client reads its writes on any
// instance.
func (s *Server) write(w http.ResponseWriter, r *http.Request, body []byte, fn func(ctx context.Context) (any, int, int64, error)) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WriteTimeout)
	defer cancel()
	var resp *http.Response
	for {
		changed := s.elect.changes()
		leader, err := s.elect.leader(ctx)
		if err != nil {
			writeErr(w, apiErr(CodeForwardingError, "Error while forwarding the request to the leader: no leader elected (%v)", err))
			return
		}
		if leader == s.url {
			s.writeMu.Lock()
			var (
				v      any
				status int
				off    int64
			)
			err := s.store.catchUp(ctx)
			if err != nil {
				err = apiErr(CodeStoreError, "Error while reading the schemas topic: %v", err)
			} else {
				v, status, off, err = fn(ctx)
			}
			s.writeMu.Unlock()
			if err != nil {
				writeErr(w, err)
				return
			}
			if off < 0 {
				// Nothing written (an idempotent registration): a
				// forwarding instance still waits until it has read what
				// this answer was based on.
				off = s.store.applied() - 1
			}
			if off >= 0 {
				w.Header().Set(headerOffset, strconv.FormatInt(off, 10))
			}
			writeJSON(w, status, v)
			return
		}
		if r.Header.Get(headerForwarded) != "" {
			writeErr(w, apiErr(CodeForwardingError, "Error while forwarding the request to the leader: this instance is not the leader (leader is %s)", leader))
			return
		}
		resp, err = s.forward(ctx, r, leader, body)
		if err == nil {
			break
		}
		// The leader may be gone (a rebalance is coming): wait for a new
		// one, or retry shortly, until the write timeout.
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			writeErr(w, apiErr(CodeForwardingError, "Error while forwarding the request to the leader %s: %v", leader, err))
			return
		}
		t.Stop()
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		writeErr(w, apiErr(CodeForwardingError, "Error while forwarding the request to the leader: %v", err))
		return
	}
	if o := resp.Header.Get(headerOffset); o != "" {
		if off, err := strconv.ParseInt(o, 10, 64); err == nil {
			if err := s.store.waitFor(ctx, off); err != nil {
				writeErr(w, apiErr(50002, "Write to the Kafka store timed out: %v", err))
				return
			}
			w.Header().Set(headerOffset, o)
		}
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(rb)
}
