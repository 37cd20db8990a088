// Command cdc keeps a read model in PostgreSQL up to date from another
// table's changes: change data capture from an orders table, a topology
// that keeps per-customer order totals, and an upsert sink that writes them
// to a customer_totals table.
//
//	go run ./examples/cdc    # throwaway PostgreSQL and embedded broker, sample changes, prints, exits 0
//	go run ./examples/cdc --dsn 'host=/var/run/postgresql dbname=shop' --brokers 127.0.0.1:9092
//	                         # against your database and cluster, until interrupted
//
// The pipeline:
//
//	orders (PostgreSQL) --postgres-cdc--> shop.public.orders (Debezium events, unwrapped to rows)
//	  --topology: table of orders -> group by customer -> count and sum-->  customer_totals (topic)
//	  --postgres-sink (upsert by customer_id)--> customer_totals (PostgreSQL)
//
// With no --dsn, the example starts PostgreSQL (initdb and pg_ctl from
// Debian's postgresql-15 package) in a temporary directory.
package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connect"
	"github.com/sluicehq/sluice/connect/pgcdc"
	"github.com/sluicehq/sluice/connect/pgsink"
	"github.com/sluicehq/sluice/examples/internal/exampleutil"
	"github.com/sluicehq/sluice/internal/pgserver"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/stream"
)

// OrderKey is the key of a change event: the orders table's primary key.
type OrderKey struct {
	ID int64 `json:"id"`
}

// Order is a row of the orders table, as ExtractNewRecordState leaves it.
type Order struct {
	ID          int64  `json:"id"`
	CustomerID  string `json:"customer_id"`
	AmountCents int64  `json:"amount_cents"`
}

// TotalsKey is the key of customer_totals: its primary key.
type TotalsKey struct {
	CustomerID string `json:"customer_id"`
}

// Totals is a row of customer_totals.
type Totals struct {
	CustomerID string `json:"customer_id"`
	OrderCount int64  `json:"order_count"`
	TotalCents int64  `json:"total_cents"`
}

const (
	changesTopic = "shop.public.orders"
	totalsTopic  = "customer_totals"
)

func topology() (*stream.Topology, error) {
	b := stream.NewBuilder()
	orders := stream.Table(b, changesTopic, serde.JSON[OrderKey](), serde.JSON[Order](), stream.Materialized("orders"))
	byCustomer := stream.TableGroupBy(orders, func(_ OrderKey, o Order) (TotalsKey, Order) {
		return TotalsKey{CustomerID: o.CustomerID}, o
	}, serde.JSON[TotalsKey](), serde.JSON[Order]())
	totals := stream.TableAggregate(byCustomer, func() Totals { return Totals{} },
		func(k TotalsKey, o Order, t Totals) Totals {
			return Totals{CustomerID: k.CustomerID, OrderCount: t.OrderCount + 1, TotalCents: t.TotalCents + o.AmountCents}
		},
		func(k TotalsKey, o Order, t Totals) Totals {
			return Totals{CustomerID: k.CustomerID, OrderCount: t.OrderCount - 1, TotalCents: t.TotalCents - o.AmountCents}
		}, serde.JSON[Totals](), stream.Materialized("customer-totals"))
	totals.ToStream().To(totalsTopic)
	return b.Build()
}

func main() {
	brokers := flag.String("brokers", "", "Kafka bootstrap addresses; empty starts an embedded broker")
	dsn := flag.String("dsn", "", "PostgreSQL connection string (keyword/value or URL) of a database with wal_level=logical; empty starts a throwaway PostgreSQL, makes sample changes, prints and exits")
	flag.Parse()
	if err := run(*brokers, *dsn); err != nil {
		fmt.Fprintln(os.Stderr, "cdc:", err)
		os.Exit(1)
	}
}

