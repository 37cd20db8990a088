package stream

import (
	"fmt"

	"github.com/sluicehq/sluice/serde"
)

// bind returns the serde to use for a topic: TopicAware serdes (Schema
// Registry) bind per topic.
func bind[T any](s serde.Serde[T], topic string, isKey bool) serde.Serde[T] {
	if ta, ok := s.(serde.TopicAware[T]); ok {
		return ta.ForTopic(topic, isKey)
	}
	return s
}

func encode[T any](s serde.Serde[T], v T) ([]byte, error) {
	return s.AppendEncode(nil, v)
}

// sinkTo adds a sink writing to a fixed topic (physical when internal is
// false, else the app-prefixed repartition topic) or, with pick, to the
// topic pick returns per record.
func sinkTo[K, V any](s KStream[K, V], topic string, internal bool, pick func(K, V) string, o opOpts) *node {
	n := s.b.newNode(kindSink, "KSTREAM-SINK", o.name, s.n)
	n.sinkTo = topic
	if internal {
		n.partOf = topic
		n.sinkTo = ""
	}
	if s.kSerde == nil {
		n.missing = append(n.missing, "key")
	}
	if s.vSerde == nil {
		n.missing = append(n.missing, "value")
	}
	ks, vs := s.kSerde, s.vSerde
	s.out.list = append(s.out.list, func(t *task) procFn[K, V] {
		return memoize(t, n, func() procFn[K, V] {
			name := n.name
			fixed := topic
			if internal {
				fixed = t.physical(topic, true)
			}
			kb, vb := map[string]serde.Serde[K]{}, map[string]serde.Serde[V]{}
			serdesFor := func(tp string) (serde.Serde[K], serde.Serde[V]) {
				k, ok := kb[tp]
				if !ok {
					k = bind(ks, tp, true)
					kb[tp] = k
				}
				v, ok := vb[tp]
				if !ok {
					v = bind(vs, tp, false)
					vb[tp] = v
				}
				return k, v
			}
			return func(r rec[K, V]) {
				t.procName = name
				tp := fixed
				if pick != nil {
					tp = pick(r.key, r.value)
					if tp == "" {
						t.fail(fmt.Errorf("the topic chooser returned an empty topic name"))
						return
					}
				}
				k, v := serdesFor(tp)
				key, err := encode(k, r.key)
				if err != nil {
					t.fail(fmt.Errorf("serialize key for %s: %w", tp, err))
					return
				}
				var val []byte
				if !r.null {
					if val, err = encode(v, r.value); err != nil {
						t.fail(fmt.Errorf("serialize value for %s: %w", tp, err))
						return
					}
				}
				t.out.send(outRecord{topic: tp, partition: -1, key: key, value: val, ts: r.ts, headers: r.headers})
			}
		})
	})
	return n
}

// To writes the stream to a topic with the stream's serdes.
func (s KStream[K, V]) To(topic string, opts ...Opt) {
	n := sinkTo(s, topic, false, nil, collect(opts))
	if topic == "" {
		s.b.fail(buildErr(n.name, "empty topic name"))
	}
}

// ToFunc writes each record to the topic pick chooses for it (Kafka
// Streams' TopicNameExtractor). The topics must exist.
func (s KStream[K, V]) ToFunc(pick func(K, V) string, opts ...Opt) {
	sinkTo(s, "", false, pick, collect(opts))
}

// repartitionDef is an internal topic between sub-topologies.
type repartitionDef struct {
	name       string // logical: <name>-repartition (or a foreign-key join's topics)
	partitions int32  // 0: as many as the tasks of like's sub-topology
	sink       *node
	// like is the node whose sub-topology's task count the topic takes
	// when partitions is 0: nil means the sink's (the upstream
	// sub-topology, Kafka Streams' default for repartition topics).
	like *node
}

// sizeFrom returns the node whose sub-topology sizes the topic.
func (r *repartitionDef) sizeFrom() *node {
	if r.like != nil {
		return r.like
	}
	return r.sink
}

// Repartition writes the stream through an internal topic
// <app-id>-<name>-repartition, so that records are partitioned by their
// current key; the returned stream reads it (in a new sub-topology).
func (s KStream[K, V]) Repartition(opts ...Opt) KStream[K, V] {
	o := collect(opts)
	return repartition(s, o.name, o)
}

func repartition[K, V any](s KStream[K, V], base string, o opOpts) KStream[K, V] {
	if base == "" {
		base = fmt.Sprintf("KSTREAM-REPARTITION-%010d", s.b.seq)
	}
	topic := base + "-repartition"
	sink := sinkTo(s, topic, true, nil, opOpts{name: base + "-sink"})
	s.b.repartitions = append(s.b.repartitions, &repartitionDef{name: topic, partitions: o.partitions, sink: sink})
	src := Stream(s.b, []string{topic}, s.kSerde, s.vSerde, SourceName(base+"-source"))
	src.n.partOf = topic
	// Stream registered the topic as a user topic; it is internal.
	src.n.missing = nil
	return src
}
