package stream

import (
	"fmt"

	"github.com/sluicehq/sluice/table"
	"log/slog"
	"slices"
	"sort"
	"time"
)

// Harness runs a topology without Kafka, synchronously: every record piped
// in is processed to the end (including through repartition topics) before
// Pipe returns, then the tasks commit (caches flush), like Kafka Streams'
// TopologyTestDriver. Package streamtest wraps it with typed topics and
// stores; use that.
type Harness struct {
	topo    *Topology
	cfg     HarnessConfig
	parts   map[string]int32 // physical topic -> partitions
	tasks   map[taskID]*task
	byTopic map[string][]*task // physical topic -> tasks by partition
	outputs map[string][]RawRecord
	queue   []outRecord
	offsets map[string]int64
	now     time.Time
	failure error
	globals globalStores
	gtopics map[string]*taskStore
	metrics metrics
}

// HarnessConfig configures a Harness.
type HarnessConfig struct {
	// AppID prefixes internal topics. Default "streamtest".
	AppID string
	// Partitions gives topics more than the default single partition.
	Partitions map[string]int32
	// WallClock is the starting wall-clock time. Default: the Unix epoch.
	WallClock time.Time
	// ProcessingErrors decides what a failing user callback does (default:
	// fail the Pipe call with the error).
	ProcessingErrors func(*ProcessingError) error
	// DeserializationErrors decides what a record that does not decode does
	// (default: fail).
	DeserializationErrors func(*DeserializationError) error
	Logger                *slog.Logger
}

// RawRecord is a record written to a topic, as bytes.
type RawRecord struct {
	Topic     string
	Partition int32
	Key       []byte // nil: null
	Value     []byte // nil: null (a tombstone)
	Timestamp time.Time
	Headers   []Header
}

// NewHarness builds every task of the topology.
func NewHarness(topo *Topology, cfg HarnessConfig) (*Harness, error) {
	if cfg.AppID == "" {
		cfg.AppID = "streamtest"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ProcessingErrors == nil {
		cfg.ProcessingErrors = func(e *ProcessingError) error { return e }
	}
	if cfg.DeserializationErrors == nil {
		cfg.DeserializationErrors = func(e *DeserializationError) error { return e }
	}
	h := &Harness{
		topo: topo, cfg: cfg, parts: map[string]int32{}, tasks: map[taskID]*task{},
		byTopic: map[string][]*task{}, outputs: map[string][]RawRecord{}, offsets: map[string]int64{},
		now: cfg.WallClock,
	}
	if h.now.IsZero() {
		h.now = time.UnixMilli(0)
	}
	counts := topo.partitionCounts(cfg.AppID, func(topic string) int32 {
		if n := cfg.Partitions[topic]; n > 0 {
			return n
		}
		return 1
	})
	env := taskEnv{appID: cfg.AppID, out: h, log: cfg.Logger, onError: cfg.ProcessingErrors, onDeser: cfg.DeserializationErrors,
		clock: func() time.Time { return h.now }, metrics: &h.metrics, globals: &h.globals}
	cache := table.NewCache(table.DefaultCacheBytes)
	for _, st := range topo.subs {
		n := counts.sub[st.id]
		for p := range n {
			id := taskID{sub: st.id, partition: p}
			stores := map[string]*taskStore{}
			for _, name := range st.stores {
				ts, err := newTaskStore(topo.stores[name], table.NewMemory(), p, h, cache)
				if err != nil {
					return nil, err
				}
				stores[name] = ts
			}
			t := newTask(topo, id, env, stores)
			h.tasks[id] = t
			for topic := range t.entries {
				ts := h.byTopic[topic]
				for int32(len(ts)) <= p {
					ts = append(ts, nil)
				}
				ts[p] = t
				h.byTopic[topic] = ts
			}
		}
	}
	for topic, n := range counts.topic {
		h.parts[topic] = n
	}
	h.gtopics = map[string]*taskStore{}
	for _, g := range topo.globals {
		st, _ := newTaskStore(&storeDef{name: g.name}, table.NewMemory(), -1, h, nil) // a plain memory store: no error
		h.globals.set(g.name, st)
		h.gtopics[g.topic] = st
	}
	return h, nil
}

// send implements emitter: records to topics the topology reads (repartition
// topics, or user topics fed back) are queued for processing; all are kept
// as output.
func (h *Harness) send(r outRecord) {
	p := r.partition
	n := h.parts[r.topic]
	if n == 0 {
		n = 1
		if c := h.cfg.Partitions[r.topic]; c > 0 {
			n = c
		}
	}
	if p < 0 {
		p = 0
		if r.key != nil {
			p = partitionFor(r.key, n)
		}
	}
	r.partition = p
	h.outputs[r.topic] = append(h.outputs[r.topic], RawRecord{Topic: r.topic, Partition: p, Key: r.key, Value: r.value,
		Timestamp: time.UnixMilli(r.ts), Headers: r.headers})
	if _, read := h.byTopic[r.topic]; read {
		h.queue = append(h.queue, r)
	}
}

func (h *Harness) changelog(*taskStore, []byte, []byte) {}

// Pipe feeds one record into a topic and processes it, and everything it
// causes, to the end; then every task commits.
func (h *Harness) Pipe(topic string, key, value []byte, ts time.Time, headers []Header) error {
	if h.failure != nil {
		return fmt.Errorf("stream: the harness failed earlier: %w", h.failure)
	}
	if st, ok := h.gtopics[topic]; ok {
		return applyGlobal(st, key, value)
	}
	if _, ok := h.byTopic[topic]; !ok {
		return fmt.Errorf("stream: the topology does not read topic %q", topic)
	}
	p := int32(0)
	if n := h.parts[topic]; n > 1 && key != nil {
		p = partitionFor(key, n)
	}
	if err := h.deliver(outRecord{topic: topic, partition: p, key: key, value: value, ts: ts.UnixMilli(), headers: headers}); err != nil {
		return err
	}
	for len(h.queue) > 0 {
		r := h.queue[0]
		h.queue = h.queue[1:]
		if err := h.deliver(r); err != nil {
			return err
		}
	}
	return h.commit()
}

func (h *Harness) deliver(r outRecord) error {
	ts := h.byTopic[r.topic]
	if int(r.partition) >= len(ts) || ts[r.partition] == nil {
		return fmt.Errorf("stream: no task reads %s-%d", r.topic, r.partition)
	}
	key := fmt.Sprintf("%s-%d", r.topic, r.partition)
	off := h.offsets[key]
	h.offsets[key] = off + 1
	in := &inRecord{topic: r.topic, partition: r.partition, offset: off, key: r.key, value: r.value, ts: r.ts, headers: r.headers}
	if err := ts[r.partition].process(in); err != nil {
		h.failure = err
		return err
	}
	return nil
}

func (h *Harness) commit() error {
	// Flushing may produce records to process (a cache flushed into a
	// repartition topic), whose processing fills caches again: flush until
	// nothing is left, so every result of the piped record is out.
	for {
		for _, id := range h.taskIDs() {
			if err := h.tasks[id].flush(); err != nil {
				h.failure = err
				return err
			}
		}
		if len(h.queue) == 0 {
			return nil
		}
		for len(h.queue) > 0 {
			r := h.queue[0]
			h.queue = h.queue[1:]
			if err := h.deliver(r); err != nil {
				return err
			}
		}
	}
}

func (h *Harness) taskIDs() []taskID {
	ids := make([]taskID, 0, len(h.tasks))
	for id := range h.tasks {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if ids[i].sub != ids[j].sub {
			return ids[i].sub < ids[j].sub
		}
		return ids[i].partition < ids[j].partition
	})
	return ids
}

