// Command wordcount is Kafka Streams' WordCount on Sluice: it reads lines
// from the topic text-lines (value = the line), splits each with
// strings.Fields(strings.ToLower(line)), and writes every updated count to
// word-counts (key = the word, value = the count as an 8-byte big-endian
// int64, the format of Kafka's LongSerializer). It runs until interrupted
// and resumes where it stopped (committed offsets, state restored from its
// changelog). Start several copies to share the work.
//
//	go run ./examples/wordcount --brokers 127.0.0.1:9092
//	go run ./examples/wordcount --brokers 127.0.0.1:9092 --guarantee exactly-once  # read word-counts with read_committed
//	printf 'hello world\nhello again\n' | sluice produce text-lines
//	sluice consume word-counts --from-beginning --format '%k %v\n'   # values are 8-byte ints
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/stream"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka bootstrap addresses, comma-separated")
	guarantee := flag.String("guarantee", "at-least-once", "processing guarantee: at-least-once or exactly-once (transactions; needs Kafka 2.5+ or sluice)")
	stateDir := flag.String("state-dir", "", "where state lives (default: a directory under the system temp dir)")
	partitions := flag.Int("partitions", 1, "partitions of text-lines and word-counts when this program creates them")
	flag.Parse()
	if err := run(*brokers, *guarantee, *stateDir, int32(*partitions)); err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(1)
	}
}

func run(brokers, guarantee, stateDir string, partitions int32) error {
	var g stream.ProcessingGuarantee
	switch guarantee {
	case "at-least-once":
		g = stream.AtLeastOnce
	case "exactly-once":
		g = stream.ExactlyOnce
	default:
		return fmt.Errorf("--guarantee %s: use at-least-once or exactly-once", guarantee)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	seeds := strings.Split(brokers, ",")
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	if err := ensureTopics(ctx, seeds, partitions, "text-lines", "word-counts"); err != nil {
		return err
	}
	b := stream.NewBuilder()
	lines := stream.Stream(b, []string{"text-lines"}, serde.String(), serde.String())
	words := stream.FlatMapValues(lines, func(_, line string) []string {
		return strings.Fields(strings.ToLower(line))
	}).WithSerdes(serde.String(), serde.String())
	counts := stream.Count(stream.GroupBy(words, func(_, w string) string { return w }, serde.String()),
		stream.Materialized("counts"))
	counts.ToStream().To("word-counts")
	topo, err := b.Build()
	if err != nil {
		return err
	}
	opts := []stream.AppOpt{stream.AppID("wordcount"), stream.Brokers(seeds...), stream.Logger(log),
		stream.Guarantee(g)}
	if g == stream.AtLeastOnce {
		opts = append(opts, stream.CommitInterval(time.Second))
	} // exactly-once: the default 100ms (each commit is a transaction)
	if stateDir != "" {
		opts = append(opts, stream.StateDir(stateDir))
	}
	app, err := stream.NewApp(topo, opts...)
	if err != nil {
		return err
	}
	log.Info("word count running; stop with Ctrl-C", "brokers", brokers, "guarantee", g)
	return app.Run(ctx)
}

func ensureTopics(ctx context.Context, seeds []string, partitions int32, topics ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopics(cctx, partitions, 1, nil, topics...)
	if err != nil {
		return fmt.Errorf("cannot reach Kafka at %v: %w (is a broker running? set --brokers)", seeds, err)
	}
	for _, r := range resp {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}
