// Command quickstart is Sluice's main job in one program: it starts an
// embedded broker in a temporary directory, writes some text to the topic
// text-lines, runs the word-count topology on it, prints the counts read
// from the running app's state store, and exits 0.
//
//	go run ./examples/quickstart
//
// With --brokers it uses a running Kafka-compatible cluster (`sluice
// broker`, Apache Kafka, Redpanda) instead of starting one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/stream"
)

var text = []string{
	"the quick brown fox jumps over the lazy dog",
	"a stream is a table in motion",
	"a table is a stream at rest",
	"The fox and the dog",
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run() error {
	brokers := flag.String("brokers", "", "Kafka bootstrap addresses (host:port,...); empty starts an embedded broker")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	dir, err := os.MkdirTemp("", "sluice-quickstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	addrs := *brokers
	if addrs == "" {
		b, err := broker.New(broker.Config{DataDir: dir + "/broker", Listen: "127.0.0.1:0"})
		if err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() { done <- b.Run(ctx) }()
		defer func() {
			b.Close()
			<-done
		}()
		addrs = b.Addr()
		fmt.Printf("started an embedded broker on %s\n", addrs)
	}
	seeds := strings.Split(addrs, ",")

	// Input and output topics.
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic("text-lines"))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, 1, 1, nil, "text-lines", "word-counts")
	if err != nil {
		return err
	}
	for _, r := range resp {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	for _, line := range text {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(line)}).FirstErr(); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
	}
	fmt.Printf("wrote %d lines to text-lines\n", len(text))

	// The word-count topology.
	b := stream.NewBuilder()
	lines := stream.Stream(b, []string{"text-lines"}, serde.String(), serde.String())
	words := stream.FlatMapValues(lines, func(_, line string) []string {
		return strings.Fields(strings.ToLower(line))
	}).WithSerdes(serde.String(), serde.String())
	counts := stream.Count(stream.GroupBy(words, func(_, w string) string { return w }, serde.String()),
		stream.Materialized("word-counts"))
	counts.ToStream().To("word-counts")
	topo, err := b.Build()
	if err != nil {
		return err
	}
	fmt.Print(topo.Describe())

	app, err := stream.NewApp(topo, stream.AppID("quickstart-wordcount"), stream.Brokers(seeds...),
		stream.StateDir(dir+"/state"), stream.CommitInterval(200*time.Millisecond))
	if err != nil {
		return err
	}
	appDone := make(chan error, 1)
	go func() { appDone <- app.Run(ctx) }()

	// Wait until every word of the text is counted, reading the store.
	want := map[string]int64{}
	for _, line := range text {
		for _, w := range strings.Fields(strings.ToLower(line)) {
			want[w]++
		}
	}
	q := stream.Query(app, "word-counts", serde.String(), serde.Int64())
	got := map[string]int64{}
	for !equal(got, want) {
		select {
		case err := <-appDone:
			return fmt.Errorf("the app stopped: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("counts not complete in time: have %v", got)
		case <-time.After(50 * time.Millisecond):
		}
		got = map[string]int64{}
		for w, n := range q.All() {
			got[w] = n
		}
	}
	words2 := make([]string, 0, len(got))
	for w := range got {
		words2 = append(words2, w)
	}
	slices.SortFunc(words2, func(a, b string) int {
		if got[a] != got[b] {
			return int(got[b] - got[a])
		}
		return strings.Compare(a, b)
	})
	fmt.Println("word counts, read from the app's state store:")
	for _, w := range words2 {
		fmt.Printf("  %-8s %d\n", w, got[w])
	}
	app.Close()
	if err := <-appDone; err != nil {
		return err
	}
	fmt.Println("done")
	return nil
}

func equal(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}
