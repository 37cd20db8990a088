// Command quickstart starts an embedded Sluice broker in a temporary
// directory, creates a topic, produces a few keyed records with franz-go,
// consumes them back, prints them and exits 0.
//
//	go run ./examples/quickstart
//
// With --brokers it talks to a running broker (`sluice broker`, Apache
// Kafka, Redpanda) instead of starting one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run() error {
	brokers := flag.String("brokers", "", "Kafka bootstrap addresses (host:port,...); empty starts an embedded broker")
	topic := flag.String("topic", "quickstart", "topic to write and read")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	addrs := *brokers
	if addrs == "" {
		dir, err := os.MkdirTemp("", "sluice-quickstart-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		b, err := broker.New(broker.Config{DataDir: dir, Listen: "127.0.0.1:0"})
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
		fmt.Printf("started an embedded broker on %s (data in %s)\n", addrs, dir)
	}

	client, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(addrs, ",")...),
		kgo.DefaultProduceTopic(*topic),
		kgo.ConsumeTopics(*topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return err
	}
	defer client.Close()

	adm := kadm.NewClient(client)
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, *topic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %q: %w", *topic, err)
	}

	words := []string{"alpha", "beta", "gamma", "delta", "epsilon", "zeta"}
	for i, w := range words {
		r := &kgo.Record{Key: []byte(fmt.Sprintf("user-%d", i%3)), Value: []byte(w)}
		if err := client.ProduceSync(ctx, r).FirstErr(); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
	}
	fmt.Printf("produced %d records to %q\n", len(words), *topic)

	read := 0
	for read < len(words) {
		fs := client.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("consume: %w", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			read++
			fmt.Printf("  partition %d offset %d  %s = %s\n", r.Partition, r.Offset, r.Key, r.Value)
		})
	}
	fmt.Printf("consumed %d records: done\n", read)
	return nil
}