func run(brokers, dsn string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	demo := brokers == "" && dsn == ""
	if dsn == "" {
		fmt.Println("starting a throwaway PostgreSQL ...")
		pg, err := pgserver.Start(ctx, pgserver.Options{})
		if err != nil {
			return fmt.Errorf("%w (or pass --dsn to use your own PostgreSQL)", err)
		}
		defer pg.Stop()
		dsn = pg.DSN("")
	}
	pcfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("--dsn: %w", err)
	}
	db, err := pgx.ConnectConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer db.Close(context.Background())
	if _, err := db.Exec(ctx, `CREATE TABLE IF NOT EXISTS orders (
		id bigint PRIMARY KEY, customer_id text NOT NULL, amount_cents bigint NOT NULL)`); err != nil {
		return err
	}
	if demo {
		// Rows that exist before the pipeline starts reach it through
		// the connector's snapshot.
		if _, err := db.Exec(ctx, `INSERT INTO orders VALUES (1, 'ada', 1250), (2, 'grace', 990)`); err != nil {
			return err
		}
	}

	seeds, release, err := exampleutil.Cluster(ctx, brokers)
	if err != nil {
		return err
	}
	defer release()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := exampleutil.CreateTopics(ctx, cl, 1, changesTopic, totalsTopic); err != nil {
		return err
	}

	// The stream app.
	topo, err := topology()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "sluice-cdc-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	app, err := stream.NewApp(topo, stream.AppID("cdc-customer-totals"), stream.Brokers(seeds...), stream.StateDir(dir),
		stream.CommitInterval(100*time.Millisecond))
	if err != nil {
		return err
	}
	appDone := make(chan error, 1)
	go func() { appDone <- app.Run(ctx) }()
	defer func() { app.Close(); <-appDone }()

	// The connect worker with the source and the sink.
	w, err := connect.NewWorker(connect.Brokers(kgo.SeedBrokers(seeds...)), connect.Plugins(pgcdc.Plugin(), pgsink.Plugin()))
	if err != nil {
		return err
	}
	workerDone := make(chan error, 1)
	wctx, cancelWorker := context.WithCancel(ctx)
	go func() { workerDone <- w.Run(wctx) }()
	defer func() { cancelWorker(); <-workerDone; w.Close() }()
	if _, err := w.Create(ctx, "orders-cdc", map[string]string{
		"connector.class":    "postgres-cdc",
		"database.hostname":  pcfg.Host,
		"database.port":      strconv.Itoa(int(pcfg.Port)),
		"database.user":      pcfg.User,
		"database.password":  pcfg.Password,
		"database.dbname":    pcfg.Database,
		"topic.prefix":       "shop",
		"table.include.list": "public.orders",
		"slot.name":          "sluice_cdc_example",
		"publication.name":   "sluice_cdc_example",
		// Rows, not Debezium envelopes; a delete becomes a tombstone.
		"transforms":             "unwrap",
		"transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
	}); err != nil {
		return fmt.Errorf("create the CDC connector: %w", err)
	}
	if _, err := w.Create(ctx, "customer-totals-sink", map[string]string{
		"connector.class":   "postgres-sink",
		"connection.url":    dsn,
		"topics":            totalsTopic,
		"table.name.format": "customer_totals",
		"insert.mode":       "upsert",
		"pk.mode":           "record_key",
		"delete.enabled":    "true",
		"auto.create":       "true",
	}); err != nil {
		return fmt.Errorf("create the sink connector: %w", err)
	}
	if !demo {
		fmt.Println("orders -> customer_totals is running; change rows of orders and watch customer_totals. Stop with Ctrl-C")
		select {
		case err := <-appDone:
			return err
		case err := <-workerDone:
			return err
		case <-ctx.Done():
			return nil
		}
	}

	wait := func(what string) error {
		start := time.Now()
		deadline := start.Add(time.Minute)
		for {
			want, err := expected(ctx, db)
			if err != nil {
				return err
			}
			got, err := readTotals(ctx, db)
			if err == nil && maps.Equal(got, want) {
				fmt.Printf("%s: customer_totals caught up in %v\n", what, time.Since(start).Round(time.Millisecond))
				return nil
			}
			select {
			case err := <-appDone:
				return fmt.Errorf("the stream app stopped: %w", err)
			case err := <-workerDone:
				return fmt.Errorf("the connect worker stopped: %w", err)
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: customer_totals = %v after a minute, want %v", what, got, want)
			}
		}
	}
	if err := wait("snapshot of 2 orders"); err != nil {
		return err
	}
	steps := []struct{ what, sql string }{
		{"insert 3 orders", `INSERT INTO orders VALUES (3, 'ada', 500), (4, 'linus', 4200), (5, 'grace', 10)`},
		{"update order 1's amount", `UPDATE orders SET amount_cents = 2000 WHERE id = 1`},
		{"move order 5 to ada", `UPDATE orders SET customer_id = 'ada' WHERE id = 5`},
		{"delete order 2", `DELETE FROM orders WHERE id = 2`},
	}
	for _, s := range steps {
		if _, err := db.Exec(ctx, s.sql); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
		if err := wait(s.what); err != nil {
			return err
		}
	}
	return printTables(ctx, db)
}

// expected computes customer_totals from orders directly; customers whose
// orders were all deleted or moved keep a row with zero orders.
func expected(ctx context.Context, db *pgx.Conn) (map[string]Totals, error) {
	rows, err := db.Query(ctx, `SELECT customer_id, count(*), sum(amount_cents)::bigint FROM orders GROUP BY customer_id`)
	if err != nil {
		return nil, err
	}
	want := map[string]Totals{}
	for _, c := range []string{"ada", "grace"} { // in the snapshot, so present from the start
		want[c] = Totals{CustomerID: c}
	}
	for rows.Next() {
		var t Totals
		if err := rows.Scan(&t.CustomerID, &t.OrderCount, &t.TotalCents); err != nil {
			return nil, err
		}
		want[t.CustomerID] = t
	}
	return want, rows.Err()
}

func readTotals(ctx context.Context, db *pgx.Conn) (map[string]Totals, error) {
	rows, err := db.Query(ctx, `SELECT customer_id, order_count, total_cents FROM customer_totals`)
	if err != nil {
		return nil, err // not created yet
	}
	got := map[string]Totals{}
	for rows.Next() {
		var t Totals
		if err := rows.Scan(&t.CustomerID, &t.OrderCount, &t.TotalCents); err != nil {
			return nil, err
		}
		got[t.CustomerID] = t
	}
	return got, rows.Err()
}

func printTables(ctx context.Context, db *pgx.Conn) error {
	fmt.Println("\norders:")
	fmt.Println("  id  customer_id  amount")
	rows, err := db.Query(ctx, `SELECT id, customer_id, amount_cents FROM orders ORDER BY id`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var o Order
		if err := rows.Scan(&o.ID, &o.CustomerID, &o.AmountCents); err != nil {
			return err
		}
		fmt.Printf("  %2d  %-11s  %d.%02d\n", o.ID, o.CustomerID, o.AmountCents/100, o.AmountCents%100)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	got, err := readTotals(ctx, db)
	if err != nil {
		return err
	}
	fmt.Println("\ncustomer_totals (the read model):")
	fmt.Println("  customer_id  orders  total")
	for _, c := range slices.Sorted(maps.Keys(got)) {
		t := got[c]
		fmt.Printf("  %-11s  %6d  %d.%02d\n", t.CustomerID, t.OrderCount, t.TotalCents/100, t.TotalCents%100)
	}
	return nil
}
