package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker/brokertest"
)

// BenchmarkTxnProduce measures franz-go producing 100-byte records to one
// partition in transactions of 1, 100 and 10,000 records (one op = one
// committed transaction: begin, produce, flush, EndTxn with its markers),
// against the idempotent non-transactional producer (txn=none, one op =
// 10,000 records) as the baseline. rec/s is the figure to compare.
func BenchmarkTxnProduce(b *testing.B) {
	br := brokertest.Start(b)
	ctx := context.Background()
	value := make([]byte, 100)
	for _, n := range []int{0, 1, 100, 10000} {
		name := fmt.Sprintf("records-per-txn=%d", n)
		if n == 0 {
			name = "txn=none"
		}
		b.Run(name, func(b *testing.B) {
			topic := fmt.Sprintf("bench-txn-%d-%d", n, topicSeq.Add(1))
			opts := []kgo.Opt{kgo.SeedBrokers(br.Addr()), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0)}
			if n > 0 {
				opts = append(opts, kgo.TransactionalID(fmt.Sprintf("bench-%d-%d", n, time.Now().UnixNano())))
			}
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
				b.Fatal(err)
			}
			per := n
			if n == 0 {
				per = 10000
			}
			var perr error
			promise := func(_ *kgo.Record, err error) {
				if err != nil && perr == nil {
					perr = err
				}
			}
			b.SetBytes(int64(per * len(value)))
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				if n > 0 {
					if err := cl.BeginTransaction(); err != nil {
						b.Fatal(err)
					}
				}
				for range per {
					cl.Produce(ctx, &kgo.Record{Value: value}, promise)
				}
				if err := cl.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				if n > 0 {
					if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
						b.Fatal(err)
					}
				}
			}
			if perr != nil {
				b.Fatal(perr)
			}
			b.ReportMetric(float64(b.N*per)/time.Since(start).Seconds(), "rec/s")
		})
	}
}
