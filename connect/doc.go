// Package connect runs Kafka Connect-style source and sink connectors
// against any Kafka cluster, through franz-go only.
//
// # Connectors and tasks
//
// A connector is a Plugin found by class name (connector.class) or alias.
// Source and Sink connectors validate their configuration and split it into
// task configurations; SourceTask and SinkTask move the data. Optional
// capabilities are separate interfaces discovered by type assertion, as in
// database/sql/driver: Definer (configuration names, for validation
// listings), Committer (source tasks told that their offsets are stored) and
// Flusher (sink tasks that buffer in Put and make records durable before the
// worker commits offsets).
//
// Package pgcdc has a PostgreSQL change data capture source (postgres-cdc,
// Debezium-compatible records), package pgsink an upsert sink into
// PostgreSQL tables for read models (postgres-sink), and package file the
// file connectors (file-source, file-sink). sluice connect runs them all.
//
// # Worker
//
// A Worker runs the connectors of one process. Its state lives in three
// single-partition compacted topics, with Kafka Connect's key and value
// formats, and is read back by Run on start:
//
//	connect-configs   connector-<name>        {"properties":{...}}  (tombstone: deleted)
//	                  target-state-<name>     {"state":"PAUSED","state.v2":"STOPPED"}
//	connect-offsets   ["<name>",{<partition>}] {<source offset>}
//	connect-status    status-connector-<name> {"state":"RUNNING","trace":null,"worker_id":"...","generation":0}
//	                  status-task-<name>-<id>
//
// A standalone worker writes connect-status for tooling and does not read
// it back; it starts every connector whose target state is STARTED.
// Distributed workers tail it to report the states of tasks that run on
// other workers.
// Task configurations are recomputed from the connector on start and are not
// stored (Kafka Connect's task-* and commit-* keys are not written).
//
// Delivery is at-least-once. A source task's records of one Poll are
// transformed, converted and produced; once Kafka acknowledges them, the
// latest offset of each source partition is written to connect-offsets and
// Committer.Commit is called. A sink task consumes through the consumer
// group connect-<name> (starting at the earliest offset), and the offsets of
// a batch are committed only after Put and Flusher.Flush succeed. A task
// being stopped finishes the batch it holds first, so a clean stop (pause,
// stop, restart, worker shutdown) causes no duplicates; a crash may repeat
// the last batch.
//
// A task error wrapped with Retriable (Kafka Connect's RetriableException)
// does not fail the task: Poll, or Put and Flush with the same records, are
// retried with a backoff (100ms doubling up to errors.retry.max.delay.ms,
// default 60s) while the task runs, and offsets are committed only after
// they succeed.
//
// Pausing a connector stops its tasks (sink tasks leave their group) and
// marks them PAUSED; resuming starts them from the committed offsets. Stop
// (KIP-875) also drops the task configurations. Target states are stored, so
// they survive restarts. A task whose Start, Poll or Put fails is FAILED
// with the error as its trace until the connector or task is restarted.
//
// With the ExactlyOnceSource option (sluice connect --exactly-once-source),
// each Poll's records and their offsets are written in one transaction
// instead, so read_committed consumers see every source record exactly once
// across restarts and fencing (the transactional id connect-<name>-<task>
// fences a previous incarnation of the task).
//
// # Distributed mode
//
// With the GroupID option (sluice connect --group), several workers share
// the connectors and tasks: see GroupID for the protocol. Standalone
// workers apply their own writes; distributed ones apply every write to
// connect-configs through a tailer, so any worker can serve any request.
// Restart requests travel as restart-connector-<name> records (Kafka
// Connect's) and restart-task-<name>-<id> records (Sluice's). Concurrent
// creates of one name on two workers both succeed (the later config wins),
// where Kafka Connect forwards writes to a leader.
//
// # REST API
//
// Handler serves Kafka Connect's REST API over a Worker, and Server runs
// both (sluice connect): GET / ; GET and POST /connectors (?expand=status,
// info); GET and DELETE /connectors/{name}; GET and PUT .../config; GET
// .../status; POST .../restart (?includeTasks, onlyFailed: 202 with the
// status, else 204); PUT .../pause, .../resume, .../stop (202); GET
// .../tasks; GET and POST .../tasks/{id}/status|restart; GET .../offsets
// (read only); GET /connector-plugins; PUT
// /connector-plugins/{class}/config/validate. Errors are
// {"error_code":N,"message":"..."} with Kafka Connect's codes: 400 invalid
// configuration or request, 404 unknown connector, task or plugin, 405, 409
// existing connector.
//
// # Data, converters and transformations
//
// Keys and values are schemaless (see Record). key.converter and
// value.converter choose JSON (default, schemas.enable=false by default),
// string, bytes or Avro converters, by Kafka's class names or json, string,
// bytes and avro. The Avro converter (io.confluent.connect.avro.AvroConverter)
// needs <prefix>.schema.registry.url (and optionally
// <prefix>.basic.auth.user.info): it infers a record schema from each value,
// registers it under <topic>-value or <topic>-key and writes Confluent's wire
// format; see AvroConverter. Transformations and predicates use Kafka
// Connect's configuration names; see newTransformation for the supported
// classes. With errors.tolerance=all, records failing conversion or
// transformation, and records a sink task's Put rejects with a PutError,
// are skipped (logged) instead of failing the task, and a sink sends them
// to errors.deadletterqueue.topic.name, with __connect.errors.* headers when
// errors.deadletterqueue.context.headers.enable=true.
package connect
