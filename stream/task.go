package stream

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// inRecord is a record read from a topic, before deserialization.
type inRecord struct {
	topic     string
	partition int32
	offset    int64
	key       []byte
	value     []byte
	ts        int64
	headers   []Header
}

// outRecord is a record a task writes.
type outRecord struct {
	topic     string
	partition int32 // -1: by key, with Kafka's default partitioner
	key       []byte
	value     []byte
	ts        int64
	headers   []Header
}

// emitter is where a task's output goes: the runtime produces it with
// franz-go, the test driver keeps it in memory.
type emitter interface {
	// send writes a record to a topic (physical name).
	send(r outRecord)
	// changelog writes a store update to the store's changelog topic, in
	// the task's partition (value nil: a tombstone).
	changelog(st *taskStore, key, value []byte)
}

// taskID names a task: a sub-topology and a partition.
type taskID struct {
	sub       int
	partition int32
}

func (id taskID) String() string { return fmt.Sprintf("%d_%d", id.sub, id.partition) }

// task runs one partition of one sub-topology: records enter through the
// source entries and pass through the processors by direct calls. A task is
// used by one goroutine at a time.
type task struct {
	id      taskID
	topo    *Topology
	appID   string
	out     emitter
	log     *slog.Logger
	onError func(*ProcessingError) error
	onDeser func(*DeserializationError) error
	clock   func() time.Time
	metrics *metrics
	globals *globalStores

	entries map[string]func(*inRecord) // by physical topic
	memo    map[*node]any              // built processor functions, per node
	stores  map[string]*taskStore
	pg      *partitionGroup // the fetched, unprocessed input records (runtime only)

	// The record being processed, for errors, headers and timestamps.
	cur        *inRecord
	procName   string
	streamTime int64

	streamPunct []*punctuator
	wallPunct   []*punctuator
	flushers    []func() error // run at commit (caches, buffers)
	closers     []func()
	err         error // a fatal error, returned by process
}

// taskEnv is what a task needs from its runtime.
type taskEnv struct {
	appID   string
	out     emitter
	log     *slog.Logger
	onError func(*ProcessingError) error
	onDeser func(*DeserializationError) error
	clock   func() time.Time
	metrics *metrics
	globals *globalStores
}

// metrics are an app's (or harness's) counters, shared by its tasks.
type metrics struct {
	droppedLate atomic.Int64
}

// Metrics is a snapshot of an app's counters.
type Metrics struct {
	// DroppedLateRecords counts records that arrived after every window they
	// belong to had closed (stream time past window end + grace).
	DroppedLateRecords int64
}

func (m *metrics) snapshot() Metrics {
	if m == nil {
		return Metrics{}
	}
	return Metrics{DroppedLateRecords: m.droppedLate.Load()}
}

func newTask(topo *Topology, id taskID, env taskEnv, stores map[string]*taskStore) *task {
	t := &task{
		id: id, topo: topo, appID: env.appID, out: env.out, log: env.log, onError: env.onError, onDeser: env.onDeser, clock: env.clock, metrics: env.metrics, globals: env.globals,
		entries: map[string]func(*inRecord){}, memo: map[*node]any{}, stores: stores,
		streamTime: -1,
	}
	for _, st := range stores {
		if st.seg != nil {
			t.flushers = append(t.flushers, func() error { return st.expire(t.streamTime) })
		}
	}
	for _, src := range topo.subs[id.sub].sources {
		fn := src.entry(t)
		for _, tp := range src.topics {
			t.entries[t.physical(tp, src.partOf != "")] = fn
		}
	}
	return t
}

// physical returns the topic name on the cluster: internal topics are
// prefixed with the application id.
func (t *task) physical(topic string, internal bool) string {
	if internal {
		return t.appID + "-" + topic
	}
	return topic
}

