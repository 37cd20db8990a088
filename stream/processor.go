package stream

import (
	"fmt"
	"iter"
	"time"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/table"
)

// Processor is the low-level API: a processor sees every record of its
// input, may use state stores, forward any number of records, and schedule
// punctuations. A new Processor is made (by the factory given to Process)
// for every task.
type Processor[K, V, K2, V2 any] interface {
	// Init is called once before the first record, with the task's context.
	Init(ctx *ProcessorContext[K2, V2]) error
	// Process handles one record. A returned error goes to the
	// processing-error handler.
	Process(r Record[K, V]) error
	// Close is called when the task closes.
	Close()
}

// PunctuationType says which clock a punctuation follows.
type PunctuationType int

const (
	// StreamTime punctuations fire as event time (the largest timestamp
	// the task has seen) passes each interval.
	StreamTime PunctuationType = iota
	// WallClockTime punctuations fire on the system clock.
	WallClockTime
)

type punctuator struct {
	interval int64 // ms
	next     int64 // ms; -1 until stream time is known
	fn       func(time.Time)
	name     string
}

// ProcessorContext is a processor's view of its task.
type ProcessorContext[K, V any] struct {
	t    *task
	next procFn[K, V]
	name string
}

// Forward sends a record to the processor's children.
func (c *ProcessorContext[K, V]) Forward(r Record[K, V]) {
	ts := r.Timestamp.UnixMilli()
	if r.Timestamp.IsZero() && c.t.cur != nil {
		ts = c.t.cur.ts
	}
	c.next(rec[K, V]{key: r.Key, value: r.Value, ts: ts, headers: r.Headers})
	c.t.procName = c.name
}

// Schedule calls fn every interval of the given clock's time, with that
// time. Stream-time punctuations fire while records are processed;
// wall-clock ones from the task's loop (and the test driver's
// AdvanceWallClock).
func (c *ProcessorContext[K, V]) Schedule(interval time.Duration, typ PunctuationType, fn func(time.Time)) {
	p := &punctuator{interval: interval.Milliseconds(), next: -1, fn: fn, name: c.name}
	if p.interval <= 0 {
		p.interval = 1
	}
	if typ == WallClockTime {
		p.next = c.t.wallNow() + p.interval
		c.t.wallPunct = append(c.t.wallPunct, p)
	} else {
		c.t.streamPunct = append(c.t.streamPunct, p)
	}
}

// Partition returns the task's partition.
func (c *ProcessorContext[K, V]) Partition() int32 { return c.t.id.partition }

// StreamTime returns the task's stream time (the largest record timestamp
// seen), or the zero time before any record.
func (c *ProcessorContext[K, V]) StreamTime() time.Time {
	if c.t.streamTime < 0 {
		return time.Time{}
	}
	return time.UnixMilli(c.t.streamTime)
}

// Topic, Offset: where the current record came from ("" and -1 in a
// punctuation).
func (c *ProcessorContext[K, V]) Topic() string {
	if c.t.cur == nil {
		return ""
	}
	return c.t.cur.topic
}

// Offset returns the current record's offset, -1 in a punctuation.
func (c *ProcessorContext[K, V]) Offset() int64 {
	if c.t.cur == nil {
		return -1
	}
	return c.t.cur.offset
}

// StoreRef names a key-value store declared with AddStore; processors get
// the task's instance with Get.
type StoreRef[K, V any] struct {
	name string
	ks   serde.Serde[K]
	vs   serde.Serde[V]
}

// Name returns the store's name.
func (r StoreRef[K, V]) Name() string { return r.name }

// AddStore declares a key-value store for processors (Process with the
// store's name). Options: InMemory, WithoutChangelog.
func AddStore[K, V any](b *Builder, name string, k serde.Serde[K], v serde.Serde[V], opts ...Opt) StoreRef[K, V] {
	o := collect(opts)
	// The store belongs to the sub-topology of the processors using it
	// (see Build); it has no node of its own.
	b.addStore(&storeDef{name: name, persistent: !o.inMemory, changelog: !o.noLog})
	if k == nil || v == nil {
		b.fail(buildErr("store "+name, "a store needs a key and a value serde"))
	}
	return StoreRef[K, V]{name: name, ks: k, vs: v}
}

// KeyValueStore is a task's typed view of a store.
type KeyValueStore[K, V any] struct {
	ref StoreRef[K, V]
	st  *taskStore
	t   *task
}

// Get returns the store of the processor's task.
func (r StoreRef[K, V]) Get(ctx interface{ taskOf() *task }) *KeyValueStore[K, V] {
	t := ctx.taskOf()
	return &KeyValueStore[K, V]{ref: r, st: t.stores[r.name], t: t}
}

func (c *ProcessorContext[K, V]) taskOf() *task { return c.t }

