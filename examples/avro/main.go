// Command avro produces and consumes evolving Avro records through the
// schema registry: it starts an embedded broker and a registry (or uses
// --brokers and --registry), produces Order records with schema v1, evolves
// the schema to v2 (a new field with a default, a promoted type), produces
// more, then reads every record back with the v2 serde: the v1 records
// decode with the new field's default. It exits 0 when all decode.
//
//	go run ./examples/avro
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/serde/registry"
)

const (
	orderV1 = `{"type":"record","name":"Order","namespace":"shop","fields":[
		{"name":"id","type":"int"},
		{"name":"item","type":"string"}]}`
	// v2 widens id to long and adds qty with a default: BACKWARD compatible.
	orderV2 = `{"type":"record","name":"Order","namespace":"shop","fields":[
		{"name":"id","type":"long"},
		{"name":"item","type":"string"},
		{"name":"qty","type":"int","default":1}]}`
)

// OrderV1 is the first version of the record.
type OrderV1 struct {
	ID   int32  `avro:"id"`
	Item string `avro:"item"`
}

// OrderV2 is the evolved record.
type OrderV2 struct {
	ID   int64  `avro:"id"`
	Item string `avro:"item"`
	Qty  int32  `avro:"qty"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "avro:", err)
		os.Exit(1)
	}
}

func run() error {
	brokers := flag.String("brokers", "", "Kafka bootstrap addresses; empty starts an embedded broker")
	regURL := flag.String("registry", "", "schema registry URL; empty starts one on the brokers")
	topic := flag.String("topic", "orders", "topic to write and read")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	addrs := *brokers
	if addrs == "" {
		dir, err := os.MkdirTemp("", "sluice-avro-")
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
		defer func() { b.Close(); <-done }()
		addrs = b.Addr()
		fmt.Printf("started an embedded broker on %s\n", addrs)
	}
	seeds := strings.Split(addrs, ",")
	url := *regURL
	if url == "" {
		s, err := registry.NewServer(registry.Config{Brokers: []kgo.Opt{kgo.SeedBrokers(seeds...)}, Listen: "127.0.0.1:0"})
		if err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		defer func() { s.Close(); <-done }()
		url = s.URL()
		if err := waitReady(ctx, url); err != nil {
			return err
		}
		fmt.Printf("started a schema registry on %s\n", url)
	}

	src, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		return err
	}
	v1, err := registry.NewAvro[OrderV1](src, orderV1)
	if err != nil {
		return err
	}
	v2, err := registry.NewAvro[OrderV2](src, orderV2)
	if err != nil {
		return err
	}
	// Runtimes bind TopicAware serdes per topic (subject "<topic>-value");
	// here by hand.
	var w1 serde.Serde[OrderV1] = v1.ForTopic(*topic, false)
	var w2 serde.Serde[OrderV2] = v2.ForTopic(*topic, false)

	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(*topic),
		kgo.ConsumeTopics(*topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, *topic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic: %w", err)
	}

	produce := func(b []byte) error { return cl.ProduceSync(ctx, &kgo.Record{Value: b}).FirstErr() }
	for i := range 3 {
		b, err := w1.AppendEncode(nil, OrderV1{ID: int32(i), Item: fmt.Sprintf("book-%d", i)})
		if err != nil {
			return err
		}
		if err := produce(b); err != nil {
			return err
		}
	}
	fmt.Println("produced 3 orders with schema v1 (registered automatically)")
	for i := 3; i < 6; i++ {
		b, err := w2.AppendEncode(nil, OrderV2{ID: int64(i) << 33, Item: fmt.Sprintf("pen-%d", i), Qty: int32(i)})
		if err != nil {
			return err
		}
		if err := produce(b); err != nil {
			return err
		}
	}
	fmt.Println("produced 3 orders with schema v2 (compatible evolution registered as version 2)")

	for read := 0; read < 6; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("consume: %w", err)
		}
		for _, r := range fs.Records() {
			id, _, _ := registry.ParseHeader(r.Value)
			o, err := w2.Decode(r.Value)
			if err != nil {
				return fmt.Errorf("decode offset %d: %w", r.Offset, err)
			}
			fmt.Printf("  offset %d (schema id %d): %+v\n", r.Offset, id, o)
			read++
		}
	}
	fmt.Println("read all 6 with the v2 schema: done")
	return nil
}

// waitReady polls GET / until the registry answers.
func waitReady(ctx context.Context, url string) error {
	for {
		resp, err := http.Get(url + "/subjects")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("registry not ready: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
