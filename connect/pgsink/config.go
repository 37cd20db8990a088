package pgsink

import (
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluicehq/sluice/connect"
)

// Version is the version the plugin reports.
const Version = "1.0.0"

// Plugin returns the postgres-sink plugin (alias
// io.confluent.connect.jdbc.JdbcSinkConnector, so Confluent JDBC sink
// configurations for PostgreSQL run unchanged where the names overlap).
func Plugin() connect.Plugin {
	return connect.Plugin{Class: "postgres-sink",
		Aliases: []string{"io.confluent.connect.jdbc.JdbcSinkConnector", "PostgresSink"},
		Version: Version, Sink: func() connect.Sink { return sink{} }}
}

// Configuration names and defaults.
const (
	defaultTableFormat = "${topic}"
	defaultBatchSize   = 3000
	defaultKeyField    = "id"
	defaultMaxRetries  = 10
	defaultBackoff     = 3 * time.Second
)

// config is a parsed and validated task configuration.
type config struct {
	conn        *pgx.ConnConfig
	tableFormat string
	upsert      bool   // insert.mode=upsert
	pkMode      string // none, record_key or record_value
	pkFields    []string
	deletes     bool // delete.enabled
	autoCreate  bool
	autoEvolve  bool
	batchSize   int
	maxRetries  int
	backoff     time.Duration
}

type sink struct{}

func (sink) ConfigDef() []connect.ConfigKey {
	return []connect.ConfigKey{
		{Name: "connection.url", Type: "STRING", Required: true, Importance: "HIGH",
			Doc: "PostgreSQL connection string: a postgres:// URL (jdbc:postgresql:// is accepted too) or a keyword/value DSN such as \"host=/run/postgresql dbname=app\"."},
		{Name: "connection.user", Type: "STRING", Importance: "HIGH", Doc: "User name; overrides the one in connection.url."},
		{Name: "connection.password", Type: "PASSWORD", Importance: "HIGH", Doc: "Password; overrides the one in connection.url."},
		{Name: "table.name.format", Type: "STRING", Default: defaultTableFormat, Importance: "MEDIUM",
			Doc: "Destination table; ${topic} is replaced by the record's topic with dots as underscores. A dot in the format separates the schema: \"staging.${topic}\"."},
		{Name: "insert.mode", Type: "STRING", Default: "insert", Importance: "HIGH",
			Doc: "insert: plain INSERT (a duplicate key fails the task); upsert: INSERT ... ON CONFLICT (pk) DO UPDATE, idempotent."},
		{Name: "pk.mode", Type: "STRING", Default: "none", Importance: "HIGH",
			Doc: "Where the primary key comes from: none, record_key or record_value."},
		{Name: "pk.fields", Type: "LIST", Importance: "MEDIUM",
			Doc: "Primary key columns. record_key: the key's fields (default all of them), or for a primitive key the one column it fills (default \"id\"); record_value: required, fields of the value."},
		{Name: "delete.enabled", Type: "BOOLEAN", Default: "false", Importance: "MEDIUM",
			Doc: "Delete the row of a tombstone's key. Requires pk.mode=record_key; tombstones are skipped when false."},
		{Name: "auto.create", Type: "BOOLEAN", Default: "false", Importance: "MEDIUM",
			Doc: "CREATE TABLE for a missing table from the record's fields, with the primary key."},
		{Name: "auto.evolve", Type: "BOOLEAN", Default: "false", Importance: "MEDIUM",
			Doc: "ALTER TABLE ADD COLUMN (nullable) for fields the table lacks."},
		{Name: "batch.size", Type: "INT", Default: strconv.Itoa(defaultBatchSize), Importance: "LOW",
			Doc: "The most rows written by one statement; all statements of a flush share one transaction."},
		{Name: "max.retries", Type: "INT", Default: strconv.Itoa(defaultMaxRetries), Importance: "MEDIUM",
			Doc: "How many times a flush that failed for a passing reason (connection lost, serialization failure, deadlock, server shutdown) is tried again before the task fails."},
		{Name: "retry.backoff.ms", Type: "INT", Default: strconv.Itoa(int(defaultBackoff / time.Millisecond)), Importance: "MEDIUM",
			Doc: "The wait before each retry, in milliseconds."},
	}
}

func (s sink) Validate(cfg map[string]string) []connect.ConfigError {
	_, errs := parseConfig(cfg)
	return errs
}

func (sink) TaskConfigs(cfg map[string]string, max int) ([]map[string]string, error) {
	// Every task runs the same configuration; the consumer group spreads the
	// partitions over them.
	out := make([]map[string]string, max)
	for i := range out {
		out[i] = maps.Clone(cfg)
	}
	return out, nil
}

