package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connect"
)

func newConnectCmd() *cobra.Command {
	var (
		cfg      connect.Config
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "connect",
		Short: "Run a connect worker serving Kafka Connect's REST API",
		Long: `Run a connect worker against the Kafka cluster at --brokers. It keeps connector
configurations, source offsets and statuses in the compacted topics
connect-configs, connect-offsets and connect-status (created if missing),
restarts the connectors found there, and serves Kafka Connect's REST API on
--listen. Plugins: postgres-cdc (PostgreSQL change data capture, Debezium's
records), postgres-sink (upserts into PostgreSQL tables), file-source and
file-sink; GET /connector-plugins lists them and their configuration.

With --group, several workers share the connectors and tasks: requests may go
to any of them, and when one stops the others take over its tasks.

It prints "sluice connect listening on URL" once it serves, logs to stderr,
and stops cleanly on Ctrl-C or SIGTERM.`,
		Example: `  sluice connect --brokers 127.0.0.1:9092
  sluice connect --brokers kafka:9092 --group connect-cluster --listen 0.0.0.0:8083
  sluice connectors create lines --config connector.class=file-source --config file=/tmp/in.txt --config topic=lines
  sluice connectors create shop-cdc --config connector.class=postgres-cdc --config database.hostname=db \
      --config database.user=postgres --config database.dbname=shop --config topic.prefix=shop`,
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
		cfg.Plugins = builtinPlugins()
		cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
		s, err := connect.NewServer(cfg)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return fmt.Errorf("cannot listen on %s: address already in use (choose another --listen)", cfg.Listen)
			}
			return fmt.Errorf("cannot start connect: %w", err)
		}
		defer s.Close()
		fmt.Fprintf(cmd.OutOrStdout(), "sluice connect listening on %s\n", s.URL())
		if err := s.Run(cmd.Context()); err != nil {
			return fmt.Errorf("connect stopped: %w", err)
		}
		return nil
	}
	fs := cmd.Flags()
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:8083", "host:port to serve the REST API on (port 0 picks a free one)")
	fs.StringVar(&cfg.GroupID, "group", "", "run distributed with the other workers of this group id (Kafka Connect's group.id); each needs a unique --worker-id")
	fs.BoolVar(&cfg.ExactlyOnceSource, "exactly-once-source", false, "write each source poll's records and offsets in one transaction (exactly.once.source.support=enabled)")
	fs.StringVar(&cfg.WorkerID, "worker-id", "", "worker id reported in statuses (default: the listen address)")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

func newConnectorsCmd() *cobra.Command {
	var url string
	cmd := &cobra.Command{
		Use:   "connectors",
		Short: "Manage connectors through a connect worker's REST API",
		Example: `  sluice connectors list
  sluice connectors create out --config connector.class=file-sink --config file=/tmp/out.txt --config topics=lines
  sluice connectors status out`,
	}
	cmd.PersistentFlags().StringVar(&url, "url", "http://127.0.0.1:8083", "URL of the connect worker's REST API")
	call := func(cmd *cobra.Command, method, path string, body any) error {
		var r io.Reader
		if body != nil {
			b, err := json.Marshal(body)
			if err != nil {
				return err
			}
			r = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(cmd.Context(), method, strings.TrimSuffix(url, "/")+path, r)
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("cannot reach connect at %s: %w", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			var e struct {
				Message string `json:"message"`
			}
			if json.Unmarshal(b, &e) == nil && e.Message != "" {
				return fmt.Errorf("%s (HTTP %d)", e.Message, resp.StatusCode)
			}
			return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
		}
		if len(bytes.TrimSpace(b)) > 0 {
			var out bytes.Buffer
			if json.Indent(&out, b, "", "  ") == nil {
				b = out.Bytes()
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(bytes.TrimSpace(b)))
		}
		return nil
	}
	named := func(use, short, method, suffix string) *cobra.Command {
		return &cobra.Command{Use: use + " NAME", Short: short, Args: cobra.ExactArgs(1),
			Example: "  sluice connectors " + use + " my-connector",
			RunE: func(cmd *cobra.Command, args []string) error {
				return call(cmd, method, "/connectors/"+args[0]+suffix, nil)
			}}
	}
	list := &cobra.Command{Use: "list", Short: "List connectors", Args: cobra.NoArgs,
		Example: "  sluice connectors list --url http://127.0.0.1:8083",
		RunE:    func(cmd *cobra.Command, _ []string) error { return call(cmd, "GET", "/connectors", nil) }}
	var (
		kvs     []string
		cfgFile string
	)
	create := &cobra.Command{Use: "create NAME", Short: "Create a connector from --config k=v pairs and/or a JSON --file", Args: cobra.ExactArgs(1),
		Example: `  sluice connectors create lines --config connector.class=file-source --config file=/tmp/in.txt --config topic=lines
  sluice connectors create shop-cdc --config connector.class=postgres-cdc --config database.hostname=db \
      --config database.user=postgres --config database.dbname=shop --config topic.prefix=shop
  sluice connectors create out --file out.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			config := map[string]string{}
			if cfgFile != "" {
				b, err := os.ReadFile(cfgFile)
				if err != nil {
					return err
				}
				if err := json.Unmarshal(b, &config); err != nil {
					return fmt.Errorf("%s: want a JSON object of string values: %w", cfgFile, err)
				}
			}
			for _, kv := range kvs {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--config %q: want key=value", kv)
				}
				config[k] = v
			}
			return call(cmd, "POST", "/connectors", map[string]any{"name": args[0], "config": config})
		}}
	create.Flags().StringArrayVar(&kvs, "config", nil, "configuration key=value (repeatable)")
	create.Flags().StringVar(&cfgFile, "file", "", "JSON file with the configuration object")
	var includeTasks, onlyFailed bool
	restart := &cobra.Command{Use: "restart NAME", Short: "Restart a connector (and its tasks with --include-tasks)", Args: cobra.ExactArgs(1),
		Example: "  sluice connectors restart out --include-tasks --only-failed",
		RunE: func(cmd *cobra.Command, args []string) error {
			q := ""
			if includeTasks || onlyFailed {
				q = fmt.Sprintf("?includeTasks=%t&onlyFailed=%t", includeTasks, onlyFailed)
			}
			return call(cmd, "POST", "/connectors/"+args[0]+"/restart"+q, nil)
		}}
	restart.Flags().BoolVar(&includeTasks, "include-tasks", false, "restart the tasks too")
	restart.Flags().BoolVar(&onlyFailed, "only-failed", false, "restart only what has FAILED")
	cmd.AddCommand(list, create, restart,
		named("status", "Show a connector's status", "GET", "/status"),
		named("delete", "Delete a connector", "DELETE", ""),
		named("pause", "Pause a connector", "PUT", "/pause"),
		named("resume", "Resume a connector", "PUT", "/resume"),
		named("stop", "Stop a connector (no tasks until resumed)", "PUT", "/stop"))
	return cmd
}
