// Command sluice is Sluice's one binary: the broker and the client tools that
// talk to it (or to any Kafka-compatible cluster).
//
// Usage:
//
//	sluice broker [--data-dir DIR] [--listen HOST:PORT] [--advertise HOST:PORT]
//	              [--fsync always|interval|never] [--fsync-interval D] [--node-id N]
//	              [--auto-create-topics=true] [--default-partitions N] [--log-level info]
//	              [--topic-default k=v]...
//	sluice topics create NAME [--partitions N] [--replication-factor 1] [--config k=v]...
//	sluice topics list
//	sluice topics describe NAME      (configs with their source: topic, static-broker, default, ...)
//	sluice topics alter-config NAME [--config k=v]... [--delete-config k]...
//	sluice topics delete NAME
//	sluice produce TOPIC [--key-separator SEP] [--partition N] [--acks all|1|0]
//	              [--compression none|gzip|snappy|lz4|zstd] [--header k=v]... [--verbose]
//	sluice consume TOPIC [--from-beginning | --offset earliest|latest|N] [--partition N]
//	              [--group G] [--max N] [--timeout D] [--format '%k:%v\n']
//	sluice groups list
//	sluice groups describe GROUP [GROUP...]
//	sluice groups reset-offsets GROUP (--topic T[:P,P...]... | --all-topics)
//	              (--to-earliest | --to-latest | --to-offset N | --to-datetime T | --shift-by N)
//	              [--execute]
//	sluice groups delete GROUP [GROUP...]
//	sluice groups delete-offsets GROUP --topic T[:P,P...]...
//	sluice bench produce [--topic T] [--records N] [--record-size B] [--partitions N]
//	              [--acks all|1|0] [--compression C] [--linger D] [--max-inflight N]
//	              [--idempotent=true] [--sequential] [--clients N] [--quiet]
//	sluice bench consume [same flags] [--produce-first] [--idle D]
//	sluice connect [--listen 127.0.0.1:8083] [--group G --worker-id ID] [--exactly-once-source]
//	sluice connectors [--url http://127.0.0.1:8083] list | status NAME | delete NAME |
//	              pause NAME | resume NAME | stop NAME | restart NAME [--include-tasks] [--only-failed] |
//	              create NAME [--config k=v]... [--file config.json]
//
// Client commands (topics, produce, consume, groups, bench) take --brokers
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
//	sluice consume orders --group audit --from-beginning --max 1
//	sluice groups describe audit
//	sluice groups reset-offsets audit --topic orders --to-earliest --execute
//	sluice bench produce --records 1000000
//
// consume --format verbs: %k key, %v value, %t topic, %p partition, %o offset,
// %T timestamp (Unix ms), %h headers (k=v,k=v), %% a percent sign; escapes
// \n, \t, \r, \\.
//
// groups works like kafka-consumer-groups.sh. describe prints, per partition
// with a committed offset or assigned to a member, TOPIC PARTITION
// CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID, with - for
// what is unknown. reset-offsets is a dry run printing TOPIC PARTITION
// CURRENT-OFFSET NEW-OFFSET unless --execute is given, and, like delete,
// refuses while the group has active members. --to-datetime takes RFC 3339
// or local 2006-01-02T15:04:05; partitions with no record after it go to
// the end.
//
// Long-running commands stop cleanly on SIGINT or SIGTERM; errors go to
// stderr with what to do about them, and the exit status is 1.
//
// The flags are parsed here; the work is done by package broker and by
// internal/cli (topics, produce, consume, groups) and internal/bench (the load tool,
// whose package doc shows how to compare against franz-go's kfake).
package main