func (sink) NewTask() connect.SinkTask { return &task{} }

func missing(key string) connect.ConfigError {
	return connect.ConfigError{Key: key, Message: "Missing required configuration \"" + key + "\" which has no default value."}
}

func invalid(key, value, want string) connect.ConfigError {
	return connect.ConfigError{Key: key, Message: "Invalid value " + strconv.Quote(value) + " for configuration " + key + ": " + want}
}

// parseConfig parses and checks cfg; the config is usable only when no
// errors are returned.
func parseConfig(cfg map[string]string) (*config, []connect.ConfigError) {
	var errs []connect.ConfigError
	c := &config{tableFormat: defaultTableFormat, pkMode: "none", batchSize: defaultBatchSize,
		maxRetries: defaultMaxRetries, backoff: defaultBackoff}

	if url := strings.TrimSpace(cfg["connection.url"]); url == "" {
		errs = append(errs, missing("connection.url"))
	} else {
		cc, err := pgx.ParseConfig(strings.TrimPrefix(url, "jdbc:"))
		if err != nil {
			// pgx's message may quote the string, password included: say
			// only what is wrong with it.
			errs = append(errs, connect.ConfigError{Key: "connection.url", Message: "Invalid connection string: want postgres://user@host:port/db?... or \"host=... dbname=...\""})
		} else {
			if u := cfg["connection.user"]; u != "" {
				cc.User = u
			}
			if p := cfg["connection.password"]; p != "" {
				cc.Password = p
			}
			c.conn = cc
		}
	}
	if f, ok := cfg["table.name.format"]; ok && strings.TrimSpace(f) != "" {
		c.tableFormat = strings.TrimSpace(f)
	}
	if _, _, err := splitTable(c.tableFormat); err != nil {
		errs = append(errs, invalid("table.name.format", c.tableFormat, err.Error()))
	}
	switch m := strings.TrimSpace(cfg["insert.mode"]); m {
	case "", "insert":
	case "upsert":
		c.upsert = true
	default:
		errs = append(errs, invalid("insert.mode", m, "want insert or upsert (update is not supported)"))
	}
	switch m := strings.TrimSpace(cfg["pk.mode"]); m {
	case "", "none":
	case "record_key", "record_value":
		c.pkMode = m
	default:
		errs = append(errs, invalid("pk.mode", m, "want none, record_key or record_value (kafka is not supported)"))
	}
	for f := range strings.SplitSeq(cfg["pk.fields"], ",") {
		if f = strings.TrimSpace(f); f != "" {
			c.pkFields = append(c.pkFields, f)
		}
	}
	var ok bool
	if c.deletes, ok = parseBool(cfg, "delete.enabled", &errs); ok && c.deletes && c.pkMode != "record_key" {
		errs = append(errs, invalid("delete.enabled", "true", "deletes need the key of a tombstone: set pk.mode=record_key"))
	}
	c.autoCreate, _ = parseBool(cfg, "auto.create", &errs)
	c.autoEvolve, _ = parseBool(cfg, "auto.evolve", &errs)
	if c.upsert && c.pkMode == "none" {
		errs = append(errs, invalid("pk.mode", "none", "insert.mode=upsert needs a primary key: set pk.mode=record_key or record_value"))
	}
	if c.pkMode == "record_value" && len(c.pkFields) == 0 {
		errs = append(errs, invalid("pk.fields", "", "pk.mode=record_value needs the value fields that form the primary key"))
	}
	if c.pkMode == "none" && len(c.pkFields) > 0 {
		errs = append(errs, invalid("pk.fields", cfg["pk.fields"], "pk.mode=none takes no primary key fields"))
	}
	parseInt(cfg, "batch.size", 1, &c.batchSize, &errs)
	parseInt(cfg, "max.retries", 0, &c.maxRetries, &errs)
	ms := int(defaultBackoff / time.Millisecond)
	parseInt(cfg, "retry.backoff.ms", 0, &ms, &errs)
	c.backoff = time.Duration(ms) * time.Millisecond
	return c, errs
}

// parseInt sets *dst from cfg[key] when it is set, an integer >= min.
func parseInt(cfg map[string]string, key string, min int, dst *int, errs *[]connect.ConfigError) {
	s := strings.TrimSpace(cfg[key])
	if s == "" {
		return
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min {
		*errs = append(*errs, invalid(key, s, "want an integer >= "+strconv.Itoa(min)))
		return
	}
	*dst = n
}

func parseBool(cfg map[string]string, key string, errs *[]connect.ConfigError) (bool, bool) {
	s := strings.TrimSpace(cfg[key])
	if s == "" {
		return false, true
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		*errs = append(*errs, invalid(key, s, "want true or false"))
		return false, false
	}
	return b, true
}
