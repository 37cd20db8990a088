// Package broker is Sluice's Kafka-compatible broker: a single node serving
// the Kafka wire protocol on a durable segmented log, embeddable in any Go
// program and run by `sluice broker`.
//
//	b, err := broker.New(broker.Config{DataDir: dir, Listen: "127.0.0.1:0"})
//	if err != nil { ... }
//	go b.Run(ctx)
//	client, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
//
// What clients get: the APIs listed in ../shared/COMPAT.md that the broker
// advertises in ApiVersions: Produce, Fetch, ListOffsets, Metadata, topic
// administration, configs, DeleteRecords, consumer groups with committed
// offsets, and transactions (InitProducerId 0-4 idempotent or with a
// transactional id, AddPartitionsToTxn 0-3, AddOffsetsToTxn 0-3, EndTxn 0-3,
// TxnOffsetCommit 0-3 with KIP-447's generation checks). The
// transaction.version feature and KIP-890 are not advertised.
//
// Transactions: the coordinator keeps each transactional id's state in
// __transaction_state (Kafka's formats), writes COMMIT/ABORT markers to
// every partition of a transaction before reporting it complete, resumes
// commits and aborts a restart interrupted, fences a producer whose id is
// initialised again, and aborts transactions open longer than their
// transaction.timeout.ms (checked every Config.TransactionAbortInterval).
// Partitions serve read_committed fetches up to their last stable offset,
// with the aborted transactions of the fetched range; ListOffsets with
// read_committed answers the last stable offset. The cleaner drops aborted
// transactional data from compacted topics and keeps markers.
//
// Durability: a produce is acknowledged only after its bytes were written to
// the segment file, so killing the process loses nothing acknowledged;
// Config.Fsync decides when they reach the disk. On start, every partition's
// tail is checked batch by batch (length and CRC32C) and cut at the first
// torn or corrupt batch; what was cut is logged.
package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/pprof"
	"slices"
	"sync"
	"time"

	"github.com/sluicehq/sluice/broker/internal/cluster"
	"github.com/sluicehq/sluice/broker/internal/configs"
	"github.com/sluicehq/sluice/broker/internal/group"
	"github.com/sluicehq/sluice/broker/internal/handler"
	"github.com/sluicehq/sluice/broker/internal/txn"
)

// Errors returned by Broker methods.
var (
	// ErrRunning is returned by a second call to Run.
	ErrRunning = errors.New("broker: Run called twice")
)

// Broker is a running single-node Kafka-compatible broker.
type Broker struct {
	cfg     Config
	ln      net.Listener
	cluster *cluster.Cluster
	groups  *group.Coordinator
	txns    *txn.Coordinator
	handler *handler.Handler

	ctx    context.Context // the broker's lifetime
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		running bool
		closed  bool
		conns   map[net.Conn]struct{}
	}
	closeOnce sync.Once
	closeErr  error
}

