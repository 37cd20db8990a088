package stream_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker/brokertest"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/stream"
)

// BenchmarkRestore times a fresh instance restoring a count store of N
// distinct keys (1M; 100k with -short) from its changelog: the changelog
// (<app>-counts-changelog, one partition like the source) is written once,
// directly, then each iteration starts the app on an empty state directory
// and waits until the store answers a query for the last key written
// (restore applies the changelog in order and the store is queryable only
// once restored, so that means all keys are in). Reported: rec/s and
// s/restore from Run to queryable, and the restore alone as the runtime
// logs it (restore-s).
func BenchmarkRestore(b *testing.B) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	const appID = "restore-bench"
	addr := brokertest.Start(b).Addr()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	adm := kadm.NewClient(cl)
	changelog := appID + "-counts-changelog"
	if _, err := adm.CreateTopics(ctx, 1, 1, nil, "restore-in"); err != nil {
		b.Fatal(err)
	}
	if _, err := adm.CreateTopics(ctx, 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, changelog); err != nil {
		b.Fatal(err)
	}
	key := func(i int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(i)) }
	t0 := time.Now()
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Topic: changelog, Partition: 0, Key: key(i), Value: binary.BigEndian.AppendUint64(nil, uint64(i%7+1))}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %d changelog records in %v", n, time.Since(t0).Round(time.Millisecond))

	sb := stream.NewBuilder()
	stream.Count(stream.GroupByKey(stream.Stream(sb, []string{"restore-in"}, serde.Bytes(), serde.Bytes())), stream.Materialized("counts"))
	topo, err := sb.Build()
	if err != nil {
		b.Fatal(err)
	}
	last := key(n - 1)
	b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			logged := &restoreLog{}
			app, err := stream.NewApp(topo, stream.AppID(appID), stream.Brokers(addr), stream.StateDir(b.TempDir()),
				stream.Logger(slog.New(logged)))
			if err != nil {
				b.Fatal(err)
			}
			q := stream.Query(app, "counts", serde.Bytes(), serde.Int64())
			done := make(chan error, 1)
			b.StartTimer()
			start := time.Now()
			go func() { done <- app.Run(context.Background()) }()
			deadline := time.After(5 * time.Minute)
			for {
				v, ok, err := q.Get(last)
				if err != nil {
					b.Fatal(err)
				}
				if ok {
					if v != int64((n-1)%7+1) {
						b.Fatalf("last key holds %d", v)
					}
					break
				}
				select {
				case err := <-done:
					b.Fatalf("app stopped: %v", err)
				case <-deadline:
					b.Fatal("not restored in 5 minutes")
				case <-time.After(2 * time.Millisecond): // polling a condition with a deadline
				}
			}
			el := time.Since(start)
			b.StopTimer()
			got := 0
			for range q.All() {
				got++
			}
			app.Close()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			if got != n {
				b.Fatalf("store holds %d keys, want %d", got, n)
			}
			b.ReportMetric(float64(n)/el.Seconds(), "rec/s")
			b.ReportMetric(el.Seconds(), "s/restore")
			b.ReportMetric(logged.took().Seconds(), "restore-s")
			b.StartTimer()
		}
	})
}

// restoreLog is a slog handler that keeps the duration of the "restored
// store" log lines.
type restoreLog struct {
	mu    sync.Mutex
	total time.Duration
}

func (h *restoreLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *restoreLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *restoreLog) WithGroup(string) slog.Handler            { return h }

func (h *restoreLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "restored store" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "took" {
			h.mu.Lock()
			h.total += a.Value.Duration()
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

func (h *restoreLog) took() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.total
}
