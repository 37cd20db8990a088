// Command cqrs is a CQRS read model on Sluice: order events (JSON
// {"order_id","customer","amount_cents"}) in the topic orders are folded
// into per-customer totals, a KTable kept in the state store
// customer-totals, and served over HTTP straight from the running app:
//
//	GET /totals?key=alice   {"key":"alice","value":4500}   (404 if unknown)
//	GET /totals             [{"key":"alice","value":4500}, ...]
//
// With no flags it is a self-contained demo: it starts an embedded broker in
// a temporary directory, writes sample orders, runs the app, queries its own
// HTTP endpoint (on 127.0.0.1, an ephemeral port), prints the totals and
// exits 0.
//
//	go run ./examples/cqrs
//
// With --brokers it runs against a cluster and serves until interrupted:
//
//	go run ./examples/cqrs --brokers 127.0.0.1:9092 --listen 127.0.0.1:8080
//	curl '127.0.0.1:8080/totals?key=alice'
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/stream"
)

// Order is an order event, the value of a record in the topic orders.
type Order struct {
	OrderID     string `json:"order_id"`
	Customer    string `json:"customer"`
	AmountCents int64  `json:"amount_cents"`
}

// The store holding the read model, and the input topic.
const (
	storeName   = "customer-totals"
	ordersTopic = "orders"
)

// sampleOrders are what the demo writes.
var sampleOrders = []Order{
	{"o-1", "alice", 1250},
	{"o-2", "bob", 990},
	{"o-3", "alice", 3250},
	{"o-4", "carol", 15000},
	{"o-5", "bob", 510},
	{"o-6", "dave", 4200},
	{"o-7", "alice", 100},
	{"o-8", "carol", -2000}, // a refund
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cqrs:", err)
		os.Exit(1)
	}
}

// run parses args and runs the demo (no --brokers) or the service.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("cqrs", flag.ContinueOnError)
	brokers := fs.String("brokers", "", "Kafka bootstrap addresses (host:port,...); empty runs the self-contained demo on an embedded broker")
	listen := fs.String("listen", "127.0.0.1:8080", "HTTP address to serve /totals on (with --brokers)")
	stateDir := fs.String("state-dir", "", "where state lives (with --brokers; default: a directory under the system temp dir)")
	partitions := fs.Int("partitions", 2, "partitions of orders when this program creates it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *brokers == "" {
		return demo(ctx, stdout)
	}
	return serve(ctx, strings.Split(*brokers, ","), *listen, *stateDir, int32(*partitions), stdout)
}

// topology folds orders into per-customer totals (cents), materialized in
// the store customer-totals. Orders are keyed by order id; grouping by
// customer repartitions them so that each customer's orders meet in one task.
func topology() (*stream.Topology, error) {
	b := stream.NewBuilder()
	orders := stream.Stream(b, []string{ordersTopic}, serde.String(), serde.JSON[Order]())
	byCustomer := stream.GroupBy(orders, func(_ string, o Order) string { return o.Customer }, serde.String())
	stream.Aggregate(byCustomer,
		func() int64 { return 0 },
		func(_ string, o Order, total int64) int64 { return total + o.AmountCents },
		serde.Int64(), stream.Materialized(storeName))
	return b.Build()
}

// newApp builds the app and its HTTP handler (GET /totals).
func newApp(seeds []string, stateDir string, opts ...stream.AppOpt) (*stream.App, http.Handler, error) {
	topo, err := topology()
	if err != nil {
		return nil, nil, err
	}
	opts = append([]stream.AppOpt{stream.AppID("cqrs-customer-totals"), stream.Brokers(seeds...)}, opts...)
	if stateDir != "" {
		opts = append(opts, stream.StateDir(stateDir))
	}
	app, err := stream.NewApp(topo, opts...)
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/totals", stream.StoreHandler(app, storeName, serde.String(), serde.Int64(), stream.StringKey))
	return app, mux, nil
}

// serve runs the app against a cluster and serves its read model on listen
// until ctx is done.
func serve(ctx context.Context, seeds []string, listen, stateDir string, partitions int32, stdout io.Writer) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := ensureTopics(ctx, seeds, partitions, ordersTopic); err != nil {
		return err
	}
	app, handler, err := newApp(seeds, stateDir, stream.Logger(log), stream.CommitInterval(time.Second))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	stopHTTP := startHTTP(ln, handler)
	defer stopHTTP()
	fmt.Fprintf(stdout, "serving http://%s/totals (?key=CUSTOMER for one); stop with Ctrl-C\n", ln.Addr())
	return app.Run(ctx)
}

