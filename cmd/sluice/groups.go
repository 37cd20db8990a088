package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluicehq/sluice/internal/cli"
)

func newGroupsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "groups",
		Aliases: []string{"group"},
		Short:   "List, describe, reset and delete consumer groups",
		Long: `Inspect and manage consumer groups on any Kafka-compatible cluster, like
kafka-consumer-groups.sh: their members, committed offsets and lag, and moving
or deleting those offsets while the group's consumers are stopped.`,
		Example: `  sluice groups list
  sluice groups describe audit
  sluice groups reset-offsets audit --topic orders --to-earliest --execute
  sluice groups delete audit`,
		Args: cobra.NoArgs,
	}
	f := addClientFlags(cmd, true, true)
	cmd.AddCommand(
		newGroupsListCmd(f), newGroupsDescribeCmd(f), newGroupsResetOffsetsCmd(f),
		newGroupsDeleteCmd(f), newGroupsDeleteOffsetsCmd(f),
	)
	return cmd
}

func newGroupsListCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List consumer groups with their state and member count",
		Long: `List every group the cluster knows with its state (Stable, Empty,
PreparingRebalance, ...), protocol type (consumer for Kafka consumers, connect
for Connect workers) and number of members.`,
		Example: "  sluice groups list\n  sluice groups list --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAdmin(cmd, f, func(ctx context.Context, adm *kadm.Client, out cli.Output) error {
				groups, err := cli.ListGroups(ctx, adm)
				if err != nil {
					return err
				}
				return cli.WriteGroupList(cmd.OutOrStdout(), out, groups)
			})
		},
	}
}

func newGroupsDescribeCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "describe GROUP [GROUP...]",
		Short: "Show a group's members, committed offsets and lag",
		Long: `Show a group's state, assignor and coordinator, its members with the
partitions assigned to each, then one row per partition that has a committed
offset or is assigned to a member:

  TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID

CURRENT-OFFSET is the group's committed offset (the next record it will read),
LAG is LOG-END-OFFSET minus CURRENT-OFFSET, and - marks a value that is not
known (no commit yet, or no member assigned).`,
		Example: "  sluice groups describe audit\n  sluice groups describe audit billing --output json",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(cmd, f, func(ctx context.Context, adm *kadm.Client, out cli.Output) error {
				ds, err := cli.DescribeGroups(ctx, adm, args...)
				if len(ds) > 0 || out == cli.JSON {
					if werr := cli.WriteGroupDescriptions(cmd.OutOrStdout(), out, ds); werr != nil {
						return errors.Join(err, werr)
					}
				}
				return err
			})
		},
	}
}

