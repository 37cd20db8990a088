package main

import (
	"github.com/sluicehq/sluice/connect"
	"github.com/sluicehq/sluice/connect/file"
	"github.com/sluicehq/sluice/connect/pgcdc"
	"github.com/sluicehq/sluice/connect/pgsink"
)

// builtinPlugins are the connectors `sluice connect` and `sluice up` run.
func builtinPlugins() []connect.Plugin {
	return []connect.Plugin{file.SourcePlugin(), file.SinkPlugin(), pgcdc.Plugin(), pgsink.Plugin()}
}
