// Package pgsink is a sink connector that writes records to PostgreSQL
// tables, modelled on Confluent's JDBC sink (whose configuration names it
// takes) and Debezium's JDBC sink: inserts or idempotent upserts, deletes
// from tombstones, and tables created and widened on demand.
//
// Its class is postgres-sink, with the alias
// io.confluent.connect.jdbc.JdbcSinkConnector. A typical configuration
// for Debezium change events:
//
//	connector.class=postgres-sink
//	topics=dbserver1.inventory.customers
//	connection.url=postgres://sink@db:5432/replica
//	connection.password=...
//	insert.mode=upsert
//	pk.mode=record_key
//	delete.enabled=true
//	auto.create=true
//	auto.evolve=true
//	transforms=unwrap
//	transforms.unwrap.type=io.debezium.transforms.ExtractNewRecordState
//
// ExtractNewRecordState turns each change event into its row ("after") and
// drops "d" events; the tombstone Debezium writes after a delete then
// deletes the row. Records go to table dbserver1_inventory_customers. Any
// value converter that yields objects works: JSON (the default), or Avro
// from a Schema Registry (value.converter=avro and
// value.converter.schema.registry.url).
//
// # Configuration
//
//	name                 default    meaning
//	connection.url       (required) postgres://user:password@host:port/db?sslmode=...,
//	                                jdbc:postgresql://... (the jdbc: prefix is dropped), or a
//	                                keyword/value string "host=/run/postgresql dbname=app"
//	connection.user                 overrides the user of connection.url
//	connection.password             overrides its password
//	topics                          the topics to consume (the worker's; or topics.regex)
//	table.name.format    ${topic}   destination table; ${topic} is the topic with every dot
//	                                replaced by an underscore; a dot in the format itself
//	                                separates a schema: "staging.${topic}"
//	insert.mode          insert     insert | upsert
//	pk.mode              none       none | record_key | record_value
//	pk.fields                       comma-separated primary key columns (see below)
//	delete.enabled       false      tombstones delete the row of their key
//	                                (needs pk.mode=record_key); when false they are skipped
//	auto.create          false      CREATE TABLE for a missing table
//	auto.evolve          false      ALTER TABLE ADD COLUMN for fields the table lacks
//	batch.size           3000       the most rows one statement writes
//	max.retries          10         retries of a flush that failed for a passing reason
//	retry.backoff.ms     3000       the wait before each retry
//	errors.tolerance     none       the worker's: with all, records the sink cannot turn
//	                                into rows are skipped (see Bad records)
//
// Identifiers are quoted, so table and column names keep their case.
//
// # Primary keys
//
//   - none: no key. Only insert.mode=insert; every record inserts a row.
//   - record_key: a key that is an object gives its fields (pk.fields picks
//     some; by default all, in name order); a primitive key (number, string,
//     ...) fills the one column pk.fields names, "id" by default. Key fields
//     are written to the row and win over value fields of the same name.
//   - record_value: pk.fields (required, unlike Confluent's "all fields")
//     names fields of the value, which must be present and not null.
//
// upsert needs a key, and the table a primary key or unique index on
// exactly those columns (auto.create makes the primary key).
//
// # Data
//
// A value must be an object (map[string]any): its fields are columns.
// Values are sent as text and cast by PostgreSQL to the column type, so a
// string can fill a timestamptz, date, numeric, uuid or enum column, and an
// integer a numeric or text one. Per type of the data model:
//
//	value            text sent                     auto.create / auto.evolve type
//	nil              NULL                          text
//	bool             true | false                  boolean
//	int64            decimal                       bigint
//	float64          shortest exact decimal        double precision
//	string           as is                         text
//	[]byte           \x<hex> (bytea hex format)    bytea
//	map, []any       JSON                          jsonb
//
// A column takes the type of the first non-null value the batch has for
// it. New columns are nullable; primary key columns are NOT NULL. Columns
// are never dropped or changed.
//
// # Writes and delivery
//
// Put buffers; Flush, which the worker calls before it commits the
// consumer offsets, writes everything buffered in one transaction. Per
// table, the buffered records are first reduced to one operation per key,
// in record order: a delete drops the writes before it, and later upserts
// are merged into earlier ones field by field (a field missing from a later
// record keeps its earlier value, as consecutive upserts would leave it).
// Then deletes run, then writes, grouped by column set, batch.size rows per
//
//	INSERT INTO t (a, b) SELECT c1::bigint, c2::text FROM unnest($1::text[], $2::text[]) AS s(c1, c2)
//	ON CONFLICT (a) DO UPDATE SET b = EXCLUDED.b
//
// (ON CONFLICT only in upsert mode; DO NOTHING when every column is in the
// key). A statement per column set and table is prepared once per
// connection. BenchmarkSink compares it with COPY into a temporary table
// followed by INSERT ... SELECT ... ON CONFLICT, and with one statement
// per row sent in a pgx.Batch. On a shared 2-core machine (load average
// 7-9, PostgreSQL 15 with fsync off, -benchtime=100x -count=3) flushes of
// 1000 upserts ran at 98-101k rows/s (new keys) and 63-86k rows/s
// (existing keys) with unnest, 71-103k and 43-52k with COPY, 26-35k and
// 54-64k with the batch.
//
// Delivery is at-least-once, so a crash may write a batch again. Upserts
// and deletes are idempotent: replaying a batch leaves the same table.
// insert mode is not: a replayed batch fails on a duplicate key (or, with
// pk.mode=none, inserts the rows twice). A key inserted twice in one batch
// is a bad record in insert mode.
//
// # Bad records
//
// A value that is not an object, a null key with pk.mode=record_key, a
// missing or null key field, or an unencodable value make the record a bad
// one: Put buffers the other records of the call and returns a
// *connect.PutError listing the bad ones, each with a *RecordError
// (matching ErrBadRecord). With errors.tolerance=none (the default) the
// worker fails the task with that trace, naming the record; with all it
// logs them, sends them to errors.deadletterqueue.topic.name if set (stage
// TASK_PUT) and goes on. Database errors (a missing table without
// auto.create, a column without auto.evolve, a value the column type
// rejects) fail the flush and the task whatever errors.tolerance says, and
// nothing of the batch is written.
//
// # Limitations
//
//   - Columns outside the primary key of an existing table are matched by
//     name only; values that PostgreSQL cannot cast from text fail the
//     flush (e.g. an epoch integer for a timestamp column, or a JSON array
//     for a PostgreSQL array column: arrays are written as JSON).
//   - insert.mode=update, pk.mode=kafka, fields.whitelist and Confluent's
//     quote.sql.identifiers are not supported.
//   - Several tasks writing to one table that does not exist yet may race
//     on CREATE TABLE; the loser fails and succeeds when restarted.
//   - One connection per task. A flush whose transaction fails because the
//     connection was lost, on a serialization failure or deadlock, or while
//     the server shuts down is retried (max.retries, retry.backoff.ms) on a
//     new connection if needed, but within the worker's 30-second limit for
//     a batch; other errors fail the task at once.
package pgsink