// AdvanceWallClock moves the wall clock and fires the wall-clock
// punctuations that become due.
func (h *Harness) AdvanceWallClock(d time.Duration) error {
	h.now = h.now.Add(d)
	for _, id := range h.taskIDs() {
		if err := h.tasks[id].punctuateWall(h.now.UnixMilli()); err != nil {
			h.failure = err
			return err
		}
	}
	return h.commit()
}

// Output returns and forgets the records written to topic so far.
func (h *Harness) Output(topic string) []RawRecord {
	out := h.outputs[topic]
	delete(h.outputs, topic)
	return out
}

// StoreScan calls fn for every entry of the named store, over all tasks
// (partitions), in key order within each partition.
func (h *Harness) StoreScan(name string, fn func(partition int32, k, v []byte) bool) error {
	if st := h.globals.get(name); st != nil {
		return st.scan(st.kv, nil, nil, func(k, v []byte) bool { return fn(-1, k, v) })
	}
	if _, ok := h.topo.stores[name]; !ok {
		return fmt.Errorf("stream: no store named %q (stores: %v)", name, h.topo.storeNames())
	}
	for _, id := range h.taskIDs() {
		st, ok := h.tasks[id].stores[name]
		if !ok {
			continue
		}
		stop := false
		if err := st.scan(st.kv, nil, nil, func(k, v []byte) bool {
			if !fn(id.partition, k, st.def.userValue(v)) {
				stop = true
				return false
			}
			return true
		}); err != nil || stop {
			return err
		}
	}
	return nil
}

// StoreGet returns a store's value for key, from the task of the key's
// partition.
func (h *Harness) StoreGet(name string, key []byte) ([]byte, bool, error) {
	if _, ok := h.topo.stores[name]; !ok {
		return nil, false, fmt.Errorf("stream: no store named %q (stores: %v)", name, h.topo.storeNames())
	}
	for _, id := range h.taskIDs() {
		st, ok := h.tasks[id].stores[name]
		if !ok {
			continue
		}
		if v, found, err := st.get(key); err != nil || found {
			return v, found, err
		}
	}
	return nil, false, nil
}

// Close closes every task.
func (h *Harness) Close() {
	for _, t := range h.tasks {
		t.close()
	}
}

func (t *Topology) storeNames() []string {
	var out []string
	for n := range t.stores {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Metrics returns the harness's counters.
func (h *Harness) Metrics() Metrics { return h.metrics.snapshot() }
