package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/cli"
)

// newRootCmd builds the whole command tree. Tests run it in-process with
// SetArgs, SetIn, SetOut and SetErr.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "sluice",
		Short: "Sluice: a Kafka-compatible broker and stream-processing stack",
		Long: `Sluice is a Kafka-compatible broker plus the tools around it, in one binary.

Client commands (topics, produce, consume, groups, bench) speak the Kafka protocol and
work against any Kafka-compatible cluster. They find it with --brokers
host:port[,host:port] (default ` + cli.DefaultBrokers + `, or $` + cli.BrokersEnv + `).`,
		Example: `  sluice broker --data-dir ./data &
  sluice topics create orders --partitions 3
  printf 'k1:hello\nk2:world\n' | sluice produce orders --key-separator :
  sluice consume orders --from-beginning --max 2 --format '%k=%v\n'`,
		SilenceUsage:  true, // a failed request is not a usage error
		SilenceErrors: true, // main prints the error once
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see `%s --help`)", err, c.CommandPath())
	})
	root.AddCommand(newBrokerCmd(), newTopicsCmd(), newProduceCmd(), newConsumeCmd(), newGroupsCmd(), newBenchCmd(), newRegistryCmd(), newUpCmd(), newConnectCmd(), newConnectorsCmd())
	return root
}

// clientFlags are the connection and output flags of client commands.
type clientFlags struct {
	brokers string
	output  string
}

// addClientFlags registers --brokers (and --output if withOutput) on cmd,
// as persistent flags when the command is a group.
func addClientFlags(cmd *cobra.Command, persistent, withOutput bool) *clientFlags {
	f := &clientFlags{}
	fs := cmd.Flags()
	if persistent {
		fs = cmd.PersistentFlags()
	}
	fs.StringVar(&f.brokers, "brokers", cli.DefaultBrokers,
		"comma-separated host:port list of brokers to bootstrap from (env "+cli.BrokersEnv+")")
	if withOutput {
		fs.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	}
	return f
}

// brokerList returns --brokers, or $SLUICE_BROKERS when the flag was not given.
func (f *clientFlags) brokerList(cmd *cobra.Command) ([]string, error) {
	s := f.brokers
	if !cmd.Flags().Changed("brokers") {
		if env := os.Getenv(cli.BrokersEnv); env != "" {
			s = env
		}
	}
	return cli.ParseBrokers(s)
}

// outputFormat parses --output.
func (f *clientFlags) outputFormat() (cli.Output, error) { return cli.ParseOutput(f.output) }
