// Package streamtest runs stream topologies with no broker: pipe records
// into input topics, read what the topology wrote to output topics, look
// into its stores, and move the wall clock, all synchronously and
// deterministically (Kafka Streams' TopologyTestDriver).
//
//	topo, _ := b.Build()
//	d := streamtest.New(t, topo)
//	in := streamtest.Input(d, "text-lines", serde.String(), serde.String())
//	out := streamtest.Output(d, "word-counts", serde.String(), serde.Int64())
//	in.PipeValue("hello world", time.UnixMilli(0))
//	got := out.ReadKeyValues() // [{hello 1} {world 1}]
//
// Every Pipe runs the record through the whole topology (repartition topics
// included) and then commits, so caches are flushed after each record.
package streamtest

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/stream"
)

// Driver runs a topology for a test.
type Driver struct {
	t testing.TB
	h *stream.Harness
}

// Option configures a Driver.
type Option func(*stream.HarnessConfig)

// AppID sets the application id (it prefixes internal topics).
func AppID(id string) Option { return func(c *stream.HarnessConfig) { c.AppID = id } }

// Partitions gives a topic n partitions (default 1); records go to
// partitions by Kafka's default key hash.
func Partitions(topic string, n int32) Option {
	return func(c *stream.HarnessConfig) {
		if c.Partitions == nil {
			c.Partitions = map[string]int32{}
		}
		c.Partitions[topic] = n
	}
}

// WallClock sets the starting wall-clock time.
func WallClock(t time.Time) Option { return func(c *stream.HarnessConfig) { c.WallClock = t } }

// OnProcessingError sets the processing-error handler (default: the Pipe
// fails the test).
func OnProcessingError(fn func(*stream.ProcessingError) error) Option {
	return func(c *stream.HarnessConfig) { c.ProcessingErrors = fn }
}

// OnDeserializationError sets the deserialization-error handler (default:
// the Pipe fails the test).
func OnDeserializationError(fn func(*stream.DeserializationError) error) Option {
	return func(c *stream.HarnessConfig) { c.DeserializationErrors = fn }
}

// New starts a driver for topo; it is closed when the test ends.
func New(t testing.TB, topo *stream.Topology, opts ...Option) *Driver {
	t.Helper()
	var cfg stream.HarnessConfig
	for _, o := range opts {
		o(&cfg)
	}
	h, err := stream.NewHarness(topo, cfg)
	if err != nil {
		t.Fatalf("streamtest: %v", err)
	}
	t.Cleanup(h.Close)
	return &Driver{t: t, h: h}
}

// AdvanceWallClock moves the wall clock by d, firing due wall-clock
// punctuations.
func (d *Driver) AdvanceWallClock(dur time.Duration) {
	d.t.Helper()
	if err := d.h.AdvanceWallClock(dur); err != nil {
		d.t.Fatalf("streamtest: advance wall clock: %v", err)
	}
}

// InputTopic pipes typed records into a topic.
type InputTopic[K, V any] struct {
	d     *Driver
	topic string
	ks    serde.Serde[K]
	vs    serde.Serde[V]
}

// Input returns an input topic with the given serdes.
func Input[K, V any](d *Driver, topic string, k serde.Serde[K], v serde.Serde[V]) *InputTopic[K, V] {
	return &InputTopic[K, V]{d: d, topic: topic, ks: k, vs: v}
}

// Pipe sends one record and processes it; a failure fails the test.
func (in *InputTopic[K, V]) Pipe(k K, v V, ts time.Time, headers ...stream.Header) {
	in.d.t.Helper()
	if err := in.TryPipe(k, v, ts, headers...); err != nil {
		in.d.t.Fatalf("streamtest: pipe to %s: %v", in.topic, err)
	}
}

// TryPipe is Pipe returning the error instead of failing the test.
func (in *InputTopic[K, V]) TryPipe(k K, v V, ts time.Time, headers ...stream.Header) error {
	kb, err := in.ks.AppendEncode(nil, k)
	if err != nil {
		return err
	}
	vb, err := in.vs.AppendEncode(nil, v)
	if err != nil {
		return err
	}
	return in.d.h.Pipe(in.topic, kb, vb, ts, headers)
}

// PipeValue sends a record with a null key.
func (in *InputTopic[K, V]) PipeValue(v V, ts time.Time) {
	in.d.t.Helper()
	vb, err := in.vs.AppendEncode(nil, v)
	if err == nil {
		err = in.d.h.Pipe(in.topic, nil, vb, ts, nil)
	}
	if err != nil {
		in.d.t.Fatalf("streamtest: pipe to %s: %v", in.topic, err)
	}
}

