// Command pageviews counts page views per page per minute with tumbling
// windows and emits only final results (one per page and minute, once the
// minute and its grace period have passed in event time).
//
//	go run ./examples/pageviews                       # embedded broker, sample data, prints, exits 0
//	go run ./examples/pageviews --brokers 127.0.0.1:9092   # against a cluster, until interrupted
//
// Input: topic page-views, key = user, value = page. Output: topic
// views-per-minute, key = page in Kafka Streams' windowed format (page
// bytes then the window start as an 8-byte int), value = the count as an
// 8-byte big-endian int64.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/examples/internal/exampleutil"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/window"
)

const grace = 10 * time.Second

func topology() (*stream.Topology, error) {
	b := stream.NewBuilder()
	views := stream.Stream(b, []string{"page-views"}, serde.String(), serde.String())
	byPage := stream.GroupBy(views, func(_, page string) string { return page }, serde.String())
	counts := stream.WindowedCount(stream.WindowedBy(byPage, window.Tumbling(time.Minute).Grace(grace)), stream.Materialized("views-per-minute"))
	counts.Suppress(stream.UntilWindowCloses()).ToStream().To("views-per-minute")
	return b.Build()
}

func main() {
	brokers := flag.String("brokers", "", "Kafka bootstrap addresses; empty starts an embedded broker, feeds sample data and exits")
	flag.Parse()
	if err := run(*brokers); err != nil {
		fmt.Fprintln(os.Stderr, "pageviews:", err)
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
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic("page-views"))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := exampleutil.CreateTopics(ctx, cl, 1, "page-views", "views-per-minute"); err != nil {
		return err
	}
	topo, err := topology()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "sluice-pageviews-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	app, err := stream.NewApp(topo, stream.AppID("pageviews"), stream.Brokers(seeds...), stream.StateDir(dir),
		stream.CommitInterval(200*time.Millisecond))
	if err != nil {
		return err
	}
	if !demo {
		fmt.Println("counting page views per minute; stop with Ctrl-C")
		return app.Run(ctx)
	}
	appDone := make(chan error, 1)
	go func() { appDone <- app.Run(ctx) }()
	defer func() { app.Close(); <-appDone }()

	// Sample views over three minutes (event time), then one view well
	// after, which moves stream time past the last window's grace.
	base := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	sample := []struct {
		at   time.Duration
		page string
	}{
		{5 * time.Second, "/home"}, {20 * time.Second, "/home"}, {40 * time.Second, "/cart"},
		{65 * time.Second, "/home"}, {61 * time.Second, "/cart"}, {62 * time.Second, "/cart"},
		{58 * time.Second, "/home"}, // out of order, same minute as the first three
		{130 * time.Second, "/checkout"},
		{10 * time.Minute, "/home"},
	}
	for i, v := range sample {
		r := &kgo.Record{Key: []byte(fmt.Sprint("user-", i%3)), Value: []byte(v.page), Timestamp: base.Add(v.at)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			return err
		}
	}
	fmt.Printf("wrote %d page views\n", len(sample))
	want := 5 // /home and /cart in 09:00 and 09:01, /checkout in 09:02
	rd, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics("views-per-minute"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer rd.Close()
	ks := window.KeySerde(serde.String(), time.Minute)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	fmt.Println("final page views per minute:")
	for got := 0; got < want; {
		select {
		case err := <-appDone:
			return fmt.Errorf("the app stopped: %w", err)
		default:
		}
		fs := rd.PollFetches(wctx)
		if wctx.Err() != nil {
			return fmt.Errorf("only %d of %d final counts after a minute", got, want)
		}
		for _, r := range fs.Records() {
			k, err := ks.Decode(r.Key)
			if err != nil {
				return err
			}
			n, _ := serde.Int64().Decode(r.Value)
			fmt.Printf("  %s  %-10s %d\n", k.Window.StartTime().UTC().Format("15:04"), k.Key, n)
			got++
		}
	}
	return nil
}
