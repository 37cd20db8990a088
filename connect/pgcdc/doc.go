// Package pgcdc is a PostgreSQL change data capture source connector whose
// records match Debezium's PostgreSQL connector (with the JSON converter and
// schemas.enable=false), built on logical replication with the pgoutput
// plugin (github.com/jackc/pglogrepl).
//
// Its class is postgres-cdc, alias
// io.debezium.connector.postgresql.PostgresConnector; Plugin returns it. It
// runs one task, whatever tasks.max says.
//
// # Requirements
//
// The server runs with wal_level = logical (Start fails with ErrNotLogical
// otherwise, saying to set it and restart PostgreSQL) and enough
// max_replication_slots and max_wal_senders. database.user needs the
// REPLICATION attribute (or superuser), SELECT on the captured tables, and
// the right to create the publication (superuser for FOR ALL TABLES, table
// ownership for FOR TABLE). Every captured table needs a primary key, a
// REPLICA IDENTITY USING INDEX or REPLICA IDENTITY FULL; Start fails with
// ErrNoReplicaIdentity naming the first table that has none.
//
// # Configuration
//
//	name                        default          meaning
//	database.hostname           (required)       host, IP address or Unix socket directory
//	database.port               5432
//	database.user               (required)
//	database.password           ""
//	database.dbname             (required)
//	database.sslmode            prefer           as libpq: disable ... verify-full
//	topic.prefix                (required)       topics are <topic.prefix>.<schema>.<table>
//	table.include.list          "" (all tables)  comma-separated regexps, matched against whole <schema>.<table>
//	table.exclude.list          ""               applied after the include list
//	slot.name                   debezium         logical replication slot (pgoutput)
//	publication.name            dbz_publication
//	publication.autocreate.mode all_tables       all_tables | filtered | disabled (see below)
//	snapshot.mode               initial          initial | initial_only | no_data (alias never)
//	decimal.handling.mode       string           string | double (precise is not supported)
//	tombstones.on.delete        true             a tombstone follows each delete
//	max.batch.size              2048             most records per Poll
//	max.queue.size              8192             most events buffered ahead of Poll
//	poll.interval.ms            1000             longest a Poll waits for its first record
//	status.update.interval.ms   10000            standby status period while idle
//
// Tables outside the system schemas (pg_catalog, information_schema, pg_*)
// that match the lists are captured; ordinary tables only (partitions are
// published by PostgreSQL as themselves, partitioned parents are skipped).
// publication.autocreate.mode all_tables creates the publication FOR ALL
// TABLES when it is missing (the connector filters); filtered creates it
// FOR TABLE the captured tables, or resets an existing table list to them
// (ALTER PUBLICATION ... SET TABLE) on every start; disabled requires it to
// exist. An existing publication is otherwise used as it is.
//
// # Records
//
// Each row change is one record on topic <topic.prefix>.<schema>.<table>.
// Its key is the primary key columns ({"id": 1}), or the replica identity
// index columns, or null for a table captured through REPLICA IDENTITY FULL
// alone. Its value is Debezium's envelope:
//
//	{"before": {...} | null, "after": {...} | null,
//	 "source": {"version": "1.0.0", "connector": "postgresql", "name": <topic.prefix>,
//	            "ts_ms": <commit time, ms>, "snapshot": "true" | "last" | "false",
//	            "db": <database>, "schema": <schema>, "table": <table>, "txId": <xid>,
//	            "lsn": <LSN of the change>, "xmin": null,
//	            "sequence": "[\"<commit LSN>\",\"<LSN>\"]"},
//	 "op": "r" | "c" | "u" | "d", "ts_ms": <when the connector read it, ms>}
//
// op r is a snapshot read (the last one of the snapshot has source.snapshot
// "last"), c an insert, u an update, d a delete. after is the new row; before
// is the old row for deletes (all columns under REPLICA IDENTITY FULL, the
// key columns and nulls otherwise) and for updates under REPLICA IDENTITY
// FULL, and null for updates otherwise. An update that changes the key
// becomes, as in Debezium, a delete of the old key (with its tombstone) and
// a create of the new one. A delete is followed by a tombstone (same key,
// null value) unless tombstones.on.delete=false. All the changes of one
// transaction carry its txId. Records work with ExtractNewRecordState.
// TRUNCATE is not captured (Debezium's default skipped.operations=t), nor
// are schema changes: a changed table's new columns simply appear.
//
// # Types
//
// Values arrive in text form and become (PostgreSQL type: value):
//
//	smallint, integer, bigint, oid       int64
//	real, double precision               float64 (NaN, Infinity, -Infinity: strings)
//	numeric, decimal                     string, exact ("12345.67"; decimal.handling.mode=string),
//	                                     or float64 (double)
//	boolean                              bool
//	text, varchar, char, name            string (char keeps its padding)
//	timestamp                            int64 microseconds since the epoch (Debezium MicroTimestamp);
//	                                     infinity: max/min int64
//	timestamptz                          string, ISO-8601 in UTC, "2024-02-29T10:34:56.5Z"
//	                                     (Debezium ZonedTimestamp); infinity: "infinity"
//	date                                 int64 days since the epoch (Debezium Date)
//	time                                 int64 microseconds since midnight (Debezium MicroTime)
//	json, jsonb, xml                     string, the document's text (Debezium Json/Xml)
//	bytea                                []byte (base64 in JSON, as Debezium's bytes)
//	uuid                                 string
//	anything else (interval, timetz,     string, PostgreSQL's text output
//	money, inet, arrays, enums, ...)
//	NULL                                 null
//
// An unchanged TOASTed value, which pgoutput does not send in updates, is
// Debezium's placeholder "__debezium_unavailable_value" (under REPLICA
// IDENTITY FULL it is taken from the before-image instead). A value that
// does not parse as its type says (e.g. a BC date) is passed as its text.
//
// # Snapshot modes
//
// initial (default): when no offset is stored, the task creates the slot
// with CREATE_REPLICATION_SLOT ... LOGICAL pgoutput EXPORT_SNAPSHOT, reads
// every captured table in a REPEATABLE READ transaction that imports the
// exported snapshot (SET TRANSACTION SNAPSHOT), emits op r records, and
// then streams with START_REPLICATION from the slot's consistent point:
// every change is either in the snapshot or streamed, never both. Snapshot
// records carry offsets {"snapshot": true, "last_snapshot_record": bool,
// "lsn", "txId", "ts_usec"}; once the last one is stored, a restart
// streams from the slot and never snapshots again. A restart in the middle
// of a snapshot (no offset, or one without last_snapshot_record) redoes
// it: the exported snapshot is gone with its connection, so the slot
// (which has not been streamed from) is dropped and created anew with a new
// snapshot; rows already produced come again as op r (at-least-once). So
// an inactive slot named slot.name is replaced whenever no offset is stored
// for topic.prefix: give each connector its own slot.
//
// no_data (alias never): no snapshot; the slot is created if missing and
// changes stream from it.
//
// initial_only: the snapshot, in a plain REPEATABLE READ transaction, and
// nothing more: no publication or slot is created, and wal_level is not
// checked. always, when_needed, configuration_based and custom are not
// supported.
//
// # Offsets and acknowledgements
//
// The source partition is {"server": <topic.prefix>}. A streamed record's
// offset is {"lsn": <LSN of the change>, "lsn_commit": <commit LSN of its
// transaction>, "txId", "ts_usec": <commit time>, "event": <its position
// among the records of its transaction>}.
//
// The task implements connect.Committer. PostgreSQL keeps the WAL after the
// slot's confirmed_flush_lsn, and the task confirms (in standby status
// updates, as flush and apply position) only the end LSN of transactions
// all of whose records the worker has stored: Kafka acknowledged them and
// their offsets are in connect-offsets, which is when the worker calls
// Commit. Transactions without captured changes are confirmed once nothing
// polled awaits Commit, and when everything received is confirmed, the WAL
// end of the server's keepalives is too, so the slot advances past the WAL
// of other tables and databases while the connector is idle.
//
// After a restart (or a crash) PostgreSQL streams again from
// confirmed_flush_lsn, so a transaction is never lost; records at or before
// the stored offset (by commit LSN, then event) are skipped, so a
// transaction that was partly stored resumes with its next record. Records
// after the stored offset may come twice (at-least-once). If the slot is
// gone while offsets show it was streamed from, Start fails with
// ErrSlotLost rather than silently skip the changes in between. Start waits
// up to 10s for a slot still held by a previous incarnation of the task.
//
// # Lost connections and PostgreSQL restarts
//
// A connection-level failure does not fail the task: the server shutting
// down or restarting (admin_shutdown 57P01, crash_shutdown 57P02, "the
// database system is starting up" 57P03), a walsender ended with
// pg_terminate_backend, a connection reset, closed or at EOF, the server
// unreachable (connection refused, no socket, SQLSTATE class 08, too many
// connections 53300). The capture goroutine stops, both connections are
// closed, and Poll returns the error wrapped with connect.Retriable, so the
// worker keeps the task RUNNING and polls again after its backoff (100ms
// doubling up to errors.retry.max.delay.ms), logging each failure. That
// Poll reconnects as Start does: it reads the stored offset again, checks
// the server and the tables, and streams from the slot, which PostgreSQL
// resends from its confirmed_flush_lsn. While the server is still down or
// starting, or the slot is still held (the server keeps the walsender of a
// connection it has not seen break until wal_sender_timeout), it returns a
// retriable error again, for as long as it takes. When Start itself cannot
// reach the server, it succeeds and the first Poll retries the same way
// (Debezium retries its start too): a wrong database.hostname or
// database.port shows as these retries in the worker's log, not as a
// FAILED task.
//
// Nothing is lost: confirmed_flush_lsn never passes what Commit
// acknowledged (a Commit during the outage is kept and reported after
// reconnecting), and changes the capture goroutine had read but not yet
// handed to Poll are dropped and sent again by PostgreSQL. Records at or
// before the stored offset are skipped, as after a restart of the task;
// records returned by Poll but not yet stored when the connection was lost
// may come twice (at-least-once; the worker stores and commits each Poll's
// records before it polls again, so with it they do not). A connection
// lost during the snapshot redoes the snapshot, as a restart mid-snapshot
// does, so its rows already delivered come again.
//
// Everything else stays fatal and marks the task FAILED, at Start or at a
// reconnection: wal_level not logical (ErrNotLogical), a table without
// replica identity (ErrNoReplicaIdentity), a slot gone although streamed
// from (ErrSlotLost) or, at Start, held by another connection, a missing
// publication with publication.autocreate.mode=disabled, authentication
// failures, a missing database, missing privileges, and bad configuration.
//
// # Concurrency
//
// One capture goroutine per task owns both connections (a regular one for
// checks, the snapshot and catalog look-ups, and a replication one) and
// hands records to Poll in chunks of up to 256 through a channel bounded by
// max.queue.size:
//
//	PostgreSQL ──pgoutput──▶ capture goroutine ──[]item chan──▶ Poll ──▶ worker
//	    ▲                        │  reads, decodes, converts            │ produce, store offsets
//	    └── standby status ──────┘◀──────── confirmed LSN (atomic) ◀──── Commit
//
// It reads with a socket deadline instead of a context, so it also answers
// keepalive requests (ReplyRequested) at once, reports a newly confirmed
// position within about 100ms, and sends a status every
// status.update.interval.ms when idle, whether or not Poll is called; while
// the queue is full it keeps sending status updates. Stop ends the
// goroutine, which reports the confirmed position one last time, and closes
// the connections.
// After a lost connection, Poll ends the goroutine (and waits for it)
// before it reconnects and starts a new one: one runs at a time.
//
// # Limitations
//
// One task per connector (as Debezium). Protocol version 1 of pgoutput:
// large transactions are decoded by the server after their commit (spilling
// beyond logical_decoding_work_mem), not streamed while in progress.
// TRUNCATE, schema change events, heartbeat records, message.key.columns,
// column filters and incremental (signal-based) snapshots are not
// supported. Values are schemaless: Kafka Connect schemas (logical type
// names, decimal scale) are not emitted. Tables created after the start are
// captured when they match the lists and are in the publication (FOR ALL
// TABLES, or added by hand or at the next start in filtered mode); their
// existing rows are not snapshotted.
package pgcdc