// PipeTombstone sends a record with a null value (a delete, for tables).
func (in *InputTopic[K, V]) PipeTombstone(k K, ts time.Time) {
	in.d.t.Helper()
	kb, err := in.ks.AppendEncode(nil, k)
	if err == nil {
		err = in.d.h.Pipe(in.topic, kb, nil, ts, nil)
	}
	if err != nil {
		in.d.t.Fatalf("streamtest: pipe to %s: %v", in.topic, err)
	}
}

// PipeRaw sends undecoded bytes (to test deserialization errors).
func (in *InputTopic[K, V]) PipeRaw(key, value []byte, ts time.Time) error {
	return in.d.h.Pipe(in.topic, key, value, ts, nil)
}

// OutputTopic reads typed records a topology wrote to a topic.
type OutputTopic[K, V any] struct {
	d     *Driver
	topic string
	ks    serde.Serde[K]
	vs    serde.Serde[V]
}

// Output returns an output topic with the given serdes.
func Output[K, V any](d *Driver, topic string, k serde.Serde[K], v serde.Serde[V]) *OutputTopic[K, V] {
	return &OutputTopic[K, V]{d: d, topic: topic, ks: k, vs: v}
}

// Record is an output record; Tombstone is set for a null value.
type Record[K, V any] struct {
	Key       K
	Value     V
	Tombstone bool
	Timestamp time.Time
	Partition int32
	Headers   []stream.Header
}

// KeyValue is an output record's key and value.
type KeyValue[K, V any] struct {
	Key   K
	Value V
}

// ReadRecords returns and consumes the records written since the last read.
func (out *OutputTopic[K, V]) ReadRecords() []Record[K, V] {
	out.d.t.Helper()
	var recs []Record[K, V]
	for _, r := range out.d.h.Output(out.topic) {
		var rec Record[K, V]
		var err error
		if r.Key != nil {
			if rec.Key, err = out.ks.Decode(r.Key); err != nil {
				out.d.t.Fatalf("streamtest: decode key from %s: %v", out.topic, err)
			}
		}
		if r.Value == nil {
			rec.Tombstone = true
		} else if rec.Value, err = out.vs.Decode(r.Value); err != nil {
			out.d.t.Fatalf("streamtest: decode value from %s: %v", out.topic, err)
		}
		rec.Timestamp, rec.Partition, rec.Headers = r.Timestamp, r.Partition, r.Headers
		recs = append(recs, rec)
	}
	return recs
}

// ReadKeyValues returns the keys and values written since the last read.
func (out *OutputTopic[K, V]) ReadKeyValues() []KeyValue[K, V] {
	out.d.t.Helper()
	var kvs []KeyValue[K, V]
	for _, r := range out.ReadRecords() {
		kvs = append(kvs, KeyValue[K, V]{Key: r.Key, Value: r.Value})
	}
	return kvs
}

// ReadValues returns the values written since the last read.
func (out *OutputTopic[K, V]) ReadValues() []V {
	out.d.t.Helper()
	var vs []V
	for _, r := range out.ReadRecords() {
		vs = append(vs, r.Value)
	}
	return vs
}

// Store returns the contents of a key-value store across all partitions.
func Store[K comparable, V any](d *Driver, name string, k serde.Serde[K], v serde.Serde[V]) map[K]V {
	d.t.Helper()
	m := map[K]V{}
	err := d.h.StoreScan(name, func(_ int32, kb, vb []byte) bool {
		key, err := k.Decode(kb)
		if err != nil {
			d.t.Fatalf("streamtest: store %s: decode key: %v", name, err)
		}
		val, err := v.Decode(vb)
		if err != nil {
			d.t.Fatalf("streamtest: store %s: decode value: %v", name, err)
		}
		m[key] = val
		return true
	})
	if err != nil {
		d.t.Fatalf("streamtest: %v", err)
	}
	return m
}

// OutputRaw returns and consumes the raw records written to a topic (e.g.
// an internal repartition topic, named <app-id>-<name>-repartition).
func OutputRaw(d *Driver, topic string) []stream.RawRecord { return d.h.Output(topic) }

// Metrics returns the topology's counters (late records dropped, ...).
func (d *Driver) Metrics() stream.Metrics { return d.h.Metrics() }