// Get returns the value of k and whether it is there.
func (s *KeyValueStore[K, V]) Get(k K) (V, bool, error) {
	var zero V
	kb, err := s.ref.ks.AppendEncode(nil, k)
	if err != nil {
		return zero, false, err
	}
	b, ok, err := s.st.get(kb)
	if err != nil || !ok {
		return zero, false, err
	}
	v, err := s.ref.vs.Decode(b)
	return v, err == nil, err
}

// Put stores v under k (and logs it to the changelog).
func (s *KeyValueStore[K, V]) Put(k K, v V) error {
	kb, err := s.ref.ks.AppendEncode(nil, k)
	if err != nil {
		return err
	}
	vb, err := s.ref.vs.AppendEncode(nil, v)
	if err != nil {
		return err
	}
	return s.st.put(kb, vb)
}

// Delete removes k.
func (s *KeyValueStore[K, V]) Delete(k K) error {
	kb, err := s.ref.ks.AppendEncode(nil, k)
	if err != nil {
		return err
	}
	return s.st.delete(kb)
}

// All returns every entry in key-byte order.
func (s *KeyValueStore[K, V]) All() iter.Seq2[K, V] { return s.Range(nil, nil) }

// Range returns the entries with from <= key < to in key-byte order (nil
// pointers leave a side open). Entries that do not decode are skipped.
func (s *KeyValueStore[K, V]) Range(from, to *K) iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		var fb, tb []byte
		if from != nil {
			fb, _ = s.ref.ks.AppendEncode(nil, *from)
		}
		if to != nil {
			tb, _ = s.ref.ks.AppendEncode(nil, *to)
		}
		_ = s.st.scan(s.st.kv, fb, tb, func(kb, vb []byte) bool {
			k, err := s.ref.ks.Decode(kb)
			if err != nil {
				return true
			}
			v, err := s.ref.vs.Decode(vb)
			if err != nil {
				return true
			}
			return yield(k, v)
		})
	}
}

// Prefix returns the entries whose key bytes start with prefix.
func (s *KeyValueStore[K, V]) Prefix(prefix []byte) iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		_ = s.st.scan(s.st.kv, prefix, table.PrefixEnd(prefix), func(kb, vb []byte) bool {
			k, err := s.ref.ks.Decode(kb)
			if err != nil {
				return true
			}
			v, err := s.ref.vs.Decode(vb)
			if err != nil {
				return true
			}
			return yield(k, v)
		})
	}
}

// Process adds a processor made by newProc (once per task) that may use the
// named stores. The output has no serdes until WithSerdes.
func Process[K, V, K2, V2 any](s KStream[K, V], newProc func() Processor[K, V, K2, V2], stores []string, opts ...Opt) KStream[K2, V2] {
	n, out := attach(s, "KSTREAM-PROCESSOR", collect(opts), func(t *task, n *node, next procFn[K2, V2]) procFn[K, V] {
		p := newProc()
		ctx := &ProcessorContext[K2, V2]{t: t, next: next, name: n.name}
		if err := p.Init(ctx); err != nil {
			t.fail(fmt.Errorf("init: %w", err))
		}
		t.closers = append(t.closers, p.Close)
		return func(r rec[K, V]) {
			if err := p.Process(Record[K, V]{Key: r.key, Value: r.value, Timestamp: time.UnixMilli(r.ts), Headers: r.headers}); err != nil {
				t.fail(err)
			}
		}
	})
	n.stores = append(n.stores, stores...)
	return derive[K, V, K2, V2](s, n, out, nil, nil, true)
}

// punctuateStream fires the stream-time punctuations that are due.
func (t *task) punctuateStream() error {
	if t.streamTime < 0 {
		return nil
	}
	for _, p := range t.streamPunct {
		if p.next < 0 {
			p.next = t.streamTime - t.streamTime%p.interval + p.interval
			// Kafka Streams fires the first stream-time punctuation as
			// soon as stream time is known.
			t.runPunct(p, t.streamTime)
			continue
		}
		if t.streamTime >= p.next {
			at := p.next
			p.next = t.streamTime - (t.streamTime-p.next)%p.interval + p.interval
			t.runPunct(p, max(at, t.streamTime))
		}
	}
	return t.takeErr()
}

// punctuateWall fires the wall-clock punctuations due at now (ms).
func (t *task) punctuateWall(now int64) error {
	for _, p := range t.wallPunct {
		if now >= p.next {
			p.next = now + p.interval
			t.runPunct(p, now)
		}
	}
	return t.takeErr()
}

func (t *task) runPunct(p *punctuator, at int64) {
	defer func() {
		if r := recover(); r != nil {
			t.fail(fmt.Errorf("punctuation panicked: %v", r))
		}
	}()
	t.procName = p.name
	t.cur = nil
	p.fn(time.UnixMilli(at))
}

func (t *task) takeErr() error {
	e := t.err
	t.err = nil
	return e
}

func (t *task) wallNow() int64 { return t.clock().UnixMilli() }
