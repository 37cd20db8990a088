package pgsink

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/connect"
	"github.com/sluicehq/sluice/internal/pgserver/pgtest"
)

// BenchmarkSink measures upserts through Put and Flush into PostgreSQL
// (the throwaway server of pgtest, fsync off). Each iteration writes one
// flush of flush=N records of five columns. rows=new writes keys the table
// does not hold (inserts); rows=existing writes keys of a table prefilled
// with 100,000 rows (every upsert updates). method=unnest is what the sink
// does (one statement per batch.size rows, columns as text[] parameters);
// method=copy stages the rows in a temporary table with COPY and upserts
// them from it; method=batch is one INSERT ... ON CONFLICT per row,
// pipelined in a pgx.Batch. Both are there for comparison.
//
//	go test -run='^$' -bench=Sink -benchtime=200x ./connect/pgsink/
func BenchmarkSink(b *testing.B) {
	s := pgtest.Start(b)
	const keys = 100_000
	recs := make([]connect.SinkRecord, keys)
	at := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	for i := range recs {
		recs[i] = connect.SinkRecord{Record: connect.Record{Topic: "orders", Offset: int64(i), Key: int64(i),
			Value: map[string]any{"item": fmt.Sprintf("item-%d", i%1000), "qty": int64(i % 17), "price": float64(i%500) / 4,
				"at": at.Add(time.Duration(i) * time.Second).Format(time.RFC3339)}}}
	}
	for _, method := range []string{"unnest", "copy", "batch"} {
		for _, rows := range []string{"new", "existing"} {
			for _, flush := range []int{1000, 10000} {
				b.Run(fmt.Sprintf("method=%s/rows=%s/flush=%d", method, rows, flush), func(b *testing.B) {
					p := newDB(b, s)
					pgtest.Exec(b, s, p.db, `CREATE TABLE orders (id bigint PRIMARY KEY, item text, qty integer, price double precision, at timestamptz)`)
					if rows == "existing" {
						pgtest.Exec(b, s, p.db, `INSERT INTO orders SELECT g, 'item', 0, 0, now() FROM generate_series(0, 99999) g`, `VACUUM ANALYZE orders`)
					}
					tk := p.task(b, map[string]string{"insert.mode": "upsert", "pk.mode": "record_key"})
					switch method {
					case "batch":
						tk.writeRows = tk.writeRowsBatch
					case "copy":
						tk.writeRows = tk.writeRowsCopy
					}
					b.ReportAllocs()
					next, base := 0, int64(0)
					for b.Loop() {
						if next+flush > len(recs) {
							next = 0
						}
						chunk := recs[next : next+flush]
						if rows == "new" {
							for i := range chunk {
								chunk[i].Key = base + int64(i)
							}
							base += int64(flush)
						}
						if err := tk.Put(b.Context(), chunk); err != nil {
							b.Fatal(err)
						}
						if err := tk.Flush(b.Context(), nil); err != nil {
							b.Fatal(err)
						}
						next += flush
					}
					b.ReportMetric(float64(b.N*flush)/b.Elapsed().Seconds(), "rows/s")
				})
			}
		}
	}
}
