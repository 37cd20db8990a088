// Command sluice is Sluice's one binary: the broker and the client tools that
// talk to it (or to any Kafka-compatible cluster).
//
// Usage:
//
//	sluice broker [--data-dir DIR] [--listen HOST:PORT] [--advertise HOST:PORT]
//	              [--fsync always|interval|never] [--fsync-interval D] [--node-id N]
//	              [--auto-create-topics=true] [--default-partitions N] [--log-level info]
//	sluice topics create NAME [--partitions N] [--replication-factor 1] [--config k=v]...
//	sluice topics list
//	sluice topics describe NAME
//	sluice topics alter-config NAME [--config k=v]... [--delete-config k]...
//	sluice topics delete NAME
//	sluice produce TOPIC [--key-separator SEP] [--partition N] [--acks all|1|0]
//	              [--compression none|gzip|snappy|lz4|zstd] [--header k=v]... [--verbose]
//	sluice consume TOPIC [--from-beginning | --offset earliest|latest|N] [--partition N]
//	              [--group G] [--max N] [--timeout D] [--format '%k:%v\n']
//	sluice bench produce [--topic T] [--records N] [--record-size B] [--partitions N]
//	              [--acks all|1|0] [--compression C] [--linger D] [--max-inflight N]
//	              [--idempotent=true] [--sequential] [--clients N] [--quiet]
//	sluice bench consume [same flags] [--produce-first] [--idle D]
//
// Client commands (topics, produce, consume, bench) take --brokers
// host:port[,host:port] (default 127.0.0.1:9092, or $SLUICE_BROKERS) and,
// where a script may want it, --output json. `sluice COMMAND --help` explains
// each command with examples.
//
// A session:
//
//	sluice broker --data-dir ./sluice-data &
//	sluice topics create orders --partitions 3
//	printf 'k1:hello\nk2:world\n' | sluice produce orders --key-separator :
//	sluice consume orders --from-beginning --max 2 --format '%p/%o %k=%v\n'
//	sluice bench produce --records 1000000
//
// consume --format verbs: %k key, %v value, %t topic, %p partition, %o offset,
// %T timestamp (Unix ms), %h headers (k=v,k=v), %% a percent sign; escapes
// \n, \t, \r, \\.
//
// Long-running commands stop cleanly on SIGINT or SIGTERM; errors go to
// stderr with what to do about them, and the exit status is 1.
//
// The flags are parsed here; the work is done by package broker and by
// internal/cli (topics, produce, consume) and internal/bench (the load tool,
// whose package doc shows how to compare against franz-go's kfake).
package main
