package pgcdc

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/connect"
)

// Version is the version the plugin reports, and the source block's
// "version".
const Version = "1.0.0"

// Errors returned by the task's Start (or by Poll when it reconnects after
// a lost connection). All are wrapped with the details (the server's
// setting, the table's name); match them with errors.Is. All need an
// administrator to change the database and are not retriable.
var (
	// ErrNotLogical: the server's wal_level is not logical, so logical
	// decoding (and so this connector) cannot work.
	ErrNotLogical = errors.New("pgcdc: wal_level is not logical")
	// ErrNoReplicaIdentity: a captured table has neither a primary key nor
	// a usable REPLICA IDENTITY, so its updates and deletes cannot be
	// captured (PostgreSQL would even refuse them once the table is
	// published).
	ErrNoReplicaIdentity = errors.New("pgcdc: table has no primary key and no replica identity")
	// ErrSlotLost: the stored offsets show that the connector streamed
	// changes before, but its replication slot is gone, so changes made in
	// between are lost. Delete the connector's offsets (or the connector)
	// to start over with a new snapshot.
	ErrSlotLost = errors.New("pgcdc: replication slot lost")
)

// Plugin returns the postgres-cdc plugin (alias
// io.debezium.connector.postgresql.PostgresConnector).
func Plugin() connect.Plugin {
	return connect.Plugin{Class: "postgres-cdc", Aliases: []string{"io.debezium.connector.postgresql.PostgresConnector"},
		Version: Version, Source: func() connect.Source { return source{} }}
}

type source struct{}

// configKeys are the names the connector understands, with their defaults.
var configKeys = []connect.ConfigKey{
	{Name: "database.hostname", Type: "STRING", Required: true, Importance: "HIGH", Doc: "Host name or IP address of the PostgreSQL server, or the directory of its Unix socket."},
	{Name: "database.port", Type: "INT", Default: "5432", Importance: "HIGH", Doc: "Port of the PostgreSQL server."},
	{Name: "database.user", Type: "STRING", Required: true, Importance: "HIGH", Doc: "User to connect as; needs the REPLICATION attribute (or superuser), SELECT on the captured tables, and CREATE on the database when the publication is created by the connector."},
	{Name: "database.password", Type: "PASSWORD", Importance: "HIGH", Doc: "Password of database.user."},
	{Name: "database.dbname", Type: "STRING", Required: true, Importance: "HIGH", Doc: "Database to capture."},
	{Name: "database.sslmode", Type: "STRING", Default: "prefer", Importance: "MEDIUM", Doc: "disable, allow, prefer, require, verify-ca or verify-full, as libpq."},
	{Name: "topic.prefix", Type: "STRING", Required: true, Importance: "HIGH", Doc: "Logical server name: the prefix of every topic (<topic.prefix>.<schema>.<table>) and the source partition {\"server\": topic.prefix}."},
	{Name: "table.include.list", Type: "LIST", Importance: "HIGH", Doc: "Comma-separated regular expressions matched against whole <schema>.<table> names; only matching tables are captured. Empty: every table outside the system schemas."},
	{Name: "table.exclude.list", Type: "LIST", Importance: "MEDIUM", Doc: "Comma-separated regular expressions of <schema>.<table> names not to capture; applied after table.include.list."},
	{Name: "slot.name", Type: "STRING", Default: "debezium", Importance: "MEDIUM", Doc: "Name of the logical replication slot (pgoutput); lower-case letters, digits and underscores."},
	{Name: "publication.name", Type: "STRING", Default: "dbz_publication", Importance: "MEDIUM", Doc: "Name of the publication pgoutput streams."},
	{Name: "publication.autocreate.mode", Type: "STRING", Default: "all_tables", Importance: "MEDIUM", Doc: "all_tables: create the publication FOR ALL TABLES if missing; filtered: create it, or reset its tables, FOR TABLE the captured tables; disabled: the publication must exist."},
	{Name: "snapshot.mode", Type: "STRING", Default: "initial", Importance: "MEDIUM", Doc: "initial: snapshot the captured tables when no offsets are stored, then stream; no_data (or never): stream only; initial_only: snapshot, then stop capturing."},
	{Name: "decimal.handling.mode", Type: "STRING", Default: "string", Importance: "MEDIUM", Doc: "How numeric values are represented: string (exact) or double."},
	{Name: "tombstones.on.delete", Type: "BOOLEAN", Default: "true", Importance: "MEDIUM", Doc: "Whether a tombstone (the key with a null value) follows each delete event."},
	{Name: "max.batch.size", Type: "INT", Default: "2048", Importance: "LOW", Doc: "The most records returned by one poll."},
	{Name: "max.queue.size", Type: "INT", Default: "8192", Importance: "LOW", Doc: "The most change events buffered between the replication stream and poll."},
	{Name: "poll.interval.ms", Type: "LONG", Default: "1000", Importance: "LOW", Doc: "How long a poll waits for the first record before it returns none."},
	{Name: "status.update.interval.ms", Type: "LONG", Default: "10000", Importance: "LOW", Doc: "How often the connector reports its acknowledged position to the server even when idle (it also answers the server's keepalive requests at once)."},
}

func (source) ConfigDef() []connect.ConfigKey { return configKeys }

func (source) Validate(cfg map[string]string) []connect.ConfigError {
	_, errs := parseConfig(cfg)
	return errs
}

func (source) TaskConfigs(cfg map[string]string, _ int) ([]map[string]string, error) {
	// One task: a replication slot has one consumer.
	tc := make(map[string]string, len(configKeys))
	for _, k := range configKeys {
		if v, ok := cfg[k.Name]; ok {
			tc[k.Name] = v
		}
	}
	return []map[string]string{tc}, nil
}

