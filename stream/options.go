package stream

import "github.com/sluicehq/sluice/serde"

// Opt configures an operator: its name, and for operators with state, the
// store's name and kind.
type Opt interface{ applyOp(*opOpts) }

type opOpts struct {
	name       string
	store      string
	inMemory   bool
	noLog      bool
	noCache    bool
	partitions int32
	valueSerde any // a serde.Serde[T], checked by the operator using it
}

type optFunc func(*opOpts)

func (f optFunc) applyOp(o *opOpts) { f(o) }

// storeName is the store of a stateful operator: Materialized's name, else
// Named's, else the generated one.
func (o opOpts) storeName(generated string) string {
	switch {
	case o.store != "":
		return o.store
	case o.name != "":
		return o.name
	}
	return generated
}

func collect(opts []Opt) opOpts {
	var o opOpts
	for _, op := range opts {
		op.applyOp(&o)
	}
	return o
}

// Named names the operator (its processor node) instead of the generated
// KSTREAM-... name. For stateful operators it also names the store unless
// Materialized is given, and for repartitions the topic
// (<app-id>-<name>-repartition).
func Named(name string) Opt { return optFunc(func(o *opOpts) { o.name = name }) }

// Materialized names the state store of a stateful operator; its changelog
// topic is <app-id>-<store>-changelog and interactive queries find it by
// this name.
func Materialized(store string) Opt { return optFunc(func(o *opOpts) { o.store = store }) }

// InMemory keeps the operator's store in memory instead of pebble (it is
// restored in full from its changelog when a task starts).
func InMemory() Opt { return optFunc(func(o *opOpts) { o.inMemory = true }) }

// WithoutChangelog disables the store's changelog: its state is lost with
// the task (Kafka Streams' withLoggingDisabled).
func WithoutChangelog() Opt { return optFunc(func(o *opOpts) { o.noLog = true }) }

// WithoutCache makes the store forward every update downstream at once
// instead of the latest per key at each commit (Kafka Streams'
// withCachingDisabled).
func WithoutCache() Opt { return optFunc(func(o *opOpts) { o.noCache = true }) }

// Partitions sets the partition count of a repartition topic (default: the
// largest partition count among the upstream source topics).
func Partitions(n int32) Opt { return optFunc(func(o *opOpts) { o.partitions = n }) }

// ValueSerde gives an operator the serde of the values it produces, where
// the operator materializes a result whose type it cannot know otherwise:
// ForeignKeyJoin and ForeignKeyLeftJoin store their results with it (Kafka
// Streams' Materialized.withValueSerde). Build fails if T is not the
// operator's result type; other operators ignore it.
func ValueSerde[T any](s serde.Serde[T]) Opt {
	return optFunc(func(o *opOpts) { o.valueSerde = s })
}
