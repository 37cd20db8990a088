// Package bench is the load generator behind `sluice bench`: it produces and
// consumes records through franz-go against any Kafka address and reports
// records/s, MB/s and, for produce, per-record latency percentiles measured
// from the Produce call to its promise. Results print for people and as a Go
// benchfmt line, so several runs compare with benchstat:
//
//	sluice bench produce --records 1000000 | tee -a new.txt
//	benchstat old.txt new.txt
//
// # Comparing with franz-go's kfake
//
// PERF.md asks for a run against kfake, an in-memory Kafka, next to every run
// against the broker under test. kfake may only be imported by tests, so the
// test TestServeKfake in cmd/sluice serves it on $SLUICE_KFAKE_LISTEN until
// interrupted (it is skipped when the variable is unset). Build the test
// binary, so kfake runs as one process that /usr/bin/time -v can measure and
// not under -race:
//
//	go test -c -o /tmp/kfake.test ./cmd/sluice
//	SLUICE_KFAKE_LISTEN=127.0.0.1:19092 /tmp/kfake.test -test.run TestServeKfake -test.timeout 0 &
//	for i in 1 2 3 4 5; do
//		sluice bench produce -q --brokers 127.0.0.1:19092 --topic b$i >> kfake.txt
//		sluice bench produce -q --brokers 127.0.0.1:9092 --topic b$i >> sluice.txt
//	done
//	kill -INT %1
//	benchstat kfake.txt sluice.txt
//
// (`SLUICE_KFAKE_LISTEN=... go test ./cmd/sluice -run TestServeKfake -timeout 0 -v`
// does the same in one step; stop it with Ctrl-C.)
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/cli"
)

// DefaultLinger asks for franz-go's default linger (10ms), or none with
// Sequential, where lingering would only add to every record's latency.
const DefaultLinger time.Duration = -1

// Config configures a benchmark run. Zero fields take the defaults noted.
type Config struct {
	Brokers     []string      // required
	Topic       string        // default "sluice-bench"
	Records     int64         // default 1,000,000
	RecordSize  int           // value bytes per record; default 100
	Partitions  int32         // partitions of the topic if it is created; default 1
	Acks        string        // all (default), 1 or 0
	Compression string        // none (default), gzip, snappy, lz4, zstd
	Linger      time.Duration // DefaultLinger or a duration >= 0
	MaxInflight int           // produce requests in flight per broker; 0 = franz-go's default; needs NoIdempotence
	// NoIdempotence turns off franz-go's idempotent producer, which is on
	// by default and needs acks=all.
	NoIdempotence bool
	Sequential    bool // one record at a time, waiting for each ack
	Clients       int  // producer clients sharing the records; default 1

	// Idle bounds how long Consume waits without receiving a record before
	// it gives up. Default 10s.
	Idle time.Duration

	// Progress, if not nil, receives a line every ProgressInterval (default
	// 1s) while a run lasts.
	Progress         io.Writer
	ProgressInterval time.Duration
}

func (c *Config) ensureDefaults() {
	if c.Topic == "" {
		c.Topic = "sluice-bench"
	}
	if c.Records == 0 {
		c.Records = 1_000_000
	}
	if c.RecordSize == 0 {
		c.RecordSize = 100
	}
	if c.Partitions == 0 {
		c.Partitions = 1
	}
	if c.Acks == "" {
		c.Acks = "all"
	}
	if c.Compression == "" {
		c.Compression = "none"
	}
	if c.Clients == 0 {
		c.Clients = 1
	}
	if c.Idle <= 0 {
		c.Idle = 10 * time.Second
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = time.Second
	}
}

// validate checks c after ensureDefaults and returns the producer options.
func (c *Config) validate() ([]kgo.Opt, error) {
	switch {
	case len(c.Brokers) == 0:
		return nil, errors.New("bench: no brokers")
	case c.Records < 0:
		return nil, fmt.Errorf("invalid --records %d: must be > 0", c.Records)
	case c.RecordSize < 0:
		return nil, fmt.Errorf("invalid --record-size %d: must be >= 0", c.RecordSize)
	case c.Partitions < 0:
		return nil, fmt.Errorf("invalid --partitions %d: must be > 0", c.Partitions)
	case c.Clients < 0:
		return nil, fmt.Errorf("invalid --clients %d: must be > 0", c.Clients)
	case c.MaxInflight < 0:
		return nil, fmt.Errorf("invalid --max-inflight %d: must be > 0", c.MaxInflight)
	case c.Linger < 0 && c.Linger != DefaultLinger:
		return nil, fmt.Errorf("invalid --linger %v: must be >= 0", c.Linger)
	}
	acks, err := cli.ParseAcks(c.Acks)
	if err != nil {
		return nil, err
	}
	codec, err := cli.ParseCompression(c.Compression)
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{kgo.RequiredAcks(acks), kgo.ProducerBatchCompression(codec)}
	if !c.NoIdempotence {
		if acks != kgo.AllISRAcks() {
			return nil, fmt.Errorf("--idempotent needs --acks all (got --acks %s); use --idempotent=false", c.Acks)
		}
		if c.MaxInflight > 0 {
			return nil, errors.New("--max-inflight needs --idempotent=false (franz-go pipelines idempotent requests itself)")
		}
	} else {
		opts = append(opts, kgo.DisableIdempotentWrite())
		if c.MaxInflight > 0 {
			opts = append(opts, kgo.MaxProduceRequestsInflightPerBroker(c.MaxInflight))
		}
	}
	switch {
	case c.Linger >= 0:
		opts = append(opts, kgo.ProducerLinger(c.Linger))
	case c.Sequential:
		opts = append(opts, kgo.ProducerLinger(0))
	}
	return opts, nil
}

