package connect

import (
	"context"
	"time"
)

// Header is a record header. Value is raw bytes, as on the wire.
type Header struct {
	Key   string
	Value []byte
}

// Record is the part of a record that converters and transformations see.
//
// Key and Value use the schemaless data model of Kafka Connect's JSON
// converter with schemas.enable=false: nil, bool, int64, float64, string,
// []byte, []any and map[string]any. A nil Value is a tombstone.
// Transformations must not modify the maps or slices they receive: they copy
// before changing (they may be shared with the task that produced them).
type Record struct {
	Topic     string
	Partition int32 // -1 when unknown (a source record before it is produced)
	Key       any
	Value     any
	Headers   []Header
	Timestamp time.Time // zero: set by the producer
	// Offset is the Kafka offset of a sink record; -1 for source records.
	Offset int64
}

// SourceRecord is a record read by a SourceTask from an external system.
//
// SourcePartition identifies where in the external system it came from
// (e.g. {"filename": "/var/log/a"}) and SourceOffset how far it got in that
// partition (e.g. {"position": 1234}). Both must be JSON-encodable; the worker
// stores the latest SourceOffset of each SourcePartition in connect-offsets
// once the record is acknowledged by Kafka, and gives it back to the task on
// restart through OffsetReader.
type SourceRecord struct {
	Record
	SourcePartition map[string]any
	SourceOffset    map[string]any
}

// SinkRecord is a record consumed from Kafka for a SinkTask. Offset is its
// offset in Topic/Partition.
type SinkRecord struct {
	Record
}

// ConfigError is one problem found when validating a connector
// configuration. Key is the configuration name it is about.
type ConfigError struct {
	Key     string
	Message string
}

// Error implements error.
func (e ConfigError) Error() string { return "connect: " + e.Key + ": " + e.Message }

// ConfigKey documents one configuration name, for the validate endpoint
// and for connector-plugins listings.
type ConfigKey struct {
	Name       string
	Type       string // STRING, INT, LONG, BOOLEAN, LIST, PASSWORD, ...
	Required   bool
	Default    string
	Importance string // HIGH, MEDIUM or LOW
	Doc        string
}

// Source is a source connector: it validates its configuration and splits
// the work into at most max task configurations. It holds no resources;
// the worker calls it whenever the configuration changes or the connector
// restarts, from one goroutine at a time.
type Source interface {
	// Validate returns the problems of cfg (the whole connector
	// configuration, including worker-level names like tasks.max); none if
	// it is valid.
	Validate(cfg map[string]string) []ConfigError
	// TaskConfigs returns between 1 and max task configurations for cfg,
	// which has passed Validate. The worker owns the returned maps. An error
	// marks the connector FAILED.
	TaskConfigs(cfg map[string]string, max int) ([]map[string]string, error)
	// NewTask returns a new, unstarted task.
	NewTask() SourceTask
}

// Sink is a sink connector; see Source.
type Sink interface {
	Validate(cfg map[string]string) []ConfigError
	TaskConfigs(cfg map[string]string, max int) ([]map[string]string, error)
	NewTask() SinkTask
}

// Definer is an optional capability of Source and Sink connectors: the
// configuration names they understand. When a connector does not implement
// it, the validate endpoint lists only the worker's own names plus the
// names present in the submitted configuration.
type Definer interface {
	ConfigDef() []ConfigKey
}

// OffsetReader gives a source task the last committed offset of one of its
// source partitions. It returns nil, nil when nothing was committed.
type OffsetReader interface {
	Offset(partition map[string]any) (map[string]any, error)
}

// SourceTask reads records from an external system.
//
// The worker calls Start once, then Poll repeatedly from one goroutine, then
// Stop once (also after a failed Start or Poll). Poll should block until it
// has records, ctx is done, or a short while (about a second) has passed,
// and then return what it has; the worker calls it again at once. The
// returned slice and its records are owned by the worker. An error from
// Start or Poll (other than ctx's) marks the task FAILED.
type SourceTask interface {
	Start(ctx context.Context, cfg map[string]string, offsets OffsetReader) error
	Poll(ctx context.Context) ([]SourceRecord, error)
	Stop() error
}

// Committer is an optional capability of a SourceTask: the worker calls
// Commit after the records of a Poll are acknowledged by Kafka and their
// offsets are written to connect-offsets, e.g. so a database source can
// acknowledge its position upstream. A task without Commit relies on the
// offsets the worker stores and reads back through OffsetReader.
type Committer interface {
	Commit(ctx context.Context) error
}

// SinkTask writes records consumed from Kafka to an external system.
//
// The worker calls Start once, Put from one goroutine, and Stop once. Put
// owns nothing it is given after it returns. When Put returns nil and the
// task is not a Flusher, the worker commits the records' offsets to the
// consumer group, so Put must have made them durable; an error marks the
// task FAILED and nothing is committed, so the records are delivered again
// after a restart (at-least-once). A *PutError instead names single
// records Put rejected while it took the others; under errors.tolerance=all
// the worker skips those and carries on (see PutError).
type SinkTask interface {
	Start(ctx context.Context, cfg map[string]string) error
	Put(ctx context.Context, records []SinkRecord) error
	Stop() error
}

// TopicPartition names a partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Flusher is an optional capability of a SinkTask that buffers in Put: the
// worker calls Flush before it commits offsets, with the next offset to
// consume of each partition, and commits only when Flush returns nil. An
// error marks the task FAILED.
type Flusher interface {
	Flush(ctx context.Context, offsets map[TopicPartition]int64) error
}
