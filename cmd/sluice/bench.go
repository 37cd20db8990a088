package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/bench"
	"github.com/sluicehq/sluice/internal/cli"
)

// benchFlags are the flags shared by bench produce and bench consume
// (consume needs the producer's for --produce-first).
type benchFlags struct {
	client     *clientFlags
	cfg        bench.Config
	idempotent bool
	quiet      bool
}

// config fills in what the flags cannot hold directly.
func (b *benchFlags) config(cmd *cobra.Command) (bench.Config, cli.Output, error) {
	cfg := b.cfg
	out, err := b.client.outputFormat()
	if err != nil {
		return cfg, out, err
	}
	if cfg.Brokers, err = b.client.brokerList(cmd); err != nil {
		return cfg, out, err
	}
	if cfg.Records <= 0 {
		return cfg, out, fmt.Errorf("invalid --records %d: must be > 0", cfg.Records)
	}
	if cfg.Partitions <= 0 {
		return cfg, out, fmt.Errorf("invalid --partitions %d: must be > 0", cfg.Partitions)
	}
	if cfg.Clients <= 0 {
		return cfg, out, fmt.Errorf("invalid --clients %d: must be > 0", cfg.Clients)
	}
	fl := cmd.Flags()
	// franz-go's idempotent producer needs acks=all: follow --acks unless
	// --idempotent was asked for explicitly.
	cfg.NoIdempotence = !b.idempotent
	if !fl.Changed("idempotent") && cfg.Acks != "all" && cfg.Acks != "-1" {
		cfg.NoIdempotence = true
	}
	if !fl.Changed("linger") {
		cfg.Linger = bench.DefaultLinger
	}
	if !b.quiet {
		cfg.Progress = cmd.ErrOrStderr()
	}
	return cfg, out, nil
}

func newBenchCmd() *cobra.Command {
	b := &benchFlags{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure produce and consume throughput and latency against any Kafka",
		Long: `Load-test a Kafka-compatible cluster (sluice, Apache Kafka, Redpanda, franz-go's
kfake, ...) with the franz-go client. Each run prints records/s, MB/s and, for
produce, per-record latency percentiles (from the Produce call to its
acknowledgement), then one Go benchfmt line, so runs compare with benchstat:

  sluice bench produce > new.txt; benchstat old.txt new.txt

Progress goes to stderr every second (--quiet turns it off).`,
		Example: `  sluice bench produce --records 1000000 --record-size 100
  sluice bench produce --sequential --records 10000
  sluice bench consume --records 1000000
  sluice bench consume --produce-first --topic bench-2 --partitions 4`,
		Args: cobra.NoArgs,
	}
	b.client = addClientFlags(cmd, true, true)
	fs := cmd.PersistentFlags()
	fs.StringVar(&b.cfg.Topic, "topic", "sluice-bench", "topic to use (created if missing)")
	fs.Int64VarP(&b.cfg.Records, "records", "n", 1_000_000, "number of records")
	fs.IntVarP(&b.cfg.RecordSize, "record-size", "s", 100, "value bytes per record (random, so incompressible)")
	fs.Int32VarP(&b.cfg.Partitions, "partitions", "p", 1, "partitions of the topic when it is created")
	fs.StringVar(&b.cfg.Acks, "acks", "all", "produce acknowledgements: all, 1 or 0")
	fs.StringVarP(&b.cfg.Compression, "compression", "z", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	fs.DurationVar(&b.cfg.Linger, "linger", 0, "how long a batch waits for more records (default: franz-go's 10ms; 0 with --sequential)")
	fs.IntVar(&b.cfg.MaxInflight, "max-inflight", 0, "produce requests in flight per broker (needs --idempotent=false; default: franz-go's)")
	fs.BoolVar(&b.idempotent, "idempotent", true, "idempotent producer (franz-go's default; needs --acks all)")
	fs.BoolVar(&b.cfg.Sequential, "sequential", false, "produce one record at a time, waiting for each ack (measures latency)")
	fs.IntVar(&b.cfg.Clients, "clients", 1, "producer clients sharing the records")
	fs.BoolVarP(&b.quiet, "quiet", "q", false, "no progress lines on stderr")
	cmd.AddCommand(newBenchProduceCmd(b), newBenchConsumeCmd(b))
	return cmd
}

// printResult writes a result as text or JSON.
func printResult(cmd *cobra.Command, out cli.Output, r *bench.Result) error {
	if out == cli.JSON {
		return r.WriteJSON(cmd.OutOrStdout())
	}
	return r.WriteText(cmd.OutOrStdout())
}

func newBenchProduceCmd(b *benchFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "produce",
		Short: "Produce --records records as fast as possible and report throughput and latency",
		Long: `Produce --records records of --record-size random bytes to --topic (created with
--partitions if missing) and report records/s, MB/s and the p50, p99, p99.9
and max latency from each Produce call to its acknowledgement.

By default records are produced asynchronously, as fast as the client takes
them; --sequential sends one at a time and waits for each acknowledgement,
which measures the round trip of a single record.`,
		Example: `  sluice bench produce
  sluice bench produce --records 200000 --record-size 1024 --compression lz4 --partitions 4
  sluice bench produce --sequential --records 10000 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, out, err := b.config(cmd)
			if err != nil {
				return err
			}
			r, err := bench.Produce(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			return printResult(cmd, out, r)
		},
	}
}

func newBenchConsumeCmd(b *benchFlags) *cobra.Command {
	var produceFirst bool
	cmd := &cobra.Command{
		Use:   "consume",
		Short: "Consume --records records from the start of a topic and report throughput",
		Long: `Read --records records from the start of --topic with one client and report
records/s and MB/s. The topic must already hold that many records: run
"sluice bench produce" with the same --topic and --records first, or pass
--produce-first, which runs it (with the producer flags) and prints both
results. It gives up if no record arrives for --idle.`,
		Example: `  sluice bench produce --records 1000000 && sluice bench consume --records 1000000
  sluice bench consume --produce-first --records 500000 --topic bench-c`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, out, err := b.config(cmd)
			if err != nil {
				return err
			}
			if produceFirst {
				r, err := bench.Produce(cmd.Context(), cfg)
				if err != nil {
					return err
				}
				if err := printResult(cmd, out, r); err != nil {
					return err
				}
			}
			r, err := bench.Consume(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			return printResult(cmd, out, r)
		},
	}
	cmd.Flags().BoolVar(&produceFirst, "produce-first", false, "produce --records records before consuming them")
	cmd.Flags().DurationVar(&b.cfg.Idle, "idle", 10*time.Second, "give up when no record arrived for this long")
	return cmd
}
