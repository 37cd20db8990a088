// Package broker is Sluice's Kafka-compatible broker: a single node that
// serves the Kafka wire protocol on a durable segmented log.
package broker

import (
	"context"
	"net"
	"sync"
)

// Broker is a running single-node Kafka-compatible broker.
type Broker struct {
	cfg       Config
	ln        net.Listener
	closeOnce sync.Once
}

// New validates cfg, opens the data directory and binds the listener, so
// Addr is valid as soon as New returns.
func New(cfg Config) (*Broker, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, err
		}
	}
	return &Broker{cfg: cfg, ln: ln}, nil
}

// Addr returns the address the broker listens on.
func (b *Broker) Addr() string { return b.ln.Addr().String() }

// Run serves clients until ctx is done or Close is called.
func (b *Broker) Run(ctx context.Context) error {
	<-ctx.Done()
	return b.Close()
}

// Close stops the broker. It is idempotent.
func (b *Broker) Close() error {
	var err error
	b.closeOnce.Do(func() { err = b.ln.Close() })
	return err
}