// Result is the outcome of one run.
type Result struct {
	Op         string        // "produce" or "consume"
	Config     Config        // the configuration run, defaults filled in
	Partitions int32         // partitions the topic actually has
	Records    int64         // records produced (acknowledged) or consumed
	Bytes      int64         // key and value bytes of those records
	Elapsed    time.Duration // from the first Produce or poll to the last ack or record
	Latency    *Histogram    // produce only: per-record latency
}

// RecordsPerSec is the throughput in records per second.
func (r *Result) RecordsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Records) / r.Elapsed.Seconds()
}

// MBPerSec is the throughput in megabytes (10^6 bytes) of keys and values per second.
func (r *Result) MBPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) / 1e6 / r.Elapsed.Seconds()
}

// ensureTopic creates cfg.Topic with cfg.Partitions partitions if it does
// not exist and returns its partition count.
func ensureTopic(ctx context.Context, cl *kgo.Client, cfg *Config) (int32, error) {
	adm := kadm.NewClient(cl)
	for range 3 {
		details, err := adm.ListTopics(ctx, cfg.Topic)
		if err != nil {
			return 0, fmt.Errorf("look up topic %q: %w", cfg.Topic, err)
		}
		if d, ok := details[cfg.Topic]; ok && d.Err == nil && len(d.Partitions) > 0 {
			return int32(len(d.Partitions)), nil
		}
		err = cli.CreateTopic(ctx, adm, cli.TopicSpec{Name: cfg.Topic, Partitions: cfg.Partitions, ReplicationFactor: 1})
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return 0, err
		}
		if err == nil {
			return cfg.Partitions, nil
		}
		// Created concurrently by someone else: look again.
	}
	return 0, fmt.Errorf("topic %q exists but its metadata is not available", cfg.Topic)
}

// progress prints done/total every interval until stop is closed.
func progress(w io.Writer, op string, every time.Duration, total int64, done *atomic.Int64, stop <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	start, last, lastN := time.Now(), time.Now(), int64(0)
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			n := done.Load()
			rate := float64(n-lastN) / now.Sub(last).Seconds()
			fmt.Fprintf(w, "%s: %d/%d records (%.0f%%), %.0f rec/s, %s elapsed\n",
				op, n, total, 100*float64(n)/float64(total), rate, now.Sub(start).Round(time.Second))
			last, lastN = now, n
		}
	}
}

// runProgress starts progress reporting if cfg asks for it and returns the
// function that stops it.
func runProgress(cfg *Config, op string, done *atomic.Int64) (stop func()) {
	if cfg.Progress == nil {
		return func() {}
	}
	ch := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { progress(cfg.Progress, op, cfg.ProgressInterval, cfg.Records, done, ch) })
	return func() { close(ch); wg.Wait() }
}

