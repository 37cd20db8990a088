// Package stream is Sluice's stream-processing DSL and runtime, in the
// spirit of Kafka Streams: build a topology of KStream and KTable
// operators, then run it as an App against any Kafka (the embedded broker,
// `sluice broker`, Apache Kafka, Redpanda) or test it with no broker in
// package streamtest.
//
//	b := stream.NewBuilder()
//	lines := stream.Stream(b, []string{"text-lines"}, serde.String(), serde.String())
//	words := stream.FlatMapValues(lines, func(_, l string) []string { return strings.Fields(strings.ToLower(l)) }).
//		WithSerdes(serde.String(), serde.String())
//	counts := stream.Count(stream.GroupBy(words, func(_, w string) string { return w }, serde.String()), stream.Materialized("counts"))
//	counts.ToStream().To("word-counts")
//	topo, err := b.Build()
//	app, err := stream.NewApp(topo, stream.AppID("wordcount"), stream.Brokers("127.0.0.1:9092"))
//	err = app.Run(ctx)
//
// # Types
//
// KStream[K,V] and KTable[K,V] are concrete handles. Operators that keep
// the key and value types are methods (Filter, Peek, To, Merge, Split,
// Repartition, ToTable, ToStream); operators that change them are package
// functions (Map, MapValues, FlatMap, FlatMapValues, SelectKey, GroupBy,
// GroupByKey, Count, Aggregate, TableMapValues, TableGroupBy,
// TableAggregate, TableCount, Process), because Go 1.26 has no type
// parameters on methods. After a type-changing operator the stream has no
// serdes; give them with WithSerdes before an operator that writes to a
// topic or a store, or Build fails naming the operator (ErrMissingSerde).
//
// # Operators and their semantics
//
//   - Sources: Stream (record streams), Table (a changelog topic as a table;
//     null values delete), GlobalTable (a table replicated on every
//     instance, no co-partitioning needed).
//   - Stateless: Filter, FilterNot, Map, MapValues, FlatMap, FlatMapValues,
//     SelectKey, Peek, Foreach, Split (named branches, first match wins),
//     Merge, To (fixed topic), ToFunc (topic per record), Repartition.
//   - Grouping and aggregation: GroupByKey, GroupBy; Count, Reduce,
//     Aggregate into a KTable materialized in a state store. An operator
//     that changed the key (Map, SelectKey, FlatMap, GroupBy) makes the next
//     grouping go through a repartition topic <app-id>-<name>-repartition.
//   - Tables: Filter (rows that stop matching are deleted downstream),
//     TableMapValues, ToStream (deletes become null values, written as
//     tombstones), TableGroupBy with TableAggregate/Reduce/TableCount, where
//     a changed row leaves its old group (subtractor) and enters its new one
//     (adder).
//   - Windows: WindowedBy (tumbling, hopping) with WindowedCount, Reduce,
//     WindowedAggregate; SessionWindowedBy with SessionCount and
//     SessionAggregate. A record later than its window's end plus grace (by
//     stream time) is dropped and counted (App.Metrics). Suppress emits only
//     final results (UntilWindowCloses) or rate-limits (UntilTimeLimit).
//     Windowed keys use Kafka Streams' byte formats (window.KeySerde,
//     window.SessionKeySerde); Unwindow leaves the windowed world.
//   - Sliding windows (Kafka Streams' SlidingWindows, KIP-450):
//     SlidingWindowedBy with SlidingCount, Reduce, SlidingAggregate, into a
//     WindowedKTable. Windows follow the records, not the epoch: each record
//     has a window [ts - d, ts] over the records of its key in the time
//     difference d before it, and a window [ts + 1, ts + 1 + d] once a
//     later record falls there; records before d share [0, d]. Both bounds
//     are inclusive: a sliding result's Window has End = Start + d (what
//     window.KeySerde with size d decodes), it takes records until stream
//     time passes End + grace, and UntilWindowCloses emits it then. Updates
//     carry the timestamp of the window's latest record. Sliding-window
//     stores are not cached: every update goes downstream and to the
//     changelog.
//   - Joins: StreamJoin, StreamLeftJoin, StreamOuterJoin within
//     JoinWindows (unmatched records of left/outer joins come out once
//     their window and grace have closed); Join and LeftJoin of a stream
//     with a materialized table; JoinGlobal and LeftJoinGlobal with a
//     global table (no co-partitioning); TableJoin (inner, left, outer).
//     A side whose key changed is repartitioned first, through a topic
//     with as many partitions as the join's other inputs (Kafka Streams'
//     co-partitioning rule); the user topics of a join must have equal
//     partition counts, checked when the app starts (Build already refuses
//     repartition topics given different counts with Partitions).
//   - Foreign-key joins: ForeignKeyJoin and ForeignKeyLeftJoin join each
//     row of a table with the row of another table whose key it holds
//     (Kafka Streams' KIP-213), with no co-partitioning. A left row
//     subscribes to its foreign key through
//     <app-id>-<name>-subscription-registration-topic (partitioned like the
//     right table); the right side keeps subscriptions in the changelogged
//     store <name>-subscription-store, keyed by the length-prefixed foreign
//     key then the left key, so a right update reaches every subscribed
//     left row; answers come back through
//     <app-id>-<name>-subscription-response-topic (partitioned like the
//     left table) to the subscribing task, which drops those whose 128-bit
//     hash (FNV-128a) of the left value no longer matches the stored value.
//     The result is keyed by the left key and materialized; its value
//     serde comes with ValueSerde. Both tables must be materialized. The
//     record formats are below (Foreign-key join records).
//   - Processor API: Process with a Processor that may use stores declared
//     with AddStore and schedule punctuations on stream time or wall-clock
//     time. As in Kafka Streams, a record is processed first and the
//     stream-time punctuations it makes due fire after it.
//
// # Foreign-key join records
//
// The internal topics and the subscription store of a foreign-key join
// hold records of these formats. Every encoding starts with a version byte
// (0); decoders reject other versions and malformed input, so a topic
// written by a later format fails loudly instead of being misread.
//
// Subscription (value of <app-id>-<name>-subscription-registration-topic,
// keyed by the foreign key as the right table's key serde encodes it):
//
//	+---------+-------------+----------------+-----------+----------------+
//	| version | instruction | left partition | hash      | left key       |
//	| 1 byte  | 1 byte      | int32 BE       | 16 bytes  | rest (key      |
//	|         |             |                |           | serde of left) |
//	+---------+-------------+----------------+-----------+----------------+
//
// Instructions: 0 unsubscribe (no answer), 1 subscribe and answer only if
// the right row exists, 2 subscribe and answer in any case (with "no
// row" when there is none). The hash is FNV-128a of the left row's value
// as stored (all zero for an unsubscribe).
//
// Subscription store entry (on the right side; compacted changelog
// <app-id>-<name>-subscription-store-changelog):
//
//	key:   | len(fk) uint32 BE | fk | left key |
//	value: | version | left partition int32 BE | hash 16 bytes | ts int64 BE |
//
// so that a prefix scan over len(fk)+fk finds the left keys subscribed to
// a right key (Kafka Streams' CombinedKey); ts is the subscribing
// record's timestamp (an answer to a right update carries the later of
// the two).
//
// Response (value of <app-id>-<name>-subscription-response-topic, keyed by
// the left key, written to the partition of the subscribing task):
//
//	+---------+--------+-----------+----------------------------------+
//	| version | flags  | hash      | right value (if flags&1: found)  |
//	| 1 byte  | 1 byte | 16 bytes  | rest (value serde of right)      |
//	+---------+--------+-----------+----------------------------------+
//
// # Runtime
//
// An App is one consumer group (the app id). Its work is split into tasks,
// one per (sub-topology, partition); a task owns its state stores. Tasks
// are assigned to members (stream threads of all running instances with
// the same app id) by a sticky, co-partitioning balancer: all topics of a
// sub-topology with the same partition number go to the same task.
// Records pass through a task by direct function calls. Internal topics
// are created at start: repartition topics (as many partitions as the
// upstream sub-topology), the topics of foreign-key joins (as many as the
// table they are partitioned like) and compacted changelogs
// <app-id>-<store>-changelog (one partition per task).
//
// Event time is each record's timestamp (or a TimestampExtractor's); a
// task's stream time is the largest it has seen. A task reads its input
// partitions (a join's two topics, say) in timestamp order, as Kafka
// Streams' PartitionGroup does: it buffers what it fetched and processes
// the record with the smallest timestamp among the partitions' next ones.
// When a partition has nothing buffered but the broker reported records of
// it that were not fetched yet, the task waits for them, for at most
// MaxTaskIdle (default 500ms), so a stream-table join started on a backlog
// sees the table as it was at each stream record's time. Records within
// one partition keep their offset order: give windows and joins a grace
// period that covers the disorder within a topic.
//
// # Guarantees
//
// Guarantee(AtLeastOnce), the default: every CommitInterval (default 30s)
// a thread flushes its record cache (the latest value per key of each
// aggregation or table goes downstream and to the changelog), waits for
// every produced record to be acknowledged, commits the input offsets,
// then checkpoints its persistent stores. After a crash, the records since
// the last commit are processed again; an aggregation may count them twice
// (idempotent aggregations such as "latest" or "max" are exact).
//
// Guarantee(ExactlyOnce) (Kafka Streams' exactly_once_v2): each stream
// thread has one transactional producer, with transactional id
// <app-id>-<instance-id>-<thread index>, and reads with read_committed.
// Every CommitInterval (default 100ms under exactly-once) is one
// transaction: the outputs, the repartition and changelog writes, and the
// input offsets (TxnOffsetCommit carrying the group generation, KIP-447)
// commit atomically, for all the thread's tasks. Consumers of the outputs
// must read with read_committed to see each record's effect exactly once
// (franz-go: kgo.FetchIsolationLevel(kgo.ReadCommitted()); Java and
// librdkafka clients: isolation.level=read_committed).
//
//   - Crash: the transaction in flight never commits; the restarted
//     instance reuses its transactional ids (below), which fences and
//     aborts it at once. Pebble stores are opened with
//     table.ExactlyOnce(true): the checkpoint is consumed at open and
//     written back only at a clean shutdown, so after a crash the store is
//     wiped and restored from the changelog (read_committed, up to the last
//     stable offset). Memory stores restore in full anyway.
//   - Rebalance: a transaction that a revocation or a lost partition cut
//     through is aborted (franz-go's GroupTransactSession); the thread
//     rewinds to the committed offsets and restores its tasks' stores from
//     the changelog before going on. A rebalance therefore costs the work
//     since the last commit and a full restore of the thread's stores.
//     Tasks are created (and restored) by the thread's loop after that
//     abort, and a restore first waits until no transaction is open on
//     the changelog partition (last stable offset = end), so a previous
//     owner's transaction still being committed is seen whole.
//   - Errors: a failed produce or flush aborts the transaction and stops
//     the app with the error, as under at-least-once; so does a
//     transaction that cannot be ended (the broker unreachable beyond the
//     client's retries: whether it committed may be unknown). Running the
//     app again resumes exactly from the last committed transaction.
//   - Zombies: an instance restarted (or started twice) on the same
//     instance id fences the previous producer by the producer epoch; the
//     fenced thread stops the app with an error wrapping ErrFenced (it
//     does not rejoin: two processes claiming one identity is a
//     deployment error). Another instance taking a task over is fenced by
//     the group generation in TxnOffsetCommit: the old owner's commit
//     fails and its transaction aborts.
//
// The instance id makes the transactional ids stable across restarts of
// the same instance: InstanceID sets it; by default it is a random id
// created at the first start and kept in StateDir (file
// sluice-instance-id). Two instances running at once must have distinct
// state directories (as they must anyway) or instance ids.
//
// Cost. Records become visible to read_committed consumers only when their
// transaction commits: up to CommitInterval plus one commit after they
// are processed (the flush of the produced records, then TxnOffsetCommit,
// a heartbeat and EndTxn, which took 0.3-0.9ms, median 0.5ms, against a
// broker in the same process; the thread logs each at debug level). Throughput: BenchmarkSimple (a count of
// 1M records over 10k keys with its output topic, broker in the same
// process, 2-core machine; go test ./stream -run '^$' -bench
// 'Simple/count-(alos|eos)' -benchtime 3x -count 4) measured count-alos
// (at-least-once, 1s commits) at 2.1-2.4M rec/s, count-eos (100ms
// transactions) at 1.0-1.6M rec/s, about 55%, and count-eos-1s (1s
// transactions) at 1.9-2.6M rec/s, no measurable cost (on a busier machine
// all three drop, exactly-once at 100ms the most: 0.3-0.9M against
// 0.7-1.7M). The cost at 100ms is the commit frequency: the record cache
// is flushed (each key's count written to the changelog and the output)
// ten times as often, and the thread stops processing during each commit.
// Under exactly-once the stores are not flushed and checkpointed at every
// commit, which pays for the transaction itself; a longer CommitInterval
// trades visibility latency for throughput. Exactly-once needs transactions on the broker
// (sluice, Kafka 2.5+).
//
// # State
//
// Stores come from package table: pebble (the default, under StateDir,
// one database per task and store, with a checkpoint so a restart restores
// only the changelog's tail) or memory (InMemory; restored in full).
// Interactive queries read a running app's stores: Query for typed access,
// StoreHandler for an http.Handler serving JSON. Queries see values once
// they leave the record cache (at the latest, at the next commit).
//
// Window and session stores (of windowed and session aggregations) are
// segmented by time (table.Segmented: by window start, or session end),
// with Kafka Streams' key formats in the cache and the changelog. Their
// records expire once older than the retention (window.Spec.Retention,
// default size + grace; for sessions gap + grace) behind stream time:
// reads skip them at once, and a whole segment is dropped with one range
// delete when everything in it has expired, so expiry costs
// O(segments), not O(records). Expiry writes no tombstones: windowed
// changelogs are compact,delete topics kept a day past the retention, and
// a restore drops what has expired. QueryWindows reads a window store
// (Fetch: the windows of a key starting in a time range, in start order;
// FetchAll; All), QuerySessions a session store (Fetch: a key's
// sessions; FindSessions: those ending at or after one time and starting
// at or before another); both read only the segments a range covers,
// from the local partitions, and report what ended a scan early in Err.
// WindowStoreHandler serves a window store as JSON (?key=, ?from=, ?to=).
//
// # Errors
//
// A panic in a user callback, or an error returned by a Processor, goes to
// the processing-error handler (OnProcessingError): nil skips the record,
// an error stops the app with it (the default). Records whose key or value
// does not deserialize go to OnDeserializationError (default: stop), or to
// a dead-letter topic (DeadLetterTopic) with __sluice.error.* headers. A
// failed produce stops the app with an error naming the topic. Nothing
// crashes the process: Run returns the error.
package stream
