package main

import (
	"errors"
	"fmt"
	"log/slog"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/serde/registry"
)

func newRegistryCmd() *cobra.Command {
	var (
		cfg      registry.Config
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Run a Schema Registry compatible with Confluent's REST API",
		Long: `Run the schema registry alone, against the Kafka cluster at --brokers. It keeps
its schemas in the compacted topic --topic (created if missing) and serves
Confluent's REST API on --listen, so Confluent-compatible clients and serdes
work unchanged.

Several registries may run against one cluster: they elect one writer through
the consumer group --group, and the others forward writes to it, reaching it
at its --advertise URL.

It prints "sluice registry listening on URL" once it serves, logs to stderr,
and stops cleanly on Ctrl-C or SIGTERM.`,
		Example: `  sluice registry --brokers 127.0.0.1:9092
  sluice registry --brokers kafka:9092 --listen 0.0.0.0:8081 --advertise http://registry-1:8081`,
		Args: cobra.NoArgs,
	}
	flags := addClientFlags(cmd, false, false)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var level slog.Level
		if err := level.UnmarshalText([]byte(logLevel)); err != nil {
			return fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", logLevel)
		}
		brokers, err := flags.brokerList(cmd)
		if err != nil {
			return err
		}
		cfg.Brokers = []kgo.Opt{kgo.SeedBrokers(brokers...)}
		cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
		s, err := registry.NewServer(cfg)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return fmt.Errorf("cannot listen on %s: address already in use (choose another --listen)", cfg.Listen)
			}
			return fmt.Errorf("cannot start registry: %w", err)
		}
		defer s.Close()
		fmt.Fprintf(cmd.OutOrStdout(), "sluice registry listening on %s\n", s.URL())
		if err := s.Run(cmd.Context()); err != nil {
			return fmt.Errorf("registry stopped: %w", err)
		}
		return nil
	}
	fs := cmd.Flags()
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:8081", "host:port to serve the REST API on (port 0 picks a free one)")
	fs.StringVar(&cfg.AdvertisedURL, "advertise", "", "URL other registries forward writes to (default: http:// + the listen address)")
	fs.StringVar(&cfg.Topic, "topic", "_schemas", "compacted topic holding the schemas (kafkastore.topic)")
	fs.StringVar(&cfg.GroupID, "group", "schema-registry", "consumer group electing the writer among registries")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}
