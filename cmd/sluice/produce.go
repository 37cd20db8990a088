package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/cli"
)

func newProduceCmd() *cobra.Command {
	var (
		opts        cli.ProduceOptions
		acks        string
		compression string
		headers     []string
		verbose     bool
		f           *clientFlags
	)
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Write one record per line of stdin to a topic",
		Long: `Read stdin line by line and write each line as one record to TOPIC. With
--key-separator, the text before the first separator is the record key and the
rest its value; lines without the separator have no key. An empty line is a
record with an empty value.

Records are sent in batches; at end of input the command waits until all are
acknowledged, and exits non-zero with the reason if any record fails. It prints
nothing on success (--verbose prints the count). An unknown topic is created if
the broker auto-creates topics.`,
		Example: `  echo hello | sluice produce greetings
  printf 'user1:{"n":1}\nuser2:{"n":2}\n' | sluice produce events --key-separator :
  sluice produce events --partition 0 --acks 1 --compression zstd --header source=import < data.txt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Topic = args[0]
			if opts.Partition < -1 {
				return fmt.Errorf("invalid --partition %d: must be >= 0", opts.Partition)
			}
			var err error
			if opts.Headers, err = cli.ParseKeyValues("header", headers); err != nil {
				return err
			}
			kopts, err := cli.ProducerOpts(acks, compression, opts.Partition)
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
			n, err := cli.Produce(cmd.Context(), cl, cmd.InOrStdin(), opts)
			if err != nil {
				return fmt.Errorf("%w (%d records written before the failure)", err, n)
			}
			if verbose {
				fmt.Fprintf(cmd.ErrOrStderr(), "produced %d records to %s\n", n, opts.Topic)
			}
			return nil
		},
	}
	f = addClientFlags(cmd, false, false)
	fs := cmd.Flags()
	fs.StringVarP(&opts.KeySeparator, "key-separator", "K", "", "split each line into key and value at the first SEP")
	fs.Int32VarP(&opts.Partition, "partition", "p", -1, "write every record to this partition (default: the partitioner chooses)")
	fs.StringVar(&acks, "acks", "all", "acknowledgements to wait for: all, 1 or 0")
	fs.StringVarP(&compression, "compression", "z", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	fs.StringArrayVarP(&headers, "header", "H", nil, "header key=value added to every record (repeatable)")
	fs.BoolVarP(&verbose, "verbose", "v", false, "print the number of records written (to stderr)")
	return cmd
}
