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
//   - Joins: StreamJoin, StreamLeftJoin, StreamOuterJoin within
//     JoinWindows (unmatched records of left/outer joins come out once
//     their window and grace have closed); Join and LeftJoin of a stream
//     with a materialized table; JoinGlobal and LeftJoinGlobal with a
//     global table (no co-partitioning); TableJoin (inner, left, outer).
//     Inputs of co-partitioned joins must have equal partition counts,
//     checked when the app starts; a side whose key changed is
//     repartitioned first.
//   - Processor API: Process with a Processor that may use stores declared
//     with AddStore and schedule punctuations on stream time or wall-clock
//     time. As in Kafka Streams, a record is processed first and the
//     stream-time punctuations it makes due fire after it.
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
// upstream sub-topology) and compacted changelogs <app-id>-<store>-changelog
// (one partition per task).
//
// Event time is each record's timestamp (or a TimestampExtractor's); a
// task's stream time is the largest it has seen. Records are processed in
// the order they are fetched, not re-ordered by timestamp across a task's
// input partitions as Kafka Streams does: give windows and joins a grace
// period that covers the disorder of the input.
//
// Guarantee: at-least-once. Every CommitInterval (default 30s) a thread
// flushes its record cache (the latest value per key of each aggregation
// or table goes downstream and to the changelog), waits for every produced
// record to be acknowledged, commits the input offsets, then checkpoints
// its persistent stores. After a crash, the records since the last commit
// are processed again; an aggregation may count them twice (idempotent
// aggregations such as "latest" or "max" are exact). Exactly-once needs
// broker transactions and is not available yet.
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