// process runs one input record through the task. A panic or error in user
// code goes to the processing-error handler; its verdict (nil: skip the
// record and go on) is returned.
func (t *task) process(in *inRecord) (err error) {
	entry, ok := t.entries[in.topic]
	if !ok {
		return fmt.Errorf("stream: task %s got a record of topic %q it does not read", t.id, in.topic)
	}
	t.cur = in
	if in.ts > t.streamTime {
		t.streamTime = in.ts
	}
	defer func() {
		if r := recover(); r != nil {
			perr := &ProcessingError{Processor: t.procName, Topic: in.topic, Partition: in.partition, Offset: in.offset,
				Err: fmt.Errorf("panic: %v\n%s", r, debug.Stack())}
			err = t.onError(perr)
		}
		t.cur = nil
	}()
	entry(in)
	if t.err != nil {
		e := t.err
		t.err = nil
		return e
	}
	return t.punctuateStream()
}

// fail records an error from user code (a Processor's return value) and
// asks the handler what to do.
func (t *task) fail(err error) {
	in := t.cur
	perr := &ProcessingError{Processor: t.procName, Err: err}
	if in != nil {
		perr.Topic, perr.Partition, perr.Offset = in.topic, in.partition, in.offset
	}
	if e := t.onError(perr); e != nil && t.err == nil {
		t.err = e
	}
}

func (t *task) dropLate() {
	if t.metrics != nil {
		t.metrics.droppedLate.Add(1)
	}
}

// deserializationError hands a record that does not decode to the
// deserialization-error handler; a non-nil verdict fails the task.
func (t *task) deserializationError(e *DeserializationError) {
	if err := t.onDeser(e); err != nil && t.err == nil {
		t.err = err
	}
}

// flush runs at commit: caches and buffers push their contents downstream.
func (t *task) flush() error {
	// Flushers were added downstream first (processors are built from
	// their children up): run them upstream first.
	var errs []error
	for i := len(t.flushers) - 1; i >= 0; i-- {
		errs = append(errs, t.runFlusher(t.flushers[i]))
	}
	if t.err != nil { // user code failed (Processor error) during the flush
		errs = append(errs, t.err)
		t.err = nil
	}
	return errors.Join(errs...)
}

// runFlusher runs a flusher, which forwards cached updates downstream
// through user code. A panic there goes to the processing-error handler,
// like one while processing a record; if the handler says to go on, the
// update that panicked is skipped and the flusher runs again for the rest
// (a cache marks an entry clean before it forwards it).
func (t *task) runFlusher(f func() error) error {
	for range 100000 {
		err, panicked := t.tryFlusher(f)
		if !panicked || err != nil {
			return err
		}
	}
	return fmt.Errorf("stream: task %s: user code kept panicking while flushing", t.id)
}

func (t *task) tryFlusher(f func() error) (err error, panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			panicked = true
			err = t.onError(&ProcessingError{Processor: t.procName,
				Err: fmt.Errorf("panic while forwarding cached updates at commit: %v\n%s", r, debug.Stack())})
		}
	}()
	return f(), false
}

func (t *task) close() {
	for _, c := range t.closers {
		c()
	}
}

// buildOuts instantiates the children of an edge for this task.
func buildOuts[K, V any](t *task, o *outs[K, V]) procFn[K, V] {
	fns := make([]procFn[K, V], 0, len(o.list))
	for _, mk := range o.list {
		fns = append(fns, mk(t))
	}
	switch len(fns) {
	case 0:
		return func(rec[K, V]) {}
	case 1:
		return fns[0]
	}
	return func(r rec[K, V]) {
		for _, f := range fns {
			f(r)
		}
	}
}

// memoize builds a node's function once per task (a node with several
// parents is reached once per parent).
func memoize[K, V any](t *task, n *node, mk func() procFn[K, V]) procFn[K, V] {
	if f, ok := t.memo[n]; ok {
		return f.(procFn[K, V])
	}
	f := mk()
	t.memo[n] = f
	return f
}

// procFn is a processor's input: called with each record, it forwards to
// its children by calling theirs.
type procFn[K, V any] func(rec[K, V])

// outs is the list of children of a typed edge; streams and tables hold a
// pointer so children can be added after the edge was created.
type outs[K, V any] struct {
	list []func(t *task) procFn[K, V]
}
