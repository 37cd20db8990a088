package stream_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker/brokertest"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/window"
)

var benchRuns atomic.Int64

// countOut counts bench-in by key (pebble, record cache) and writes the
// counts to bench-out.
func countOut(sb *stream.Builder, seen *atomic.Int64) {
	s := stream.Stream(sb, []string{"bench-in"}, serde.Bytes(), serde.Bytes()).Peek(func([]byte, []byte) { seen.Add(1) })
	stream.Count(stream.GroupByKey(s), stream.Materialized("counts")).ToStream().To("bench-out")
}

// BenchmarkSimple follows Kafka Streams' SimpleBenchmark: a 1-partition
// source of N records with integer keys over 10k values and 100-byte
// values, processed by a fresh app per iteration (so each iteration reads
// the whole topic). Reported as rec/s of the whole run, broker on the same
// machine.
func BenchmarkSimple(b *testing.B) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	br := brokertest.Start(b)
	addr := br.Addr()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("bench-in"), kgo.AllowAutoTopicCreation(),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if _, err := kadm.NewClient(cl).CreateTopics(ctx, 1, 1, nil, "bench-in", "bench-in2", "bench-out"); err != nil {
		b.Fatal(err)
	}
	val := make([]byte, 100)
	for i := range n {
		key := binary.BigEndian.AppendUint32(nil, uint32(i%10_000))
		cl.Produce(ctx, &kgo.Record{Key: key, Value: val}, nil)
	}
	// A second input for the stream-stream join: the same keys, 1 ms later.
	for i := range n {
		key := binary.BigEndian.AppendUint32(nil, uint32(i%10_000))
		cl.Produce(ctx, &kgo.Record{Topic: "bench-in2", Key: key, Value: val}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	keys := serde.Bytes()
	cases := []struct {
		name  string
		build func(b *stream.Builder, seen *atomic.Int64)
		opts  []stream.AppOpt
	}{
		{"source-sink", func(sb *stream.Builder, seen *atomic.Int64) {
			stream.Stream(sb, []string{"bench-in"}, keys, serde.Bytes()).Peek(func([]byte, []byte) { seen.Add(1) }).To("bench-out")
		}, nil},
		{"count-pebble", func(sb *stream.Builder, seen *atomic.Int64) {
			s := stream.Stream(sb, []string{"bench-in"}, keys, serde.Bytes()).Peek(func([]byte, []byte) { seen.Add(1) })
			stream.Count(stream.GroupByKey(s), stream.Materialized("counts"))
		}, nil},
		{"hopping-count", func(sb *stream.Builder, seen *atomic.Int64) {
			s := stream.Stream(sb, []string{"bench-in"}, keys, serde.Bytes()).Peek(func([]byte, []byte) { seen.Add(1) })
			stream.WindowedCount(stream.WindowedBy(stream.GroupByKey(s), window.Hopping(time.Minute, 10*time.Second)), stream.Materialized("hopping"))
		}, nil},
		// Event time is the offset in ms, so each key (every 10,000th
		// record) has a record every 10 s and a 1-minute sliding window
		// holds about 6 of them: each record updates or creates about 8
		// windows, near hopping-count's 6.
		{"sliding-count", func(sb *stream.Builder, seen *atomic.Int64) {
			byOffset := stream.TimestampExtractor(func(_ string, _ int32, off int64, _ time.Time, _, _ []byte) time.Time {
				return time.UnixMilli(1_800_000_000_000 + off)
			})
			s := stream.Stream(sb, []string{"bench-in"}, keys, serde.Bytes(), byOffset).Peek(func([]byte, []byte) { seen.Add(1) })
			stream.SlidingCount(stream.SlidingWindowedBy(stream.GroupByKey(s), window.Sliding(time.Minute)), stream.Materialized("sliding"))
		}, nil},
		{"stream-join", func(sb *stream.Builder, seen *atomic.Int64) {
			l := stream.Stream(sb, []string{"bench-in"}, keys, serde.Bytes())
			r := stream.Stream(sb, []string{"bench-in2"}, keys, serde.Bytes()).Peek(func([]byte, []byte) { seen.Add(1) })
			stream.StreamJoin(l, r, stream.JoinTimeDifference(time.Millisecond), func(a, _ []byte) []byte { return a }, stream.InMemory())
		}, nil},
		{"count-memory", func(sb *stream.Builder, seen *atomic.Int64) {
			s := stream.Stream(sb, []string{"bench-in"}, keys, serde.Bytes()).Peek(func([]byte, []byte) { seen.Add(1) })
			stream.Count(stream.GroupByKey(s), stream.Materialized("counts"), stream.InMemory())
		}, nil},
		// The count with its output topic, at-least-once (commit every
		// second) and exactly-once (a transaction every 100ms, the
		// default): the cost of exactly-once.
		{"count-alos", countOut, []stream.AppOpt{stream.CommitInterval(time.Second)}},
		{"count-eos", countOut, []stream.AppOpt{stream.Guarantee(stream.ExactlyOnce)}},
		{"count-eos-1s", countOut, []stream.AppOpt{stream.Guarantee(stream.ExactlyOnce), stream.CommitInterval(time.Second)}},
	}
	for _, c := range cases {
		b.Run(fmt.Sprintf("%s/records=%d", c.name, n), func(b *testing.B) {
			for b.Loop() {
				i := benchRuns.Add(1)
				var seen atomic.Int64
				sb := stream.NewBuilder()
				c.build(sb, &seen)
				topo, err := sb.Build()
				if err != nil {
					b.Fatal(err)
				}
				opts := c.opts
				if opts == nil {
					opts = []stream.AppOpt{stream.CommitInterval(time.Second)}
				}
				app, err := stream.NewApp(topo, append([]stream.AppOpt{stream.AppID(fmt.Sprintf("bench-%s-%d", c.name, i)), stream.Brokers(addr),
					stream.StateDir(b.TempDir())}, opts...)...)
				if err != nil {
					b.Fatal(err)
				}
				done := make(chan error, 1)
				start := time.Now()
				go func() { done <- app.Run(context.Background()) }()
				deadline := time.After(5 * time.Minute)
				for seen.Load() < int64(n) {
					select {
					case err := <-done:
						b.Fatalf("app stopped: %v", err)
					case <-deadline:
						b.Fatalf("processed %d of %d records in 5 minutes", seen.Load(), n)
					case <-time.After(5 * time.Millisecond):
					}
				}
				el := time.Since(start)
				b.StopTimer()
				app.Close()
				<-done
				b.ReportMetric(float64(n)/el.Seconds(), "rec/s")
				b.StartTimer()
			}
		})
	}
}