func newGroupsResetOffsetsCmd(f *clientFlags) *cobra.Command {
	var (
		spec       cli.ResetSpec
		topics     []string
		toEarliest bool
		toLatest   bool
		toOffset   int64
		toDatetime string
		shiftBy    int64
		execute    bool
	)
	cmd := &cobra.Command{
		Use:   "reset-offsets GROUP (--topic T[:P,P...]... | --all-topics) --to-... [--execute]",
		Short: "Move a group's committed offsets (dry run unless --execute)",
		Long: `Move the committed offsets of GROUP so its consumers re-read or skip records.

Choose the partitions with --topic (repeatable; TOPIC for all its partitions,
TOPIC:0,2 for some) or --all-topics (every partition the group has committed
offsets for), and exactly one target:

  --to-earliest        the log start offset
  --to-latest          the log end offset (skip everything not yet read)
  --to-offset N        offset N (clamped to the log's start and end)
  --to-datetime T      the first record at or after time T; partitions with no
                       record after T go to the end. T is RFC 3339
                       (2024-05-01T12:00:00Z, 2024-05-01T14:00:00+02:00) or
                       local time (2024-05-01T12:00:00, 2024-05-01)
  --shift-by N         the committed offset plus N (negative: back), clamped

Without --execute this is a dry run: it prints the plan (TOPIC PARTITION
CURRENT-OFFSET NEW-OFFSET) and changes nothing. The group must be inactive, as
Kafka requires: stop its consumers first (see ` + "`sluice groups describe GROUP`" + `).`,
		Example: `  sluice groups reset-offsets audit --topic orders --to-earliest
  sluice groups reset-offsets audit --topic orders --to-earliest --execute
  sluice groups reset-offsets audit --topic orders:0,1 --to-offset 100 --execute
  sluice groups reset-offsets audit --all-topics --to-datetime 2024-05-01T12:00:00Z --execute
  sluice groups reset-offsets audit --all-topics --shift-by -10 --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec.Group = args[0]
			fl := cmd.Flags()
			switch {
			case spec.AllTopics && len(topics) > 0:
				return errors.New("--topic and --all-topics cannot be used together")
			case !spec.AllTopics && len(topics) == 0:
				return errors.New("no partitions selected: give --topic T[:P,P...] (repeatable) or --all-topics")
			}
			for _, t := range topics {
				tp, err := cli.ParseTopicPartitions(t)
				if err != nil {
					return err
				}
				spec.Topics = append(spec.Topics, tp)
			}
			var targets []cli.ResetTarget
			if toEarliest {
				targets = append(targets, cli.ResetTarget{Mode: cli.ResetEarliest})
			}
			if toLatest {
				targets = append(targets, cli.ResetTarget{Mode: cli.ResetLatest})
			}
			if fl.Changed("to-offset") {
				if toOffset < 0 {
					return fmt.Errorf("invalid --to-offset %d: must be >= 0 (use --to-earliest or --to-latest)", toOffset)
				}
				targets = append(targets, cli.ResetTarget{Mode: cli.ResetToOffset, Offset: toOffset})
			}
			if fl.Changed("to-datetime") {
				t, err := cli.ParseDatetime(toDatetime, time.Local)
				if err != nil {
					return err
				}
				targets = append(targets, cli.ResetTarget{Mode: cli.ResetToDatetime, Time: t})
			}
			if fl.Changed("shift-by") {
				targets = append(targets, cli.ResetTarget{Mode: cli.ResetShiftBy, Offset: shiftBy})
			}
			if len(targets) != 1 {
				return fmt.Errorf("give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by (got %d)", len(targets))
			}
			spec.Target = targets[0]
			return withAdmin(cmd, f, func(ctx context.Context, adm *kadm.Client, out cli.Output) error {
				plan, err := cli.PlanReset(ctx, adm, spec)
				if err != nil {
					return err
				}
				if execute {
					if err := cli.ExecuteReset(ctx, adm, &plan); err != nil {
						return err
					}
				}
				return cli.WriteResetPlan(cmd.OutOrStdout(), out, plan)
			})
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVarP(&topics, "topic", "t", nil, "topic to reset, TOPIC or TOPIC:P,P,... (repeatable)")
	fs.BoolVar(&spec.AllTopics, "all-topics", false, "reset every partition the group has committed offsets for")
	fs.BoolVar(&toEarliest, "to-earliest", false, "move to the log start offset")
	fs.BoolVar(&toLatest, "to-latest", false, "move to the log end offset")
	fs.Int64Var(&toOffset, "to-offset", 0, "move to this offset (clamped to the log's start and end)")
	fs.StringVar(&toDatetime, "to-datetime", "", "move to the first record at or after this time (RFC 3339, or local 2006-01-02T15:04:05)")
	fs.Int64Var(&shiftBy, "shift-by", 0, "move the committed offset by this much (negative: back)")
	fs.BoolVar(&execute, "execute", false, "apply the plan (without it: a dry run that changes nothing)")
	return cmd
}

func newGroupsDeleteCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "delete GROUP [GROUP...]",
		Aliases: []string{"rm"},
		Short:   "Delete inactive groups and their committed offsets",
		Long: `Delete each GROUP with its committed offsets (DeleteGroups). A group with
active members cannot be deleted: stop its consumers first. Groups that can be
deleted are, even when another one named cannot.`,
		Example: "  sluice groups delete audit\n  sluice groups delete audit billing --output json",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(cmd, f, func(ctx context.Context, adm *kadm.Client, out cli.Output) error {
				done, err := cli.DeleteGroups(ctx, adm, args...)
				if len(done) > 0 || out == cli.JSON {
					if werr := cli.WriteGroupResults(cmd.OutOrStdout(), out, done); werr != nil {
						return errors.Join(err, werr)
					}
				}
				return err
			})
		},
	}
}

func newGroupsDeleteOffsetsCmd(f *clientFlags) *cobra.Command {
	var topics []string
	cmd := &cobra.Command{
		Use:   "delete-offsets GROUP --topic T[:P,P...]...",
		Short: "Delete a group's committed offsets for some topics",
		Long: `Delete the committed offsets of GROUP for the topics (or partitions) named by
--topic (OffsetDelete), e.g. for a topic the group no longer reads so it stops
showing lag. The group's members must not be consuming those topics.`,
		Example: "  sluice groups delete-offsets audit --topic old-orders\n  sluice groups delete-offsets audit --topic orders:0,1",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(topics) == 0 {
				return errors.New("no topic given: name the offsets to delete with --topic T[:P,P...]")
			}
			var tps []cli.TopicPartitions
			for _, t := range topics {
				tp, err := cli.ParseTopicPartitions(t)
				if err != nil {
					return err
				}
				tps = append(tps, tp)
			}
			return withAdmin(cmd, f, func(ctx context.Context, adm *kadm.Client, out cli.Output) error {
				done, err := cli.DeleteOffsets(ctx, adm, args[0], tps)
				if err != nil {
					return err
				}
				return cli.WriteDeletedOffsets(cmd.OutOrStdout(), out, args[0], done)
			})
		},
	}
	cmd.Flags().StringArrayVarP(&topics, "topic", "t", nil, "topic whose offsets to delete, TOPIC or TOPIC:P,P,... (repeatable)")
	return cmd
}
