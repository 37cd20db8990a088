package pgsink_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker/brokertest"
	"github.com/sluicehq/sluice/connect"
	"github.com/sluicehq/sluice/connect/pgsink"
	"github.com/sluicehq/sluice/internal/pgserver/pgtest"
)

// BenchmarkSinkWorker measures the sink end to end: JSON records already in
// a topic of the in-process broker are consumed by a connect Worker,
// converted, upserted into PostgreSQL (pgtest's server, fsync off) and
// their offsets committed. Each iteration is a new connector (its own
// consumer group and table) reading the whole topic; rows/s is per run.
//
//	go test ./connect/pgsink -run '^$' -bench SinkWorker -benchtime 1x
func BenchmarkSinkWorker(b *testing.B) {
	n := 500_000
	if testing.Short() {
		n = 20_000
	}
	s := pgtest.Start(b)
	db := pgtest.Database(b, s)
	br := brokertest.Start(b)
	cl, err := kgo.NewClient(kgo.SeedBrokers(br.Addr()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, nil, "orders"); err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	for i := range n {
		v := fmt.Appendf(nil, `{"item":"item-%d","qty":%d,"price":%g,"at":%q}`, i%1000, i%17, float64(i%500)/4,
			at.Add(time.Duration(i)*time.Second).Format(time.RFC3339))
		cl.Produce(ctx, &kgo.Record{Topic: "orders", Key: fmt.Appendf(nil, "%d", i), Value: v}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	w, err := connect.NewWorker(connect.Brokers(kgo.SeedBrokers(br.Addr())), connect.Plugins(pgsink.Plugin()), connect.WorkerID("bench"))
	if err != nil {
		b.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	defer func() { cancel(); <-done; w.Close() }()
	conn, err := s.Connect(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)

	run := 0
	for b.Loop() {
		run++
		table := fmt.Sprintf("orders_%d", run)
		pgtest.Exec(b, s, db, fmt.Sprintf(`CREATE TABLE %s (id bigint PRIMARY KEY, item text, qty integer, price double precision, at timestamptz)`, table))
		start := time.Now()
		if _, err := w.Create(ctx, table, map[string]string{
			"connector.class": "postgres-sink", "connection.url": s.DSN(db), "topics": "orders",
			"table.name.format": table, "insert.mode": "upsert", "pk.mode": "record_key", "pk.fields": "id",
			"key.converter": "org.apache.kafka.connect.storage.StringConverter",
		}); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Minute)
		for {
			var got int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&got); err != nil {
				b.Fatal(err)
			}
			if got == n {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d rows after 5 minutes", got, n)
			}
			time.Sleep(20 * time.Millisecond) // polling the table's row count
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "rows/s")
	}
}
