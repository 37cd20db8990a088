package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluicehq/sluice/internal/cli"
)

func newTopicsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topics",
		Short: "Create, list, describe, alter and delete topics",
		Long:  "Manage topics on any Kafka-compatible cluster (admin requests through franz-go's kadm).",
		Example: `  sluice topics create orders --partitions 3 --config retention.ms=86400000
  sluice topics list
  sluice topics describe orders --output json`,
		Args: cobra.NoArgs,
	}
	f := addClientFlags(cmd, true, true)
	cmd.AddCommand(
		newTopicsCreateCmd(f), newTopicsListCmd(f), newTopicsDescribeCmd(f),
		newTopicsDeleteCmd(f), newTopicsAlterConfigCmd(f),
	)
	return cmd
}

// withAdmin connects to the brokers of f and runs fn with an admin client.
func withAdmin(cmd *cobra.Command, f *clientFlags, fn func(context.Context, *kadm.Client, cli.Output) error) error {
	out, err := f.outputFormat()
	if err != nil {
		return err
	}
	brokers, err := f.brokerList(cmd)
	if err != nil {
		return err
	}
	cl, err := cli.Connect(cmd.Context(), brokers)
	if err != nil {
		return err
	}
	defer cl.Close()
	return fn(cmd.Context(), kadm.NewClient(cl), out)
}

func newTopicsCreateCmd(f *clientFlags) *cobra.Command {
	var (
		spec    cli.TopicSpec
		configs []string
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a topic",
		Long: `Create a topic with --partitions partitions. --config sets Kafka topic configs
(retention.ms, cleanup.policy, segment.bytes, ...) and may be repeated.`,
		Example: `  sluice topics create orders --partitions 3
  sluice topics create users --config cleanup.policy=compact --config retention.ms=-1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec.Name = args[0]
			if spec.Partitions < 1 {
				return fmt.Errorf("invalid --partitions %d: must be >= 1", spec.Partitions)
			}
			if spec.ReplicationFactor < 1 {
				return fmt.Errorf("invalid --replication-factor %d: must be >= 1", spec.ReplicationFactor)
			}
			var err error
			if spec.Configs, err = cli.ParseKeyValues("config", configs); err != nil {
				return err
			}
			return withAdmin(cmd, f, func(ctx context.Context, adm *kadm.Client, out cli.Output) error {
				if err := cli.CreateTopic(ctx, adm, spec); err != nil {
					return err
				}
				return cli.WriteDone(cmd.OutOrStdout(), out, spec.Name, "created",
					fmt.Sprintf("created topic %s with %d partitions", spec.Name, spec.Partitions))
			})
		},
	}
	cmd.Flags().Int32VarP(&spec.Partitions, "partitions", "p", 1, "number of partitions")
	cmd.Flags().Int16VarP(&spec.ReplicationFactor, "replication-factor", "r", 1, "replicas per partition (a single sluice broker supports 1)")
	cmd.Flags().StringArrayVarP(&configs, "config", "c", nil, "topic config key=value (repeatable)")
	return cmd
}

func newTopicsListCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List topics and their partition counts",
		Long:    "List every topic with its partition count; internal topics (like __consumer_offsets) are marked.",
		Example: "  sluice topics list\n  sluice topics list --output json",
		Aliases: []string{"ls"},
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAdmin(cmd, f, func(ctx context.Context, adm *kadm.Client, out cli.Output) error {
				topics, err := cli.ListTopics(ctx, adm)
				if err != nil {
					return err
				}
				return cli.WriteTopicList(cmd.OutOrStdout(), out, topics)
			})
		},
	}
}

func newTopicsDescribeCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a topic's partitions, offsets and configs",
		Long: `Show each partition of a topic with its leader, replicas, and log start and end
offsets, then the topic's configs as the broker reports them (DescribeConfigs)
with where each value comes from: topic (set on the topic, by create --config
or alter-config), static-broker (the broker's startup configuration, e.g.
` + "`sluice broker --topic-default`" + `), dynamic-broker (a broker config changed at
runtime) or default (Kafka's default).`,
		Example: "  sluice topics describe orders\n  sluice topics describe orders --output json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(cmd, f, func(ctx context.Context, adm *kadm.Client, out cli.Output) error {
				d, err := cli.DescribeTopic(ctx, adm, args[0])
				if err != nil {
					return err
				}
				return cli.WriteTopicDescription(cmd.OutOrStdout(), out, d)
			})
		},
	}
}

func newTopicsDeleteCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Short:   "Delete a topic and all its records",
		Example: "  sluice topics delete orders",
		Aliases: []string{"rm"},
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(cmd, f, func(ctx context.Context, adm *kadm.Client, out cli.Output) error {
				if err := cli.DeleteTopic(ctx, adm, args[0]); err != nil {
					return err
				}
				return cli.WriteDone(cmd.OutOrStdout(), out, args[0], "deleted", "deleted topic "+args[0])
			})
		},
	}
}

func newTopicsAlterConfigCmd(f *clientFlags) *cobra.Command {
	var set, del []string
	cmd := &cobra.Command{
		Use:   "alter-config NAME",
		Short: "Set or remove topic configs",
		Long: `Change a topic's configs with IncrementalAlterConfigs: --config key=value sets a
value, --delete-config key removes the topic's own value so the broker default
applies again. Configs not named are left as they are.`,
		Example: `  sluice topics alter-config orders --config retention.ms=3600000
  sluice topics alter-config orders --delete-config retention.ms`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kvs, err := cli.ParseKeyValues("config", set)
			if err != nil {
				return err
			}
			if len(kvs) == 0 && len(del) == 0 {
				return errors.New("nothing to change: give --config key=value or --delete-config key")
			}
			return withAdmin(cmd, f, func(ctx context.Context, adm *kadm.Client, out cli.Output) error {
				if err := cli.AlterTopicConfig(ctx, adm, args[0], kvs, del); err != nil {
					return err
				}
				return cli.WriteDone(cmd.OutOrStdout(), out, args[0], "altered", "updated configs of topic "+args[0])
			})
		},
	}
	cmd.Flags().StringArrayVarP(&set, "config", "c", nil, "topic config key=value to set (repeatable)")
	cmd.Flags().StringArrayVar(&del, "delete-config", nil, "topic config key to reset to the default (repeatable)")
	return cmd
}
