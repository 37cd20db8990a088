// Command orders joins orders with their payments (a payment counts if it
// comes within 10 minutes of the order, in event time) and enriches the
// paid orders with the customer's name from a customers table.
//
//	go run ./examples/orders                          # embedded broker, sample data, prints, exits 0
//	go run ./examples/orders --brokers 127.0.0.1:9092 # against a cluster, until interrupted
//
// Topics: customers (key customer id, value name; compacted), orders (key
// order id, JSON {"customer","amount_cents"}), payments (key order id, JSON
// {"amount_cents"}); output paid-orders (key customer id, JSON).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/examples/internal/exampleutil"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/stream"
)

// Order is an order event.
type Order struct {
	Customer    string `json:"customer"`
	AmountCents int64  `json:"amount_cents"`
}

// Payment is a payment event.
type Payment struct {
	AmountCents int64 `json:"amount_cents"`
}

// Paid is an order with its payment and its customer's name.
type Paid struct {
	OrderID     string `json:"order_id"`
	Customer    string `json:"customer"`
	Name        string `json:"name"`
	AmountCents int64  `json:"amount_cents"`
	PaidCents   int64  `json:"paid_cents"`
}

func topology() (*stream.Topology, error) {
	b := stream.NewBuilder()
	customers := stream.Table(b, "customers", serde.String(), serde.String(), stream.Materialized("customers"))
	orders := stream.Stream(b, []string{"orders"}, serde.String(), serde.JSON[Order]())
	payments := stream.Stream(b, []string{"payments"}, serde.String(), serde.JSON[Payment]())
	// Orders carry their id in the key: keep it in the value before
	// re-keying by customer.
	withID := stream.Map(orders, func(id string, o Order) (string, Paid) {
		return id, Paid{OrderID: id, Customer: o.Customer, AmountCents: o.AmountCents}
	}).WithSerdes(serde.String(), serde.JSON[Paid]())
	// Grace: orders reach the join through a repartition topic, so they may
	// be processed after payments that are later in event time.
	paid := stream.StreamJoin(withID, payments, stream.JoinTimeDifference(10*time.Minute).Grace(time.Hour), func(p Paid, pay Payment) Paid {
		p.PaidCents = pay.AmountCents
		return p
	}, stream.Named("order-payments")).WithSerdes(serde.String(), serde.JSON[Paid]())
	byCustomer := stream.SelectKey(paid, func(_ string, p Paid) string { return p.Customer }).WithSerdes(serde.String(), serde.JSON[Paid]())
	stream.LeftJoin(byCustomer, customers, func(p Paid, name string, found bool) Paid {
		p.Name = name
		if !found {
			p.Name = "(unknown customer)"
		}
		return p
	}, stream.Named("enrich")).WithSerdes(serde.String(), serde.JSON[Paid]()).To("paid-orders")
	return b.Build()
}

func main() {
	brokers := flag.String("brokers", "", "Kafka bootstrap addresses; empty starts an embedded broker, feeds sample data and exits")
	flag.Parse()
	if err := run(*brokers); err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
}

func run(brokers string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	demo := brokers == ""
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
	if err := exampleutil.CreateTopics(ctx, cl, 1, "customers", "orders", "payments", "paid-orders"); err != nil {
		return err
	}
	topo, err := topology()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "sluice-orders-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	app, err := stream.NewApp(topo, stream.AppID("orders"), stream.Brokers(seeds...), stream.StateDir(dir),
		stream.CommitInterval(200*time.Millisecond))
	if err != nil {
		return err
	}
	if !demo {
		fmt.Println("joining orders with payments; stop with Ctrl-C")
		return app.Run(ctx)
	}

	base := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	send := func(topic, key string, v any, at time.Duration) error {
		val, err := json.Marshal(v)
		if s, ok := v.(string); ok {
			val = []byte(s)
		}
		if err != nil {
			return err
		}
		return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: val, Timestamp: base.Add(at)}).FirstErr()
	}
	for _, c := range [][2]string{{"c1", "Ada"}, {"c2", "Grace"}} {
		if err := send("customers", c[0], c[1], 0); err != nil {
			return err
		}
	}
	steps := []struct {
		topic, key string
		v          any
		at         time.Duration
	}{
		{"orders", "o1", Order{"c1", 1250}, time.Minute},
		{"orders", "o2", Order{"c2", 990}, 2 * time.Minute},
		{"payments", "o1", Payment{1250}, 4 * time.Minute},  // within 10 minutes: paid
		{"orders", "o3", Order{"c3", 500}, 5 * time.Minute}, // customer not in the table
		{"payments", "o3", Payment{500}, 6 * time.Minute},
		{"payments", "o2", Payment{990}, 30 * time.Minute}, // too late to count
	}
	for _, s := range steps {
		if err := send(s.topic, s.key, s.v, s.at); err != nil {
			return err
		}
	}
	fmt.Printf("wrote 2 customers, 3 orders and 3 payments\n")
	appDone := make(chan error, 1)
	go func() { appDone <- app.Run(ctx) }()
	defer func() { app.Close(); <-appDone }()

	rd, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics("paid-orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer rd.Close()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var out []Paid
	for len(out) < 2 {
		select {
		case err := <-appDone:
			return fmt.Errorf("the app stopped: %w", err)
		default:
		}
		fs := rd.PollFetches(wctx)
		if wctx.Err() != nil {
			return fmt.Errorf("only %d of 2 paid orders after a minute", len(out))
		}
		for _, r := range fs.Records() {
			var p Paid
			if err := json.Unmarshal(r.Value, &p); err != nil {
				return err
			}
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].OrderID < out[j].OrderID })
	fmt.Println("paid orders (o2's payment came 28 minutes late):")
	for _, p := range out {
		fmt.Printf("  %s  %-20s paid %d.%02d of %d.%02d\n", p.OrderID, p.Name, p.PaidCents/100, p.PaidCents%100, p.AmountCents/100, p.AmountCents%100)
	}
	return nil
}
