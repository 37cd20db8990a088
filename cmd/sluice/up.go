package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/connect"
	"github.com/sluicehq/sluice/serde/registry"
)

func newUpCmd() *cobra.Command {
	var (
		dataDir, listen, registryListen, connectListen, fsync, logLevel string
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the broker, the schema registry and a connect worker in one process",
		Long: `Run Sluice's services together, for development and single-machine use:
the Kafka-compatible broker on --listen (data in --data-dir/broker), the
Schema Registry on --registry-listen, which keeps its schemas in the broker,
and a connect worker serving Kafka Connect's REST API on --connect-listen,
which keeps its state in the broker too.

It prints each service's address once it serves, logs to stderr, and stops
everything cleanly on Ctrl-C or SIGTERM. The admin endpoint is not part of
it yet.`,
		Example: `  sluice up
  sluice up --data-dir /var/lib/sluice --listen 0.0.0.0:9092 --registry-listen 0.0.0.0:8081 --connect-listen 0.0.0.0:8083`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", logLevel)
			}
			policy, err := broker.ParseFsyncPolicy(fsync)
			if err != nil {
				return fmt.Errorf("invalid --fsync %q: want always, interval or never", fsync)
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			b, err := broker.New(broker.Config{DataDir: filepath.Join(dataDir, "broker"), Listen: listen, Fsync: policy, Logger: log.With("service", "broker")})
			if err != nil {
				if errors.Is(err, syscall.EADDRINUSE) {
					return fmt.Errorf("cannot listen on %s: address already in use (is another broker running? choose another --listen)", listen)
				}
				return fmt.Errorf("cannot start broker: %w", err)
			}
			defer b.Close()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "sluice broker listening on %s (data dir %s)\n", b.Addr(), dataDir)
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			g, ctx := errgroup.WithContext(ctx)
			g.Go(func() error { return b.Run(ctx) })
			reg, err := registry.NewServer(registry.Config{
				Brokers: []kgo.Opt{kgo.SeedBrokers(b.Addr())},
				Listen:  registryListen,
				Logger:  log.With("service", "registry"),
			})
			if err != nil {
				cancel()
				_ = g.Wait()
				if errors.Is(err, syscall.EADDRINUSE) {
					return fmt.Errorf("cannot listen on %s: address already in use (choose another --registry-listen)", registryListen)
				}
				return fmt.Errorf("cannot start the schema registry: %w", err)
			}
			defer reg.Close()
			fmt.Fprintf(out, "sluice registry listening on %s\n", reg.URL())
			g.Go(func() error { return reg.Run(ctx) })
			con, err := connect.NewServer(connect.Config{
				Brokers: []kgo.Opt{kgo.SeedBrokers(b.Addr())},
				Listen:  connectListen,
				Plugins: builtinPlugins(),
				Logger:  log.With("service", "connect"),
			})
			if err != nil {
				cancel()
				_ = g.Wait()
				if errors.Is(err, syscall.EADDRINUSE) {
					return fmt.Errorf("cannot listen on %s: address already in use (choose another --connect-listen)", connectListen)
				}
				return fmt.Errorf("cannot start connect: %w", err)
			}
			defer con.Close()
			fmt.Fprintf(out, "sluice connect listening on %s\n", con.URL())
			g.Go(func() error { return con.Run(ctx) })
			if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("stopped: %w", err)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&dataDir, "data-dir", "./sluice-data", "directory for all data (created if missing)")
	fs.StringVar(&listen, "listen", "127.0.0.1:9092", "host:port of the Kafka-compatible broker")
	fs.StringVar(&registryListen, "registry-listen", "127.0.0.1:8081", "host:port of the schema registry's REST API")
	fs.StringVar(&connectListen, "connect-listen", "127.0.0.1:8083", "host:port of the connect worker's REST API")
	fs.StringVar(&fsync, "fsync", "interval", "when the broker fsyncs: always, interval or never")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}