// Produce writes cfg.Records records of cfg.RecordSize random bytes to
// cfg.Topic (created if missing) and measures throughput and latency.
func Produce(ctx context.Context, cfg Config) (*Result, error) {
	cfg.ensureDefaults()
	popts, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	clients := make([]*kgo.Client, 0, cfg.Clients)
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	for range cfg.Clients {
		cl, err := cli.Connect(ctx, cfg.Brokers, append(popts, kgo.DefaultProduceTopic(cfg.Topic))...)
		if err != nil {
			return nil, err
		}
		clients = append(clients, cl)
	}
	parts, err := ensureTopic(ctx, clients[0], &cfg)
	if err != nil {
		return nil, err
	}

	// One random value shared by every record: franz-go never writes to it.
	value := make([]byte, cfg.RecordSize)
	_, _ = rand.NewChaCha8([32]byte{'s', 'l', 'u', 'i', 'c', 'e'}).Read(value)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var acked atomic.Int64
	stopProgress := runProgress(&cfg, "produce", &acked)
	hists := make([]*Histogram, len(clients))
	var wg sync.WaitGroup
	start := time.Now()
	for i, cl := range clients {
		n := cfg.Records / int64(len(clients))
		if int64(i) < cfg.Records%int64(len(clients)) {
			n++
		}
		hists[i] = NewHistogram()
		wg.Go(func() {
			var err error
			if cfg.Sequential {
				err = produceSequential(ctx, cl, n, value, hists[i], &acked)
			} else {
				err = produceAsync(ctx, cl, n, value, hists[i], &acked)
			}
			if err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	if err := context.Cause(ctx); err != nil {
		return nil, fmt.Errorf("produce to %q after %d records: %w", cfg.Topic, acked.Load(), err)
	}
	for _, h := range hists[1:] {
		hists[0].Merge(h)
	}
	return &Result{
		Op: "produce", Config: cfg, Partitions: parts, Records: acked.Load(),
		Bytes: acked.Load() * int64(cfg.RecordSize), Elapsed: elapsed, Latency: hists[0],
	}, nil
}

// produceAsync produces n records as fast as franz-go takes them. Latency is
// measured from the Produce call (franz-go stamps an unset Timestamp with
// time.Now there) to the promise, which franz-go calls serially per client,
// so h needs no lock.
func produceAsync(ctx context.Context, cl *kgo.Client, n int64, value []byte, h *Histogram, acked *atomic.Int64) error {
	pool := sync.Pool{New: func() any { return new(kgo.Record) }}
	var first atomic.Pointer[error]
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			first.CompareAndSwap(nil, &err)
			return
		}
		h.Record(time.Since(r.Timestamp))
		acked.Add(1)
		*r = kgo.Record{}
		pool.Put(r)
	}
	for range n {
		if first.Load() != nil || ctx.Err() != nil {
			break
		}
		r := pool.Get().(*kgo.Record)
		r.Value = value
		cl.Produce(ctx, r, promise)
	}
	ferr := cl.Flush(ctx)
	if p := first.Load(); p != nil {
		return *p
	}
	return ferr
}

// produceSequential produces n records one at a time, each after the
// previous one was acknowledged.
func produceSequential(ctx context.Context, cl *kgo.Client, n int64, value []byte, h *Histogram, acked *atomic.Int64) error {
	var r kgo.Record
	for range n {
		r = kgo.Record{Value: value}
		start := time.Now()
		if err := cl.ProduceSync(ctx, &r).FirstErr(); err != nil {
			return err
		}
		h.Record(time.Since(start))
		acked.Add(1)
	}
	return nil
}

// Consume reads cfg.Records records from the start of cfg.Topic and measures
// throughput. It fails if the topic holds fewer records than that (no record
// for cfg.Idle).
func Consume(ctx context.Context, cfg Config) (*Result, error) {
	cfg.ensureDefaults()
	if _, err := cfg.validate(); err != nil {
		return nil, err
	}
	cl, err := cli.Connect(ctx, cfg.Brokers,
		kgo.ConsumeTopics(cfg.Topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	details, err := kadm.NewClient(cl).ListTopics(ctx, cfg.Topic)
	if err != nil {
		return nil, fmt.Errorf("look up topic %q: %w", cfg.Topic, err)
	}
	d := details[cfg.Topic]
	if errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		return nil, fmt.Errorf("topic %q does not exist: run `sluice bench produce --topic %s --records %d` first, or pass --produce-first: %w",
			cfg.Topic, cfg.Topic, cfg.Records, d.Err)
	}
	if d.Err != nil {
		return nil, &cli.TopicError{Topic: cfg.Topic, Op: "consume from", Err: d.Err}
	}

	var got, bytes atomic.Int64
	stopProgress := runProgress(&cfg, "consume", &got)
	defer stopProgress()
	start, lastRecord := time.Now(), time.Now()
	for got.Load() < cfg.Records {
		pctx, cancel := context.WithDeadline(ctx, lastRecord.Add(cfg.Idle))
		fs := cl.PollRecords(pctx, int(min(cfg.Records-got.Load(), 1<<20)))
		cancel()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil && !errors.Is(err, context.DeadlineExceeded) {
				ferr = fmt.Errorf("fetch %s[%d]: %w", t, p, err)
			}
		})
		if ferr != nil {
			return nil, ferr
		}
		if fs.NumRecords() == 0 && pctx.Err() != nil {
			return nil, fmt.Errorf("topic %q gave only %d of %d records (none for %v): produce them first "+
				"with `sluice bench produce --records %d` or pass --produce-first", cfg.Topic, got.Load(), cfg.Records, cfg.Idle, cfg.Records)
		}
		var n, b int64
		for r := range fs.RecordsAll() {
			n++
			b += int64(len(r.Key) + len(r.Value))
		}
		got.Add(n)
		bytes.Add(b)
		if n > 0 {
			lastRecord = time.Now()
		}
	}
	elapsed := time.Since(start)
	return &Result{
		Op: "consume", Config: cfg, Partitions: int32(len(d.Partitions)),
		Records: got.Load(), Bytes: bytes.Load(), Elapsed: elapsed,
	}, nil
}

// BenchName is the benchfmt name of r: the operation plus the parameters
// that change the figures, so benchstat compares like with like.
func (r *Result) BenchName() string {
	c := r.Config
	var b strings.Builder
	fmt.Fprintf(&b, "BenchmarkSluice%s%s/records=%d/size=%d/partitions=%d", strings.ToUpper(r.Op[:1]), r.Op[1:],
		c.Records, c.RecordSize, r.Partitions)
	if r.Op == "produce" {
		mode := "async"
		if c.Sequential {
			mode = "sequential"
		}
		fmt.Fprintf(&b, "/acks=%s/compression=%s/mode=%s/clients=%d", c.Acks, c.Compression, mode, c.Clients)
	}
	return b.String()
}