// demo runs everything in one process and prints the totals.
func demo(ctx context.Context, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "sluice-cqrs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	br, err := broker.New(broker.Config{DataDir: dir + "/broker", Listen: "127.0.0.1:0"})
	if err != nil {
		return err
	}
	brDone := make(chan error, 1)
	go func() { brDone <- br.Run(context.WithoutCancel(ctx)) }()
	defer func() {
		br.Close()
		<-brDone
	}()
	seeds := []string{br.Addr()}
	fmt.Fprintf(stdout, "started an embedded broker on %s\n", br.Addr())

	if err := ensureTopics(ctx, seeds, 2, ordersTopic); err != nil {
		return err
	}
	if err := produceOrders(ctx, seeds, sampleOrders); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d orders to %s\n", len(sampleOrders), ordersTopic)

	app, handler, err := newApp(seeds, dir+"/state", stream.CommitInterval(200*time.Millisecond))
	if err != nil {
		return err
	}
	appDone := make(chan error, 1)
	go func() { appDone <- app.Run(ctx) }()
	defer func() {
		app.Close()
	}()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	stopHTTP := startHTTP(ln, handler)
	defer stopHTTP()
	base := "http://" + ln.Addr().String() + "/totals"
	fmt.Fprintf(stdout, "serving %s\n", base)

	// Poll the read model over HTTP until it has folded every order.
	want := map[string]int64{}
	for _, o := range sampleOrders {
		want[o.Customer] += o.AmountCents
	}
	var all []entry
	for {
		all, err = getAll(ctx, base)
		if err != nil {
			return err
		}
		if matches(all, want) {
			break
		}
		select {
		case err := <-appDone:
			return fmt.Errorf("the app stopped: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("totals not complete in time: have %v, want %v", all, want)
		case <-time.After(50 * time.Millisecond): // polling a condition, bounded by ctx
		}
	}
	fmt.Fprintf(stdout, "GET %s\n", base)
	for _, e := range all {
		fmt.Fprintf(stdout, "  %-6s %10s\n", e.Key, cents(e.Value))
	}
	one, status, err := get(ctx, base+"?key="+url.QueryEscape("alice"))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "GET %s?key=alice -> %d %s", base, status, one)
	_, status, err = get(ctx, base+"?key="+url.QueryEscape("mallory"))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "GET %s?key=mallory -> %d\n", base, status)

	app.Close()
	if err := <-appDone; err != nil {
		return err
	}
	fmt.Fprintln(stdout, "done")
	return nil
}

type entry struct {
	Key   string `json:"key"`
	Value int64  `json:"value"`
}

func matches(all []entry, want map[string]int64) bool {
	if len(all) != len(want) {
		return false
	}
	for _, e := range all {
		if v, ok := want[e.Key]; !ok || v != e.Value {
			return false
		}
	}
	return true
}

func cents(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}

// startHTTP serves handler on ln; the returned func shuts the server down.
func startHTTP(ln net.Listener, handler http.Handler) func() {
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}
}

func get(ctx context.Context, u string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return body, resp.StatusCode, err
}

// getAll reads every total, sorted by customer.
func getAll(ctx context.Context, u string) ([]entry, error) {
	body, status, err := get(ctx, u)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", u, status, body)
	}
	var all []entry
	if err := json.Unmarshal(body, &all); err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	slices.SortFunc(all, func(a, b entry) int { return strings.Compare(a.Key, b.Key) })
	return all, nil
}

func produceOrders(ctx context.Context, seeds []string, orders []Order) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(ordersTopic))
	if err != nil {
		return err
	}
	defer cl.Close()
	js := serde.JSON[Order]()
	for _, o := range orders {
		v, err := js.AppendEncode(nil, o)
		if err != nil {
			return err
		}
		cl.Produce(ctx, &kgo.Record{Key: []byte(o.OrderID), Value: v}, nil)
	}
	return cl.Flush(ctx)
}

func ensureTopics(ctx context.Context, seeds []string, partitions int32, topics ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, nil, topics...)
	if err != nil {
		return err
	}
	for _, r := range resp {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}