// New validates cfg, opens (and if needed recovers) the data directory and
// binds the listener, so Addr is valid as soon as New returns. Call Run to
// serve, and Close to release everything.
func New(cfg Config) (*Broker, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	defaults, err := configs.ValidateAll(cfg.TopicDefaults)
	if err != nil {
		return nil, fmt.Errorf("broker: Config.TopicDefaults: %w", err)
	}
	cl, err := cluster.Open(cluster.Options{
		DataDir:  cfg.DataDir,
		Resolver: configs.Resolver{BrokerDefaults: defaults},
		Logger:   cfg.Logger,
		Now:      cfg.Now,
		FS:       cfg.FS,
	})
	if err != nil {
		return nil, fmt.Errorf("broker: open data dir: %w", err)
	}
	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			cl.Close()
			return nil, fmt.Errorf("broker: listen on %s: %w", cfg.Listen, err)
		}
	}
	adv := cfg.Advertise
	if adv == "" {
		adv = ln.Addr().String()
		if host, port, err := net.SplitHostPort(adv); err == nil {
			if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
				adv = net.JoinHostPort("127.0.0.1", port)
				cfg.Logger.Warn("listening on all interfaces but advertising 127.0.0.1; set Advertise for remote clients", "listen", ln.Addr().String())
			}
		}
	}
	host, port, err := handler.SplitHostPort(adv)
	if err != nil {
		ln.Close()
		cl.Close()
		return nil, fmt.Errorf("broker: advertised address %q: %w", adv, err)
	}
	offsets := &cluster.OffsetsStore{C: cl, NumParts: cfg.OffsetsTopicPartitions, SyncOnAck: cfg.Fsync == FsyncAlways}
	groups, err := group.New(group.Config{
		MinSessionTimeout: cfg.GroupMinSessionTimeout,
		MaxSessionTimeout: cfg.GroupMaxSessionTimeout,
		OffsetsRetention:  cfg.OffsetsRetention,
		Logger:            cfg.Logger,
		Now:               cfg.Now,
	}, offsets)
	if err != nil {
		ln.Close()
		cl.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	txnLog := &cluster.OffsetsStore{C: cl, Topic: cluster.TransactionTopic, NumParts: cfg.TransactionTopicPartitions, SyncOnAck: cfg.Fsync == FsyncAlways}
	txns, err := txn.New(txn.Config{
		MaxTimeout: cfg.TransactionMaxTimeout,
		SyncOnAck:  cfg.Fsync == FsyncAlways,
		Logger:     cfg.Logger,
		Now:        cfg.Now,
	}, txnLog, offsets, groups)
	if err != nil {
		groups.Close()
		ln.Close()
		cl.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	b := &Broker{cfg: cfg, ln: ln, cluster: cl, groups: groups, txns: txns}
	b.handler = handler.New(handler.Config{
		NodeID:            cfg.NodeID,
		AdvertiseHost:     host,
		AdvertisePort:     port,
		SyncOnAck:         cfg.Fsync == FsyncAlways,
		AutoCreateTopics:  !cfg.DisableAutoCreateTopics,
		DefaultPartitions: cfg.DefaultPartitions,
		MaxRequestBytes:   cfg.MaxRequestBytes,
		Logger:            cfg.Logger,
		Now:               cfg.Now,
	}, cl, groups, offsets, txns, txnLog)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.mu.conns = map[net.Conn]struct{}{}
	return b, nil
}

// Addr returns the address the broker listens on (host:port).
func (b *Broker) Addr() string { return b.ln.Addr().String() }

// Run serves clients until ctx is done or Close is called, then closes the
// broker. It returns nil after a clean stop.
func (b *Broker) Run(ctx context.Context) error {
	b.mu.Lock()
	if b.mu.running {
		b.mu.Unlock()
		return ErrRunning
	}
	b.mu.running = true
	b.mu.Unlock()

	b.goNamed("retention", func(ctx context.Context) { every(ctx, b.cfg.RetentionCheckInterval, b.EnforceRetention) })
	b.goNamed("cleaner", func(ctx context.Context) { every(ctx, b.cfg.CleanerInterval, func() { b.CleanLogs(ctx) }) })
	b.goNamed("txn-timeouts", func(ctx context.Context) {
		every(ctx, b.cfg.TransactionAbortInterval, func() { b.AbortTimedOutTransactions() })
	})
	if b.cfg.Fsync == FsyncInterval {
		b.goNamed("fsync", func(ctx context.Context) { every(ctx, b.cfg.FsyncInterval, b.syncAll) })
	}
	stop := context.AfterFunc(ctx, func() { b.Close() })
	defer stop()
	b.cfg.Logger.Info("broker listening", "addr", b.Addr(), "config", b.cfg.String())
	for {
		conn, err := b.ln.Accept()
		if err != nil {
			if b.ctx.Err() != nil {
				return b.Close()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			b.Close()
			return fmt.Errorf("broker: accept: %w", err)
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		b.mu.Lock()
		if b.mu.closed {
			b.mu.Unlock()
			conn.Close()
			continue
		}
		b.mu.conns[conn] = struct{}{}
		b.mu.Unlock()
		b.goNamed("conn", func(ctx context.Context) {
			b.handler.Serve(ctx, conn)
			b.mu.Lock()
			delete(b.mu.conns, conn)
			b.mu.Unlock()
		})
	}
}

// every runs fn each period until ctx ends.
func every(ctx context.Context, period time.Duration, fn func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// syncAll fsyncs every partition with unsynced data (the interval policy).
func (b *Broker) syncAll() {
	b.cluster.EachPartition(func(p *cluster.Partition) {
		l := p.Log()
		if err := l.Sync(l.EndOffset()); err != nil {
			b.cfg.Logger.Error("periodic fsync failed", "topic", p.Topic, "partition", p.Index, "err", err)
		}
	})
}

func (b *Broker) goNamed(name string, fn func(context.Context)) {
	b.wg.Go(func() {
		pprof.Do(b.ctx, pprof.Labels("broker", name), fn)
	})
}

// AbortTimedOutTransactions aborts, now, every transaction open longer
// than its transaction.timeout.ms, fencing its producer (the broker also
// does it every Config.TransactionAbortInterval). It returns how many were
// aborted.
func (b *Broker) AbortTimedOutTransactions() int { return b.txns.AbortExpired() }

// CleanLogs compacts every partition of a compacted topic that is due
// (dirty ratio at least min.cleanable.dirty.ratio, or a segment older than
// max.compaction.lag.ms), most urgent first, like Kafka's log cleaner. The
// broker runs it every Config.CleanerInterval; it returns the partitions
// cleaned.
func (b *Broker) CleanLogs(ctx context.Context) int {
	type cand struct {
		p     *cluster.Partition
		ratio float64
		must  bool
	}
	var cands []cand
	b.cluster.EachPartition(func(p *cluster.Partition) {
		if !p.Log().Config().Compact {
			return
		}
		r, must := p.Log().CleanableRatio()
		if must || (r > 0 && r >= p.Log().Config().MinCleanableDirtyRatio) {
			cands = append(cands, cand{p, r, must})
		}
	})
	slices.SortFunc(cands, func(a, c cand) int {
		if a.must != c.must {
			if a.must {
				return -1
			}
			return 1
		}
		return cmp.Compare(c.ratio, a.ratio)
	})
	n := 0
	for _, c := range cands {
		if ctx.Err() != nil {
			break
		}
		st, cleaned, err := c.p.MaybeClean()
		switch {
		case err != nil:
			b.cfg.Logger.Error("log cleaner failed", "topic", c.p.Topic, "partition", c.p.Index, "err", err)
		case cleaned:
			n++
			b.cfg.Logger.Info("log cleaner compacted a partition", "topic", c.p.Topic, "partition", c.p.Index,
				"records_removed", st.RecordsRemoved, "markers_removed", st.MarkersRemoved, "bytes_read", st.BytesRead, "bytes_written", st.BytesWritten, "duration", st.Duration)
		}
	}
	return n
}

// EnforceRetention applies retention.ms, retention.bytes and segment.ms to
// every partition, and offsets.retention.minutes to empty groups, now (the
// broker also does it every Config.RetentionCheckInterval).
func (b *Broker) EnforceRetention() {
	if n := b.groups.ExpireOffsets(); n > 0 {
		b.cfg.Logger.Info("expired the offsets of empty groups", "groups", n)
	}
	b.cluster.EachPartition(func(p *cluster.Partition) {
		if n, err := p.Log().EnforceRetention(); err != nil {
			b.cfg.Logger.Error("retention failed", "topic", p.Topic, "partition", p.Index, "err", err)
		} else if n > 0 {
			b.cfg.Logger.Info("retention deleted segments", "topic", p.Topic, "partition", p.Index, "segments", n)
		}
	})
}

// Close stops accepting, closes every connection, waits for the broker's
// goroutines, syncs and closes the logs. It is idempotent and safe to call
// concurrently with Run.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.mu.closed = true
		for c := range b.mu.conns {
			c.Close()
		}
		b.mu.Unlock()
		b.cancel()
		lnErr := b.ln.Close()
		if errors.Is(lnErr, net.ErrClosed) {
			lnErr = nil
		}
		b.wg.Wait()
		b.groups.Close()
		b.closeErr = errors.Join(lnErr, b.cluster.Close())
	})
	return b.closeErr
}