func (source) NewTask() connect.SourceTask { return &task{} }

// Snapshot modes.
const (
	snapshotInitial     = "initial"
	snapshotNoData      = "no_data"
	snapshotInitialOnly = "initial_only"
)

// config is a parsed connector configuration.
type config struct {
	host, user, password, dbname, sslmode string
	port                                  int
	prefix                                string
	include, exclude                      []*regexp.Regexp
	slot, publication, pubMode            string
	snapshotMode                          string
	decimalString                         bool
	tombstones                            bool
	batch, queue                          int
	pollWait, statusInterval              time.Duration
}

var slotNameRE = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// parseConfig parses cfg, applying defaults; errs lists every problem.
func parseConfig(cfg map[string]string) (config, []connect.ConfigError) {
	var errs []connect.ConfigError
	bad := func(key, msg string) { errs = append(errs, connect.ConfigError{Key: key, Message: msg}) }
	get := func(key string) string {
		if v, ok := cfg[key]; ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		for _, k := range configKeys {
			if k.Name == key {
				if k.Required {
					bad(key, fmt.Sprintf("Missing required configuration %q which has no default value.", key))
				}
				return k.Default
			}
		}
		return ""
	}
	intIn := func(key string, lo, hi int) int {
		s := get(key)
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			bad(key, fmt.Sprintf("Invalid value %s for configuration %s: want an integer between %d and %d", s, key, lo, hi))
		}
		return n
	}
	oneOf := func(key string, vals ...string) string {
		s := get(key)
		for _, v := range vals {
			if s == v {
				return s
			}
		}
		bad(key, fmt.Sprintf("Invalid value %s for configuration %s: want one of %s", s, key, strings.Join(vals, ", ")))
		return s
	}
	regexps := func(key string) []*regexp.Regexp {
		var out []*regexp.Regexp
		for f := range strings.SplitSeq(cfg[key], ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			re, err := regexp.Compile("^(?:" + f + ")$")
			if err != nil {
				bad(key, fmt.Sprintf("Invalid regular expression %q: %v", f, err))
				continue
			}
			out = append(out, re)
		}
		return out
	}
	c := config{
		host: get("database.hostname"), user: get("database.user"), password: cfg["database.password"],
		dbname: get("database.dbname"), prefix: get("topic.prefix"),
		port:    intIn("database.port", 1, 65535),
		sslmode: oneOf("database.sslmode", "disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
		include: regexps("table.include.list"), exclude: regexps("table.exclude.list"),
		slot: get("slot.name"), publication: get("publication.name"),
		pubMode: oneOf("publication.autocreate.mode", "all_tables", "filtered", "disabled"),
		batch:   intIn("max.batch.size", 1, 1<<20), queue: intIn("max.queue.size", 1, 1<<24),
		pollWait:       time.Duration(intIn("poll.interval.ms", 1, 60_000)) * time.Millisecond,
		statusInterval: time.Duration(intIn("status.update.interval.ms", 100, 600_000)) * time.Millisecond,
	}
	if c.prefix != "" && !regexp.MustCompile(`^[A-Za-z0-9._-]+$`).MatchString(c.prefix) {
		bad("topic.prefix", fmt.Sprintf("Invalid value %s for configuration topic.prefix: only letters, digits, '.', '_' and '-' are allowed in topic names", c.prefix))
	}
	if !slotNameRE.MatchString(c.slot) {
		bad("slot.name", fmt.Sprintf("Invalid value %s for configuration slot.name: a replication slot name has 1 to 63 lower-case letters, digits and underscores", c.slot))
	}
	if len(c.publication) > 63 {
		bad("publication.name", "Invalid value for configuration publication.name: at most 63 bytes")
	}
	switch m := get("snapshot.mode"); m {
	case "initial", "initial_only":
		c.snapshotMode = m
	case "no_data", "never":
		c.snapshotMode = snapshotNoData
	default:
		bad("snapshot.mode", fmt.Sprintf("Invalid value %s for configuration snapshot.mode: supported are initial, initial_only, no_data and never (always, when_needed, configuration_based and custom are not)", m))
	}
	switch m := get("decimal.handling.mode"); m {
	case "string":
		c.decimalString = true
	case "double":
	case "precise":
		bad("decimal.handling.mode", "Invalid value precise for configuration decimal.handling.mode: precise needs Kafka Connect schemas, which records here do not carry; use string (exact) or double")
	default:
		bad("decimal.handling.mode", fmt.Sprintf("Invalid value %s for configuration decimal.handling.mode: want string or double", m))
	}
	switch s := strings.ToLower(get("tombstones.on.delete")); s {
	case "true", "false":
		c.tombstones = s == "true"
	default:
		bad("tombstones.on.delete", fmt.Sprintf("Invalid value %s for configuration tombstones.on.delete: want true or false", s))
	}
	if n, ok := cfg["tasks.max"]; ok && n != "" && n != "1" {
		if v, err := strconv.Atoi(n); err != nil || v < 1 {
			bad("tasks.max", fmt.Sprintf("Invalid value %s for configuration tasks.max: want an integer >= 1 (the connector runs one task)", n))
		}
	}
	return c, errs
}

// captured reports whether the table schema.table is captured.
func (c *config) captured(schema, table string) bool {
	name := schema + "." + table
	if len(c.include) > 0 {
		ok := false
		for _, re := range c.include {
			if re.MatchString(name) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, re := range c.exclude {
		if re.MatchString(name) {
			return false
		}
	}
	return true
}

// partition is the source partition of every record.
func (c *config) partition() map[string]any { return map[string]any{"server": c.prefix} }
