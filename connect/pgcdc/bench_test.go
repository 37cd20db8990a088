package pgcdc_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker/brokertest"
)

// benchRows is the size of the bulk insert: 1M rows, 10k with -short.
func benchRows() int {
	if testing.Short() {
		return 10_000
	}
	return 1_000_000
}

const benchTable = "CREATE TABLE bulk (id int PRIMARY KEY, name text, qty int, price numeric(10,2), at timestamptz)"

func bulkInsert(b *testing.B, p pg, from, n int) {
	b.Helper()
	p.exec(b, fmt.Sprintf("INSERT INTO bulk SELECT g, 'name-' || g, g %% 100, g / 100.0, now() FROM generate_series(%d, %d) g", from, from+n-1))
}

// BenchmarkStreamTask measures change events per second through the task:
// one INSERT ... SELECT generate_series of benchRows rows is committed
// (untimed), then the Poll loop (with Commit, as the worker calls it) is
// timed until every row's event arrived. It includes pgoutput decoding the
// transaction on the server, which starts at commit.
func BenchmarkStreamTask(b *testing.B) {
	n := benchRows()
	b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
		p := startPG(b)
		p.exec(b, benchTable)
		r := mustStartTask(b, p.config("bench", "s_bench", "snapshot.mode", "no_data"), nil)
		b.ReportAllocs()
		var polled time.Duration
		total, next := 0, 1
		for b.Loop() {
			b.StopTimer()
			bulkInsert(b, p, next, n)
			next += n
			b.StartTimer()
			start := time.Now()
			for got := 0; got < n; {
				got += len(r.poll())
			}
			polled += time.Since(start)
			total += n
		}
		b.ReportMetric(float64(total)/polled.Seconds(), "rec/s")
	})
}

// BenchmarkStreamWorker measures change events per second end to end: the
// bulk insert is committed (untimed), then the time until the worker has
// produced every event to the broker (JSON converter) is measured.
func BenchmarkStreamWorker(b *testing.B) {
	n := benchRows()
	b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
		p := startPG(b)
		p.exec(b, benchTable)
		br := brokertest.Start(b)
		w := startWorker(b, br.Addr())
		if _, err := w.Create(b.Context(), "bench", p.config("bench", "s_benchw", "snapshot.mode", "no_data")); err != nil {
			b.Fatal(err)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(br.Addr()))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		// Created up front: the first produce to a new topic waits for
		// metadata, which is not what is measured.
		if _, err := adm.CreateTopic(b.Context(), 1, -1, nil, "bench.public.bulk"); err != nil {
			b.Fatal(err)
		}
		// Wait for the task's slot.
		for p.query(b, "SELECT count(*)::text FROM pg_replication_slots WHERE slot_name = 's_benchw' AND active") != "1" {
			time.Sleep(20 * time.Millisecond)
		}
		var elapsed time.Duration
		total, next := 0, 1
		for b.Loop() {
			b.StopTimer()
			bulkInsert(b, p, next, n)
			next += n
			b.StartTimer()
			start := time.Now()
			for {
				ends, err := adm.ListEndOffsets(b.Context(), "bench.public.bulk")
				if err == nil {
					var sum int64
					ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
					if sum >= int64(total+n) {
						break
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
			elapsed += time.Since(start)
			total += n
		}
		b.ReportMetric(float64(total)/elapsed.Seconds(), "rec/s")
	})
}
