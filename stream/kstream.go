package stream

import (
	"time"

	"github.com/sluicehq/sluice/serde"
)

// KStream is a record stream of keys K and values V. It is a handle: every
// operator adds to the topology and returns a new handle. The zero value is
// not usable; create streams with Stream.
type KStream[K, V any] struct {
	b          *Builder
	n          *node
	out        *outs[K, V]
	kSerde     serde.Serde[K]
	vSerde     serde.Serde[V]
	keyChanged bool // a later grouping must repartition
}

// SourceOpt configures a source.
type SourceOpt interface{ applySource(*sourceOpts) }

type sourceOpts struct {
	name      string
	extractor func(topic string, partition int32, offset int64, ts time.Time, key, value []byte) time.Time
}

type sourceOptFunc func(*sourceOpts)

func (f sourceOptFunc) applySource(o *sourceOpts) { f(o) }

// SourceName names the source node.
func SourceName(name string) SourceOpt { return sourceOptFunc(func(o *sourceOpts) { o.name = name }) }

// TimestampExtractor sets how a record's event time is found (default: the
// record's timestamp, Kafka Streams' FailOnInvalidTimestamp minus the
// failing). A negative result drops the record, as Kafka Streams does.
func TimestampExtractor(fn func(topic string, partition int32, offset int64, ts time.Time, key, value []byte) time.Time) SourceOpt {
	return sourceOptFunc(func(o *sourceOpts) { o.extractor = fn })
}

// Stream reads topics as a record stream with the given serdes. Every topic
// is read by exactly one source of the topology.
func Stream[K, V any](b *Builder, topics []string, k serde.Serde[K], v serde.Serde[V], opts ...SourceOpt) KStream[K, V] {
	var so sourceOpts
	for _, o := range opts {
		o.applySource(&so)
	}
	n := b.newNode(kindSource, "KSTREAM-SOURCE", so.name)
	n.topics = append([]string(nil), topics...)
	if len(topics) == 0 {
		b.fail(buildErr(n.name, "a source needs at least one topic"))
	}
	for _, tp := range topics {
		if prev, dup := b.topicNodes[tp]; dup {
			b.fail(buildErr(n.name, "topic %q is already read by %s", tp, prev.name))
		}
		b.topicNodes[tp] = n
	}
	if k == nil {
		n.missing = append(n.missing, "key")
	}
	if v == nil {
		n.missing = append(n.missing, "value")
	}
	s := KStream[K, V]{b: b, n: n, out: &outs[K, V]{}, kSerde: k, vSerde: v}
	out := s.out
	n.entry = func(t *task) func(*inRecord) {
		next := buildOuts(t, out)
		name := n.name
		return func(in *inRecord) {
			t.procName = name
			key, ok := decodeOr(t, k, in, true)
			if !ok {
				return
			}
			val, ok := decodeOr(t, v, in, false)
			if !ok {
				return
			}
			ts := in.ts
			if so.extractor != nil {
				e := so.extractor(in.topic, in.partition, in.offset, time.UnixMilli(in.ts), in.key, in.value)
				if e.Before(time.Unix(0, 0)) {
					return
				}
				ts = e.UnixMilli()
			}
			next(rec[K, V]{key: key, value: val, ts: ts, headers: in.headers})
		}
	}
	return s
}

// decodeOr decodes a key or value, sending failures to the
// deserialization-error handler (the record is then skipped).
func decodeOr[T any](t *task, s serde.Serde[T], in *inRecord, isKey bool) (T, bool) {
	b := in.value
	if isKey {
		b = in.key
	}
	v, err := s.Decode(b)
	if err != nil {
		t.deserializationError(&DeserializationError{Topic: in.topic, Partition: in.partition, Offset: in.offset, IsKey: isKey, Err: err,
			Key: in.key, Value: in.value, Timestamp: in.ts, Headers: in.headers})
		var zero T
		return zero, false
	}
	return v, true
}

// attach adds a processor node under s whose per-task function is built by
// mk from the function of its children.
func attach[K, V, K2, V2 any](s KStream[K, V], prefix string, o opOpts, mk func(t *task, n *node, next procFn[K2, V2]) procFn[K, V]) (*node, *outs[K2, V2]) {
	n := s.b.newNode(kindProcessor, prefix, o.name, s.n)
	out := &outs[K2, V2]{}
	s.out.list = append(s.out.list, func(t *task) procFn[K, V] {
		return memoize(t, n, func() procFn[K, V] {
			fn := mk(t, n, buildOuts(t, out))
			name := n.name
			return func(r rec[K, V]) {
				t.procName = name
				fn(r)
			}
		})
	})
	return n, out
}

