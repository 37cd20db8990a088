package main

import (
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/internal/cli"
)

func newBrokerCmd() *cobra.Command {
	var (
		cfg        broker.Config
		fsync      string
		autoCreate bool
		partitions int32
		logLevel   string
		defaults   []string
	)
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run a single-node Kafka-compatible broker",
		Long: `Run the Sluice broker alone: a single-node, Kafka-compatible broker that keeps
its topics in --data-dir. Any Kafka client can connect to --listen (or to
--advertise, if clients reach it under another name).

It prints "sluice broker listening on ADDR (data dir DIR)" once it accepts
connections, logs to stderr, and stops cleanly on Ctrl-C or SIGTERM.

--fsync decides when written records reach the disk: "always" before each
acknowledgement (group commit), "interval" every --fsync-interval (the default;
a killed process loses nothing acknowledged, a power loss up to one interval),
or "never" (left to the operating system).

--topic-default sets the broker-wide default of a topic config, spelled as the
topic config (retention.ms=3600000, not log.retention.ms); topics without their
own value use it, and ` + "`sluice topics describe`" + ` shows it as static-broker.`,
		Example: `  sluice broker --data-dir ./sluice-data
  sluice broker --data-dir /var/lib/sluice --listen 0.0.0.0:9092 --advertise kafka.internal:9092 --fsync always
  sluice broker --topic-default retention.ms=86400000 --topic-default segment.bytes=104857600`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.Fsync, err = broker.ParseFsyncPolicy(fsync); err != nil {
				return fmt.Errorf("invalid --fsync %q: want always, interval or never", fsync)
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", logLevel)
			}
			if partitions < 1 {
				return fmt.Errorf("invalid --default-partitions %d: must be >= 1", partitions)
			}
			kvs, err := cli.ParseKeyValues("topic-default", defaults)
			if err != nil {
				return err
			}
			if len(kvs) > 0 {
				cfg.TopicDefaults = make(map[string]string, len(kvs))
				for _, kv := range kvs {
					cfg.TopicDefaults[kv[0]] = kv[1]
				}
			}
			cfg.DisableAutoCreateTopics = !autoCreate
			cfg.DefaultPartitions = partitions
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			return runBroker(cmd, cfg)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cfg.DataDir, "data-dir", "./sluice-data", "directory for topic data (created if missing)")
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:9092", "host:port to accept Kafka clients on (port 0 picks a free one)")
	fs.StringVar(&cfg.Advertise, "advertise", "", "host:port clients are told to connect to (default: the listen address)")
	fs.StringVar(&fsync, "fsync", "interval", "when to fsync: always, interval or never")
	fs.DurationVar(&cfg.FsyncInterval, "fsync-interval", 200*time.Millisecond, "fsync period with --fsync interval")
	fs.Int32Var(&cfg.NodeID, "node-id", 0, "this broker's node id")
	fs.BoolVar(&autoCreate, "auto-create-topics", true, "create unknown topics on first produce or metadata request (auto.create.topics.enable)")
	fs.Int32Var(&partitions, "default-partitions", 1, "partitions of auto-created topics (num.partitions)")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringArrayVar(&defaults, "topic-default", nil, "broker-wide default of a topic config, key=value (repeatable)")
	return cmd
}

// runBroker starts the broker and serves until the command's context ends
// (SIGINT/SIGTERM in main).
func runBroker(cmd *cobra.Command, cfg broker.Config) error {
	b, err := broker.New(cfg)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("cannot listen on %s: address already in use (is another broker running? choose another --listen)", cfg.Listen)
		}
		return fmt.Errorf("cannot start broker: %w", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "sluice broker listening on %s (data dir %s)\n", b.Addr(), cfg.DataDir)
	cfg.Logger.Info("broker started", "config", cfg.String(), "addr", b.Addr())
	err = b.Run(cmd.Context())
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("broker stopped: %w", err)
	}
	cfg.Logger.Info("broker stopped")
	return nil
}
