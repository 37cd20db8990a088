package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/cli"
)

func newConsumeCmd() *cobra.Command {
	var (
		opts          cli.ConsumeOptions
		format        string
		fromBeginning bool
		f             *clientFlags
	)
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Print records of a topic",
		Long: `Print the records of TOPIC as they arrive, one per --format (default: the value
and a newline). Like kafka-console-consumer it starts at the end of the topic
and waits for new records; --from-beginning or --offset start elsewhere.

It runs until interrupted, until --max records were printed, or until
--timeout passed without a new record; all three exit 0.

With --group it joins that consumer group, reads from the group's committed
offsets (or --offset / --from-beginning where there are none), and commits the
offsets of the records it printed.

--format verbs: ` + cli.FormatHelp + `
--output json prints one JSON object per record and line instead.`,
		Example: `  sluice consume orders --from-beginning --max 10
  sluice consume orders --from-beginning --timeout 2s --format '%p/%o %k=%v\n'
  sluice consume orders --partition 0 --offset 42 --output json
  sluice consume orders --group audit`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Topic = args[0]
			var err error
			if opts.Output, err = f.outputFormat(); err != nil {
				return err
			}
			switch fl := cmd.Flags(); {
			case fromBeginning && fl.Changed("offset"):
				return errors.New("--from-beginning and --offset cannot be used together")
			case fromBeginning:
				opts.Start = "earliest"
			case fl.Changed("format") && opts.Output == cli.JSON:
				return errors.New("--format and --output json cannot be used together")
			}
			if opts.Max < 0 {
				return fmt.Errorf("invalid --max %d: must be >= 0", opts.Max)
			}
			if opts.Idle < 0 {
				return fmt.Errorf("invalid --timeout %v: must be >= 0", opts.Idle)
			}
			if opts.Partition < -1 {
				return fmt.Errorf("invalid --partition %d: must be >= 0", opts.Partition)
			}
			if opts.Format, err = cli.NewFormatter(format); err != nil {
				return err
			}
			kopts, err := cli.ConsumerOpts(opts)
			if err != nil {
				return err
			}
			brokers, err := f.brokerList(cmd)
			if err != nil {
				return err
			}
			cl, err := cli.Connect(cmd.Context(), brokers, kopts...)
			if err != nil {
				return err
			}
			defer cl.Close()
			_, err = cli.Consume(cmd.Context(), cl, cmd.OutOrStdout(), opts)
			return err
		},
	}
	f = addClientFlags(cmd, false, true)
	fs := cmd.Flags()
	fs.BoolVar(&fromBeginning, "from-beginning", false, "start at the earliest offset (same as --offset earliest)")
	fs.StringVar(&opts.Start, "offset", "latest", "where to start: earliest, latest or an offset (in each partition read)")
	fs.IntVarP(&opts.Max, "max", "n", 0, "exit after printing this many records (0: no limit)")
	fs.StringVarP(&format, "format", "f", cli.DefaultFormat, "how to print each record (see verbs above)")
	fs.Int32VarP(&opts.Partition, "partition", "p", -1, "read only this partition (default: all)")
	fs.StringVarP(&opts.Group, "group", "g", "", "consume as a member of this consumer group and commit offsets")
	fs.DurationVarP(&opts.Idle, "timeout", "t", 0, "exit 0 once no record arrived for this long (0: wait forever)")
	return cmd
}