func derive[K, V, K2, V2 any](s KStream[K, V], n *node, out *outs[K2, V2], k serde.Serde[K2], v serde.Serde[V2], keyChanged bool) KStream[K2, V2] {
	return KStream[K2, V2]{b: s.b, n: n, out: out, kSerde: k, vSerde: v, keyChanged: keyChanged}
}

// WithSerdes returns the stream with its serdes set: needed after an
// operator that changes the key or value type, before one that writes to a
// topic or a store.
func (s KStream[K, V]) WithSerdes(k serde.Serde[K], v serde.Serde[V]) KStream[K, V] {
	s.kSerde, s.vSerde = k, v
	return s
}

// Filter keeps the records for which keep returns true.
func (s KStream[K, V]) Filter(keep func(K, V) bool, opts ...Opt) KStream[K, V] {
	n, out := attach(s, "KSTREAM-FILTER", collect(opts), func(t *task, _ *node, next procFn[K, V]) procFn[K, V] {
		return func(r rec[K, V]) {
			if keep(r.key, r.value) {
				next(r)
			}
		}
	})
	return derive(s, n, out, s.kSerde, s.vSerde, s.keyChanged)
}

// FilterNot drops the records for which drop returns true.
func (s KStream[K, V]) FilterNot(drop func(K, V) bool, opts ...Opt) KStream[K, V] {
	return s.Filter(func(k K, v V) bool { return !drop(k, v) }, opts...)
}

// Peek calls fn for every record and passes the record on unchanged.
func (s KStream[K, V]) Peek(fn func(K, V), opts ...Opt) KStream[K, V] {
	n, out := attach(s, "KSTREAM-PEEK", collect(opts), func(t *task, _ *node, next procFn[K, V]) procFn[K, V] {
		return func(r rec[K, V]) {
			fn(r.key, r.value)
			next(r)
		}
	})
	return derive(s, n, out, s.kSerde, s.vSerde, s.keyChanged)
}

// Foreach calls fn for every record; it ends the stream.
func (s KStream[K, V]) Foreach(fn func(K, V), opts ...Opt) {
	attach(s, "KSTREAM-FOREACH", collect(opts), func(t *task, _ *node, _ procFn[K, V]) procFn[K, V] {
		return func(r rec[K, V]) { fn(r.key, r.value) }
	})
}

// Merge returns a stream of the records of s and other.
func (s KStream[K, V]) Merge(other KStream[K, V], opts ...Opt) KStream[K, V] {
	o := collect(opts)
	n := s.b.newNode(kindProcessor, "KSTREAM-MERGE", o.name, s.n, other.n)
	out := &outs[K, V]{}
	mk := func(t *task) procFn[K, V] {
		return memoize(t, n, func() procFn[K, V] {
			next := buildOuts(t, out)
			name := n.name
			return func(r rec[K, V]) {
				t.procName = name
				next(r)
			}
		})
	}
	s.out.list = append(s.out.list, mk)
	other.out.list = append(other.out.list, mk)
	k, v := s.kSerde, s.vSerde
	if k == nil {
		k = other.kSerde
	}
	if v == nil {
		v = other.vSerde
	}
	return KStream[K, V]{b: s.b, n: n, out: out, kSerde: k, vSerde: v, keyChanged: s.keyChanged || other.keyChanged}
}

// Map turns each record into a new key and value.
func Map[K, V, K2, V2 any](s KStream[K, V], fn func(K, V) (K2, V2), opts ...Opt) KStream[K2, V2] {
	n, out := attach(s, "KSTREAM-MAP", collect(opts), func(t *task, _ *node, next procFn[K2, V2]) procFn[K, V] {
		return func(r rec[K, V]) {
			k, v := fn(r.key, r.value)
			next(rec[K2, V2]{key: k, value: v, ts: r.ts, headers: r.headers})
		}
	})
	return derive[K, V, K2, V2](s, n, out, nil, nil, true)
}

// MapValues turns each value into a new one; the key is unchanged (no
// repartition is needed afterwards).
func MapValues[K, V, V2 any](s KStream[K, V], fn func(K, V) V2, opts ...Opt) KStream[K, V2] {
	n, out := attach(s, "KSTREAM-MAPVALUES", collect(opts), func(t *task, _ *node, next procFn[K, V2]) procFn[K, V] {
		return func(r rec[K, V]) {
			next(rec[K, V2]{key: r.key, value: fn(r.key, r.value), ts: r.ts, headers: r.headers})
		}
	})
	return derive[K, V, K, V2](s, n, out, s.kSerde, nil, s.keyChanged)
}

// SelectKey gives each record a new key computed from it.
func SelectKey[K, V, K2 any](s KStream[K, V], fn func(K, V) K2, opts ...Opt) KStream[K2, V] {
	n, out := attach(s, "KSTREAM-KEY-SELECT", collect(opts), func(t *task, _ *node, next procFn[K2, V]) procFn[K, V] {
		return func(r rec[K, V]) {
			next(rec[K2, V]{key: fn(r.key, r.value), value: r.value, ts: r.ts, headers: r.headers})
		}
	})
	return derive[K, V, K2, V](s, n, out, nil, s.vSerde, true)
}

// KeyValue is one output of FlatMap.
type KeyValue[K, V any] struct {
	Key   K
	Value V
}

// KV makes a KeyValue.
func KV[K, V any](k K, v V) KeyValue[K, V] { return KeyValue[K, V]{Key: k, Value: v} }

// FlatMap turns each record into zero or more records.
func FlatMap[K, V, K2, V2 any](s KStream[K, V], fn func(K, V) []KeyValue[K2, V2], opts ...Opt) KStream[K2, V2] {
	n, out := attach(s, "KSTREAM-FLATMAP", collect(opts), func(t *task, _ *node, next procFn[K2, V2]) procFn[K, V] {
		return func(r rec[K, V]) {
			for _, kv := range fn(r.key, r.value) {
				next(rec[K2, V2]{key: kv.Key, value: kv.Value, ts: r.ts, headers: r.headers})
			}
		}
	})
	return derive[K, V, K2, V2](s, n, out, nil, nil, true)
}

// FlatMapValues turns each value into zero or more values with the same key.
func FlatMapValues[K, V, V2 any](s KStream[K, V], fn func(K, V) []V2, opts ...Opt) KStream[K, V2] {
	n, out := attach(s, "KSTREAM-FLATMAPVALUES", collect(opts), func(t *task, _ *node, next procFn[K, V2]) procFn[K, V] {
		return func(r rec[K, V]) {
			for _, v := range fn(r.key, r.value) {
				next(rec[K, V2]{key: r.key, value: v, ts: r.ts, headers: r.headers})
			}
		}
	})
	return derive[K, V, K, V2](s, n, out, s.kSerde, nil, s.keyChanged)
}

// Branch is one named branch of Split.
type Branch[K, V any] struct {
	name string
	pred func(K, V) bool
}

// When makes a branch of the records for which pred is true.
func When[K, V any](name string, pred func(K, V) bool) Branch[K, V] {
	return Branch[K, V]{name: name, pred: pred}
}

// Otherwise makes the branch of records no other branch took.
func Otherwise[K, V any](name string) Branch[K, V] { return Branch[K, V]{name: name} }

// Split sends each record to the first branch whose predicate it matches
// (an Otherwise branch matches everything) and returns the branches by
// name. Records matching no branch are dropped.
func (s KStream[K, V]) Split(branches ...Branch[K, V]) map[string]KStream[K, V] {
	result := map[string]KStream[K, V]{}
	splitter, _ := attach(s, "KSTREAM-BRANCH", opOpts{}, func(t *task, _ *node, _ procFn[K, V]) procFn[K, V] {
		return nil // replaced below: the splitter dispatches to its branches
	})
	_ = splitter
	// The splitter's children are one pass-through node per branch.
	s.out.list = s.out.list[:len(s.out.list)-1]
	type br struct {
		pred func(K, V) bool
		out  *outs[K, V]
	}
	var brs []br
	for _, b := range branches {
		n := s.b.newNode(kindProcessor, "KSTREAM-BRANCHCHILD", b.name, splitter)
		out := &outs[K, V]{}
		brs = append(brs, br{pred: b.pred, out: out})
		if _, dup := result[b.name]; dup {
			s.b.fail(buildErr(splitter.name, "branch %q appears twice", b.name))
		}
		result[b.name] = KStream[K, V]{b: s.b, n: n, out: out, kSerde: s.kSerde, vSerde: s.vSerde, keyChanged: s.keyChanged}
	}
	s.out.list = append(s.out.list, func(t *task) procFn[K, V] {
		return memoize(t, splitter, func() procFn[K, V] {
			nexts := make([]procFn[K, V], len(brs))
			for i, b := range brs {
				nexts[i] = buildOuts(t, b.out)
			}
			name := splitter.name
			return func(r rec[K, V]) {
				t.procName = name
				for i, b := range brs {
					if b.pred == nil || b.pred(r.key, r.value) {
						nexts[i](r)
						return
					}
				}
			}
		})
	})
	return result
}
