package connect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Connector and task states, as the REST API reports them.
const (
	StateRunning    = "RUNNING"
	StatePaused     = "PAUSED"
	StateStopped    = "STOPPED"
	StateFailed     = "FAILED"
	StateUnassigned = "UNASSIGNED"
)

// target states, as stored in connect-configs.
const (
	targetStarted = "STARTED"
	targetPaused  = "PAUSED"
	targetStopped = "STOPPED"
)

// Opt configures a Worker.
type Opt interface{ apply(*cfg) }

type optFunc func(*cfg)

func (f optFunc) apply(c *cfg) { f(c) }

type cfg struct {
	brokers                         []kgo.Opt
	plugins                         []Plugin
	logger                          *slog.Logger
	workerID                        string
	configs, offsets, statusTopicNm string
	exactlyOnce                     bool
	groupID                         string
}

// Brokers sets the franz-go options of the worker's clients; at least
// kgo.SeedBrokers. Required.
func Brokers(opts ...kgo.Opt) Opt {
	return optFunc(func(c *cfg) { c.brokers = append(c.brokers, opts...) })
}

// Plugins registers connector implementations by class name.
func Plugins(ps ...Plugin) Opt { return optFunc(func(c *cfg) { c.plugins = append(c.plugins, ps...) }) }

// Logger sets the logger; the default discards.
func Logger(l *slog.Logger) Opt { return optFunc(func(c *cfg) { c.logger = l }) }

// WorkerID names the worker in statuses (Kafka's worker_id); default
// hostname:pid.
func WorkerID(id string) Opt { return optFunc(func(c *cfg) { c.workerID = id }) }

// Topics sets the names of the configs, offsets and status topics; default
// connect-configs, connect-offsets and connect-status (Kafka Connect's
// config.storage.topic, offset.storage.topic and status.storage.topic).
func Topics(configs, offsets, status string) Opt {
	return optFunc(func(c *cfg) { c.configs, c.offsets, c.statusTopicNm = configs, offsets, status })
}

// ExactlyOnceSource makes every source task write the records of each Poll
// and their source offsets in one Kafka transaction (Kafka Connect's
// exactly.once.source.support=enabled with transaction.boundary=poll), with
// the transactional id connect-<connector>-<task>, so a restarted or fenced
// task never leaves records whose offsets were not stored, nor the reverse.
// Consumers see exactly-once results only with read_committed. Default off
// (at-least-once).
func ExactlyOnceSource() Opt { return optFunc(func(c *cfg) { c.exactlyOnce = true }) }

// Worker runs connectors and their tasks. Its state lives in Kafka: see the
// package documentation. The methods that change connectors are safe for
// concurrent use and wait until Run has read the state back.
type Worker struct {
	cfg     cfg
	plugins *plugins
	st      *store
	data    *kgo.Client // produces source records and dead letters
	log     *slog.Logger

	life    context.Context // lifetime of tasks
	cancel  context.CancelFunc
	ready   chan struct{}
	wg      sync.WaitGroup // task goroutines
	bg      sync.WaitGroup // distributed mode: tailers and the rebalance loop
	runOnce sync.Once
	closed  sync.Once

	// opMu serialises operations on connectors; it is held across I/O
	// (writes to Kafka, waiting for tasks to stop). See LOCKING.md.
	opMu sync.Mutex
	// mu guards the fields below; no I/O while it is held.
	mu struct {
		sync.Mutex
		conns   map[string]*conn
		offsets map[string]map[string]any // connect-offsets key -> offset

		// Distributed mode only (see distributed.go).
		members        []string         // worker ids of the group, sorted; nil until assigned
		remote         map[string]State // connect-status key -> last state read
		configsApplied int64            // next connect-configs offset to apply
		offsetsApplied int64            // next connect-offsets offset to apply
		progress       chan struct{}    // closed and replaced when either advances
	}
	grp      *kgo.Client   // distributed mode: membership in the group
	reassign chan struct{} // distributed mode: the assignment changed
}

// conn is one connector. Fields other than name are guarded by Worker.mu.
type conn struct {
	name        string
	plugin      Plugin
	config      map[string]string
	target      string
	state       string
	trace       string
	taskConfigs []map[string]string
	tasks       []*task
}

// task is one running (or failed, or paused) task.
type task struct {
	id     int
	remote bool   // distributed mode: assigned to another worker
	state  string // guarded by Worker.mu
	trace  string // guarded by Worker.mu
	cancel context.CancelFunc
	done   chan struct{}
}

// NewWorker returns a worker; Run starts it.
func NewWorker(opts ...Opt) (*Worker, error) {
	c := cfg{configs: "connect-configs", offsets: "connect-offsets", statusTopicNm: "connect-status"}
	for _, o := range opts {
		o.apply(&c)
	}
	if len(c.brokers) == 0 {
		return nil, errors.New("connect: Brokers is required")
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.workerID == "" {
		h, _ := os.Hostname()
		c.workerID = fmt.Sprintf("%s:%d", h, os.Getpid())
	}
	ps, err := newPlugins(c.plugins)
	if err != nil {
		return nil, err
	}
	st, err := newStore(c.brokers, c.configs, c.offsets, c.statusTopicNm)
	if err != nil {
		return nil, err
	}
	data, err := kgo.NewClient(append([]kgo.Opt{kgo.AllowAutoTopicCreation(), kgo.RequiredAcks(kgo.AllISRAcks())}, c.brokers...)...)
	if err != nil {
		st.close()
		return nil, fmt.Errorf("connect: kafka client: %w", err)
	}
	w := &Worker{cfg: c, plugins: ps, st: st, data: data, log: c.logger, ready: make(chan struct{})}
	w.life, w.cancel = context.WithCancel(context.Background())
	w.mu.conns = map[string]*conn{}
	w.mu.offsets = map[string]map[string]any{}
	w.mu.remote = map[string]State{}
	w.mu.progress = make(chan struct{})
	w.reassign = make(chan struct{}, 1)
	return w, nil
}

// Run creates the worker's topics if missing, reads its state back from
// them, starts the connectors, and runs until ctx is done; then it stops
// every task (source offsets of acknowledged records are committed, sink
// tasks commit what they have put) and returns. It can be called once.
func (w *Worker) Run(ctx context.Context) error {
	first := false
	w.runOnce.Do(func() { first = true })
	if !first {
		return errors.New("connect: Run called twice")
	}
	defer w.stopAll()
	if err := w.st.ensureTopics(ctx); err != nil {
		return err
	}
	ends, err := w.replay(ctx)
	if err != nil {
		return err
	}
	w.opMu.Lock()
	w.mu.Lock()
	names := slices.Sorted(maps.Keys(w.mu.conns))
	w.mu.Unlock()
	for _, n := range names {
		w.applyTargetOpLocked(ctx, n)
	}
	w.opMu.Unlock()
	// In distributed mode nothing is owned yet: the first assignment starts
	// the tasks. Joining only now keeps the rebalance loop from starting
	// tasks that the loop above would then start again.
	if w.cfg.groupID != "" {
		if err := w.startDistributed(ctx, ends); err != nil {
			return err
		}
	}
	close(w.ready)
	w.log.Info("connect worker started", "worker_id", w.cfg.workerID, "connectors", len(names))
	select {
	case <-ctx.Done():
	case <-w.life.Done():
	}
	return nil
}

// Close stops every task and closes the worker's clients. It is idempotent.
func (w *Worker) Close() error {
	w.closed.Do(func() {
		w.stopAll()
		w.bg.Wait() // after stopAll released opMu, which the configs tailer takes
		if w.grp != nil {
			w.grp.Close() // leaves the group: the others take over at once
		}
		w.st.close()
		w.data.Close()
	})
	return nil
}

func (w *Worker) stopAll() {
	w.opMu.Lock()
	defer w.opMu.Unlock()
	w.cancel()
	w.mu.Lock()
	var ts []*task
	for _, c := range w.mu.conns {
		ts = append(ts, c.tasks...)
	}
	w.mu.Unlock()
	for _, t := range ts {
		if t.cancel != nil { // paused and remote tasks never ran here
			t.cancel()
			<-t.done
		}
	}
	w.wg.Wait()
}

// wait blocks until Run has read the state back.
func (w *Worker) wait(ctx context.Context) error {
	select {
	case <-w.ready:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.life.Done():
		return ErrClosed
	}
	if w.life.Err() != nil {
		return ErrClosed
	}
	return nil
}

// replay reads connect-offsets, connect-configs and (distributed mode)
// connect-status, and returns their end offsets in that order.
func (w *Worker) replay(ctx context.Context) (ends [3]int64, err error) {
	offsets := map[string]map[string]any{}
	ends[0], err = w.st.replay(ctx, w.cfg.offsets, func(k, v []byte) {
		if v == nil {
			delete(offsets, string(k))
			return
		}
		if o, err := decodeOffset(v); err == nil {
			offsets[string(k)] = o
		}
	})
	if err != nil {
		return ends, err
	}
	configs := map[string]map[string]string{}
	targets := map[string]string{}
	ends[1], err = w.st.replay(ctx, w.cfg.configs, func(k, v []byte) {
		key := string(k)
		switch {
		case strings.HasPrefix(key, "connector-"):
			name := strings.TrimPrefix(key, "connector-")
			if v == nil {
				delete(configs, name)
				delete(targets, name)
				return
			}
			var m struct {
				Properties map[string]string `json:"properties"`
			}
			if json.Unmarshal(v, &m) == nil && m.Properties != nil {
				configs[name] = m.Properties
			}
		case strings.HasPrefix(key, "target-state-"):
			name := strings.TrimPrefix(key, "target-state-")
			if v == nil {
				delete(targets, name)
				return
			}
			var m struct {
				State   string `json:"state"`
				StateV2 string `json:"state.v2"`
			}
			if json.Unmarshal(v, &m) == nil {
				targets[name] = cmp(m.StateV2, m.State)
			}
		}
	})
	if err != nil {
		return ends, err
	}
	remote := map[string]State{}
	if w.cfg.groupID != "" {
		ends[2], err = w.st.replay(ctx, w.cfg.statusTopicNm, func(k, v []byte) { applyStatus(remote, k, v) })
		if err != nil {
			return ends, err
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mu.offsets = offsets
	w.mu.remote = remote
	w.mu.offsetsApplied, w.mu.configsApplied = ends[0], ends[1]
	for name, c := range configs {
		p, ok := w.plugins.lookup(c["connector.class"])
		if !ok {
			w.log.Warn("connect: skipping connector with unknown class", "connector", name, "class", c["connector.class"])
			continue
		}
		w.mu.conns[name] = &conn{name: name, plugin: p, config: c, target: cmp(targets[name], targetStarted), state: StateUnassigned}
	}
	return ends, nil
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Info describes a connector, as GET /connectors/{name} does.
type Info struct {
	Name   string            `json:"name"`
	Config map[string]string `json:"config"`
	Tasks  []TaskID          `json:"tasks"`
	Type   string            `json:"type"`
}

// TaskID names a task.
type TaskID struct {
	Connector string `json:"connector"`
	Task      int    `json:"task"`
}

// State is the state of a connector or task in a Status.
type State struct {
	ID       *int   `json:"id,omitempty"`
	State    string `json:"state"`
	WorkerID string `json:"worker_id"`
	Trace    string `json:"trace,omitempty"`
}

// Status is a connector's status, as GET /connectors/{name}/status returns it.
type Status struct {
	Name      string  `json:"name"`
	Connector State   `json:"connector"`
	Tasks     []State `json:"tasks"`
	Type      string  `json:"type"`
}

// TaskInfo is a task's configuration, as GET /connectors/{name}/tasks
// returns it.
type TaskInfo struct {
	ID     TaskID            `json:"id"`
	Config map[string]string `json:"config"`
}

// Connectors returns the names of the connectors, sorted.
func (w *Worker) Connectors(ctx context.Context) ([]string, error) {
	if err := w.wait(ctx); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string{}, slices.Sorted(maps.Keys(w.mu.conns))...), nil
}

func (w *Worker) connLocked(name string) (*conn, error) {
	c, ok := w.mu.conns[name]
	if !ok {
		return nil, fmt.Errorf("%w: Connector %s not found", ErrNotFound, name)
	}
	return c, nil
}

// Info returns a connector's configuration and tasks.
func (w *Worker) Info(ctx context.Context, name string) (Info, error) {
	if err := w.wait(ctx); err != nil {
		return Info{}, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	c, err := w.connLocked(name)
	if err != nil {
		return Info{}, err
	}
	return c.infoLocked(), nil
}

func (c *conn) infoLocked() Info {
	in := Info{Name: c.name, Config: maps.Clone(c.config), Tasks: []TaskID{}, Type: c.plugin.Type()}
	for i := range c.taskConfigs {
		in.Tasks = append(in.Tasks, TaskID{c.name, i})
	}
	return in
}

// Status returns a connector's status and its tasks'.
func (w *Worker) Status(ctx context.Context, name string) (Status, error) {
	if err := w.wait(ctx); err != nil {
		return Status{}, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	c, err := w.connLocked(name)
	if err != nil {
		return Status{}, err
	}
	s := Status{Name: name, Type: c.plugin.Type(), Tasks: []State{},
		Connector: State{State: c.state, WorkerID: w.cfg.workerID, Trace: c.trace}}
	if !w.ownsLocked(name, -1) && c.target == targetStarted {
		s.Connector = w.remoteLocked("status-connector-" + name)
	}
	for _, t := range c.tasks {
		st := State{State: t.state, WorkerID: w.cfg.workerID, Trace: t.trace}
		if t.remote {
			st = w.remoteLocked(fmt.Sprintf("status-task-%s-%d", name, t.id))
		}
		st.ID = new(t.id)
		s.Tasks = append(s.Tasks, st)
	}
	return s, nil
}

// Tasks returns a connector's task configurations.
func (w *Worker) Tasks(ctx context.Context, name string) ([]TaskInfo, error) {
	if err := w.wait(ctx); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	c, err := w.connLocked(name)
	if err != nil {
		return nil, err
	}
	out := []TaskInfo{}
	for i, tc := range c.taskConfigs {
		out = append(out, TaskInfo{ID: TaskID{name, i}, Config: maps.Clone(tc)})
	}
	return out, nil
}

// Offset is one partition's committed position, as GET
// /connectors/{name}/offsets (KIP-875) reports it: for sources the source
// partition and offset; for sinks {"kafka_topic","kafka_partition"} and
// {"kafka_offset"} (the next offset to consume).
type Offset struct {
	Partition map[string]any `json:"partition"`
	Offset    map[string]any `json:"offset"`
}

// Offsets returns a connector's committed offsets, sorted by partition.
func (w *Worker) Offsets(ctx context.Context, name string) ([]Offset, error) {
	if err := w.wait(ctx); err != nil {
		return nil, err
	}
	w.mu.Lock()
	c, err := w.connLocked(name)
	if err != nil {
		w.mu.Unlock()
		return nil, err
	}
	out := []Offset{}
	if c.plugin.Source != nil {
		for _, k := range slices.Sorted(maps.Keys(w.mu.offsets)) {
			var key []json.RawMessage
			var n string
			var p map[string]any
			if json.Unmarshal([]byte(k), &key) != nil || len(key) != 2 ||
				json.Unmarshal(key[0], &n) != nil || n != name || json.Unmarshal(key[1], &p) != nil {
				continue
			}
			out = append(out, Offset{Partition: p, Offset: maps.Clone(w.mu.offsets[k])})
		}
		w.mu.Unlock()
		return out, nil
	}
	w.mu.Unlock()
	os, err := kadm.NewClient(w.st.cl).FetchOffsets(ctx, "connect-"+name)
	if err != nil {
		return nil, fmt.Errorf("connect: offsets of group connect-%s: %w", name, err)
	}
	for _, o := range os.Sorted() {
		if o.Err != nil || o.At < 0 {
			continue
		}
		out = append(out, Offset{
			Partition: map[string]any{"kafka_topic": o.Topic, "kafka_partition": int64(o.Partition)},
			Offset:    map[string]any{"kafka_offset": o.At},
		})
	}
	return out, nil
}

// Create creates a connector and starts it. It returns ErrExists if name
// is taken and an *InvalidConfigError if cfg does not validate.
func (w *Worker) Create(ctx context.Context, name string, config map[string]string) (Info, error) {
	_, in, err := w.put(ctx, name, config, false)
	return in, err
}

// PutConfig creates a connector or replaces its configuration (restarting
// its tasks). created reports which.
func (w *Worker) PutConfig(ctx context.Context, name string, config map[string]string) (created bool, _ Info, _ error) {
	return w.put(ctx, name, config, true)
}

func (w *Worker) put(ctx context.Context, name string, config map[string]string, replace bool) (bool, Info, error) {
	if err := w.wait(ctx); err != nil {
		return false, Info{}, err
	}
	if name == "" || strings.ContainsAny(name, "/") {
		return false, Info{}, fmt.Errorf("%w: connector name %q is invalid", ErrBadRequest, name)
	}
	config = maps.Clone(config)
	if n, ok := config["name"]; ok && n != name {
		return false, Info{}, fmt.Errorf("%w: Connector name configuration (%s) doesn't match connector name in the URL (%s)", ErrBadRequest, n, name)
	}
	config["name"] = name
	p, errs := w.validate(config)
	if len(errs) > 0 {
		return false, Info{}, &InvalidConfigError{Errors: errs}
	}
	unlock := w.lockOp()
	defer unlock()
	w.mu.Lock()
	old, exists := w.mu.conns[name]
	w.mu.Unlock()
	if exists && !replace {
		return false, Info{}, fmt.Errorf("%w: Connector %s already exists", ErrExists, name)
	}
	if exists && old.plugin.Type() != p.Type() {
		return false, Info{}, fmt.Errorf("%w: connector %s is a %s; cannot change it to a %s", ErrBadRequest, name, old.plugin.Type(), p.Type())
	}
	v, _ := json.Marshal(map[string]any{"properties": config})
	kvs := [][2][]byte{{[]byte("connector-" + name), v}}
	if !exists {
		kvs = append(kvs, [2][]byte{[]byte("target-state-" + name), targetJSON(targetStarted)})
	}
	if err := w.writeConfigs(ctx, kvs, func() {
		w.applyConfigOpLocked(name, config)
	}); err != nil {
		return false, Info{}, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := w.mu.conns[name]
	if !ok { // deleted meanwhile by another worker
		return false, Info{}, fmt.Errorf("%w: Connector %s not found", ErrNotFound, name)
	}
	return !exists, c.infoLocked(), nil
}

// lockOp takes opMu in standalone mode, where operations apply their own
// writes. In distributed mode the configs tailer applies every write (ours
// and other workers') under opMu, so an operation must not hold it while it
// waits for the tailer.
func (w *Worker) lockOp() (unlock func()) {
	if w.cfg.groupID != "" {
		return func() {}
	}
	w.opMu.Lock()
	return w.opMu.Unlock
}

// writeConfigs writes to connect-configs, then applies the change: at once
// with apply in standalone mode, through the configs tailer (which has
// applied it when writeConfigs returns) in distributed mode.
func (w *Worker) writeConfigs(ctx context.Context, kvs [][2][]byte, apply func()) error {
	off, err := w.st.write(ctx, w.cfg.configs, kvs...)
	if err != nil {
		return err
	}
	if w.cfg.groupID != "" {
		return w.waitConfigs(ctx, off)
	}
	apply()
	return nil
}

// applyConfigOpLocked creates a connector or replaces its configuration.
func (w *Worker) applyConfigOpLocked(name string, config map[string]string) {
	p, ok := w.plugins.lookup(config["connector.class"])
	if !ok {
		w.log.Warn("connect: ignoring connector with unknown class", "connector", name, "class", config["connector.class"])
		return
	}
	w.mu.Lock()
	old, exists := w.mu.conns[name]
	w.mu.Unlock()
	if exists {
		w.stopTasksOpLocked(old)
		w.mu.Lock()
		old.config, old.plugin = config, p
		w.mu.Unlock()
	} else {
		w.mu.Lock()
		w.mu.conns[name] = &conn{name: name, plugin: p, config: config, target: targetStarted, state: StateUnassigned}
		w.mu.Unlock()
	}
	w.applyTargetOpLocked(w.life, name)
}

func targetJSON(target string) []byte {
	v1 := target
	if target == targetStopped {
		v1 = targetPaused // what Kafka writes for readers that predate STOPPED
	}
	b, _ := json.Marshal(map[string]string{"state": v1, "state.v2": target})
	return b
}

// Delete stops a connector's tasks and removes it. Its source offsets stay
// in connect-offsets and its sink group offsets stay in Kafka, as in Kafka
// Connect.
func (w *Worker) Delete(ctx context.Context, name string) error {
	if err := w.wait(ctx); err != nil {
		return err
	}
	unlock := w.lockOp()
	defer unlock()
	w.mu.Lock()
	_, err := w.connLocked(name)
	w.mu.Unlock()
	if err != nil {
		return err
	}
	return w.writeConfigs(ctx, [][2][]byte{{[]byte("connector-" + name), nil}, {[]byte("target-state-" + name), nil}},
		func() { w.applyDeleteOpLocked(name) })
}

func (w *Worker) applyDeleteOpLocked(name string) {
	w.mu.Lock()
	c, ok := w.mu.conns[name]
	w.mu.Unlock()
	if !ok {
		return
	}
	w.stopTasksOpLocked(c)
	w.mu.Lock()
	delete(w.mu.conns, name)
	var keys []string
	if w.ownsLocked(name, -1) {
		keys = append(keys, "status-connector-"+name)
	}
	for _, t := range c.tasks {
		if !t.remote {
			keys = append(keys, fmt.Sprintf("status-task-%s-%d", name, t.id))
		}
	}
	w.mu.Unlock()
	for _, k := range keys {
		w.st.cl.Produce(context.Background(), &kgo.Record{Topic: w.cfg.statusTopicNm, Key: []byte(k)}, w.logProduceErr)
	}
}

// Pause stops a connector's tasks and marks it and them PAUSED until
// Resume. The target state is stored, so it survives a worker restart.
func (w *Worker) Pause(ctx context.Context, name string) error {
	return w.setTarget(ctx, name, targetPaused)
}

// Resume starts a paused or stopped connector again; its tasks resume from
// the committed offsets.
func (w *Worker) Resume(ctx context.Context, name string) error {
	return w.setTarget(ctx, name, targetStarted)
}

// Stop stops a connector and its tasks, keeping its configuration; it has
// no tasks until Resume (Kafka Connect's STOPPED state, KIP-875).
func (w *Worker) Stop(ctx context.Context, name string) error {
	return w.setTarget(ctx, name, targetStopped)
}

func (w *Worker) setTarget(ctx context.Context, name, target string) error {
	if err := w.wait(ctx); err != nil {
		return err
	}
	unlock := w.lockOp()
	defer unlock()
	w.mu.Lock()
	c, err := w.connLocked(name)
	same := err == nil && c.target == target
	w.mu.Unlock()
	if err != nil || same {
		return err
	}
	return w.writeConfigs(ctx, [][2][]byte{{[]byte("target-state-" + name), targetJSON(target)}},
		func() { w.applyTargetStateOpLocked(name, target) })
}

func (w *Worker) applyTargetStateOpLocked(name, target string) {
	w.mu.Lock()
	c, ok := w.mu.conns[name]
	same := ok && c.target == target
	w.mu.Unlock()
	if !ok || same {
		return
	}
	w.stopTasksOpLocked(c)
	w.mu.Lock()
	c.target = target
	w.mu.Unlock()
	w.applyTargetOpLocked(w.life, name)
}

// Restart restarts a connector: it recomputes the task configurations and,
// with includeTasks, restarts its tasks too (only the FAILED ones with
// onlyFailed). Without includeTasks, tasks restart only if their
// configurations changed. With onlyFailed, a connector that is not FAILED
// is left alone. In distributed mode the request is written to
// connect-configs (Kafka Connect's restart-connector-<name> record) and
// each worker restarts what it runs.
func (w *Worker) Restart(ctx context.Context, name string, includeTasks, onlyFailed bool) error {
	if err := w.wait(ctx); err != nil {
		return err
	}
	unlock := w.lockOp()
	defer unlock()
	w.mu.Lock()
	_, err := w.connLocked(name)
	w.mu.Unlock()
	if err != nil {
		return err
	}
	if w.cfg.groupID == "" {
		w.applyRestartOpLocked(name, includeTasks, onlyFailed)
		return nil
	}
	v, _ := json.Marshal(map[string]bool{"include-tasks": includeTasks, "only-failed": onlyFailed})
	return w.writeConfigs(ctx, [][2][]byte{{[]byte("restart-connector-" + name), v}}, nil)
}

func (w *Worker) applyRestartOpLocked(name string, includeTasks, onlyFailed bool) {
	w.mu.Lock()
	c, ok := w.mu.conns[name]
	if !ok || c.target != targetStarted {
		w.mu.Unlock()
		return // nothing runs; Kafka Connect does the same
	}
	restartConn := !onlyFailed || c.state == StateFailed
	var restart []*task
	if includeTasks {
		for _, t := range c.tasks {
			if !t.remote && (!onlyFailed || t.state == StateFailed) {
				restart = append(restart, t)
			}
		}
	}
	oldConfigs, hadTasks := c.taskConfigs, c.tasks != nil
	w.mu.Unlock()
	if restartConn {
		tcs, err := w.taskConfigs(c)
		w.mu.Lock()
		if err != nil {
			c.state, c.trace = StateFailed, err.Error()
			w.mu.Unlock()
			w.writeStatus(name, -1, StateFailed, err.Error())
			w.stopTasksOpLocked(c)
			return
		}
		c.state, c.trace = StateRunning, ""
		w.mu.Unlock()
		w.writeStatus(name, -1, StateRunning, "")
		if !slices.EqualFunc(tcs, oldConfigs, maps.Equal) || !hadTasks {
			w.stopTasksOpLocked(c)
			w.startTasksOpLocked(c, tcs)
			return
		}
	}
	for _, t := range restart {
		w.restartTaskOpLocked(c, t.id)
	}
}

// RestartTask restarts one task of a connector. In distributed mode the
// request is written to connect-configs as restart-task-<name>-<id> (a
// Sluice extension) and the worker running the task restarts it.
func (w *Worker) RestartTask(ctx context.Context, name string, id int) error {
	if err := w.wait(ctx); err != nil {
		return err
	}
	unlock := w.lockOp()
	defer unlock()
	w.mu.Lock()
	c, err := w.connLocked(name)
	if err == nil && (id < 0 || id >= len(c.tasks)) {
		err = fmt.Errorf("%w: Task %s-%d not found", ErrNotFound, name, id)
	}
	w.mu.Unlock()
	if err != nil {
		return err
	}
	if w.cfg.groupID == "" {
		w.restartTaskOpLocked(c, id)
		return nil
	}
	return w.writeConfigs(ctx, [][2][]byte{{fmt.Appendf(nil, "restart-task-%s-%d", name, id), []byte("{}")}}, nil)
}

// taskConfigs asks the connector for its task configurations.
func (w *Worker) taskConfigs(c *conn) ([]map[string]string, error) {
	w.mu.Lock()
	config, p := maps.Clone(c.config), c.plugin
	w.mu.Unlock()
	max, _ := strconv.Atoi(cmp(config["tasks.max"], "1"))
	var tcs []map[string]string
	var err error
	if p.Source != nil {
		tcs, err = p.Source().TaskConfigs(config, max)
	} else {
		tcs, err = p.Sink().TaskConfigs(config, max)
	}
	if err == nil && (len(tcs) == 0 || len(tcs) > max) {
		err = fmt.Errorf("connect: connector %s returned %d task configurations for tasks.max=%d", c.name, len(tcs), max)
	}
	return tcs, err
}

// applyTargetOpLocked brings a connector to its target state: tasks running
// when STARTED, none otherwise. The connector's tasks must be stopped.
func (w *Worker) applyTargetOpLocked(_ context.Context, name string) {
	w.mu.Lock()
	c := w.mu.conns[name]
	target := c.target
	w.mu.Unlock()
	switch target {
	case targetPaused, targetStopped:
		state := StatePaused
		if target == targetStopped {
			state = StateStopped
		}
		var tcs []map[string]string
		if target == targetPaused {
			w.mu.Lock()
			known := c.taskConfigs != nil
			w.mu.Unlock()
			if !known {
				// A connector paused before this worker started: list its
				// tasks as paused, as Kafka Connect does.
				tcs, _ = w.taskConfigs(c)
			}
		}
		w.mu.Lock()
		c.state, c.trace = state, ""
		if target == targetStopped {
			c.tasks, c.taskConfigs = nil, nil
		}
		if tcs != nil {
			c.taskConfigs = tcs
			c.tasks = make([]*task, len(tcs))
			for i := range tcs {
				c.tasks[i] = &task{id: i}
			}
		}
		ts := slices.Clone(c.tasks)
		for _, t := range ts {
			t.state, t.trace = StatePaused, ""
		}
		w.mu.Unlock()
		w.writeStatus(name, -1, state, "")
		for _, t := range ts {
			w.writeStatus(name, t.id, StatePaused, "")
		}
		return
	}
	tcs, err := w.taskConfigs(c)
	if err != nil {
		w.mu.Lock()
		c.state, c.trace = StateFailed, err.Error()
		w.mu.Unlock()
		w.writeStatus(name, -1, StateFailed, err.Error())
		return
	}
	w.mu.Lock()
	c.state, c.trace = StateRunning, ""
	w.mu.Unlock()
	w.writeStatus(name, -1, StateRunning, "")
	w.startTasksOpLocked(c, tcs)
}

// stopTasksOpLocked cancels the connector's tasks and waits for them.
func (w *Worker) stopTasksOpLocked(c *conn) {
	w.mu.Lock()
	ts := slices.Clone(c.tasks)
	w.mu.Unlock()
	for _, t := range ts {
		if t.cancel != nil {
			t.cancel()
			<-t.done
		}
	}
}

func (w *Worker) startTasksOpLocked(c *conn, tcs []map[string]string) {
	w.mu.Lock()
	c.taskConfigs = tcs
	c.tasks = make([]*task, len(tcs))
	var mine []int
	for i := range tcs {
		c.tasks[i] = &task{id: i, state: StateUnassigned, remote: !w.ownsLocked(c.name, i)}
		if !c.tasks[i].remote {
			mine = append(mine, i)
		}
	}
	w.mu.Unlock()
	for _, i := range mine {
		w.restartTaskOpLocked(c, i)
	}
}

// restartTaskOpLocked stops task id if it runs and starts it again.
func (w *Worker) restartTaskOpLocked(c *conn, id int) {
	w.mu.Lock()
	if id >= len(c.tasks) || c.tasks[id].remote {
		w.mu.Unlock()
		return
	}
	old := c.tasks[id]
	w.mu.Unlock()
	if old.cancel != nil {
		old.cancel()
		<-old.done
	}
	if w.life.Err() != nil {
		return // the worker is stopping
	}
	if w.cfg.groupID != "" && c.plugin.Source != nil {
		// The task may have run on another worker: read the offsets it
		// stored before starting from them.
		if err := w.catchUpOffsets(w.life); err != nil {
			w.log.Warn("connect: reading offsets before starting a task", "connector", c.name, "task", id, "err", err)
		}
	}
	ctx, cancel := context.WithCancel(w.life)
	t := &task{id: id, state: StateRunning, cancel: cancel, done: make(chan struct{})}
	w.mu.Lock()
	c.tasks[id] = t
	config, tc := maps.Clone(c.config), maps.Clone(c.taskConfigs[id])
	p := c.plugin
	w.mu.Unlock()
	w.writeStatus(c.name, id, StateRunning, "")
	w.wg.Go(func() {
		defer close(t.done)
		var err error
		if p.Source != nil {
			err = w.runSource(ctx, c.name, id, p.Source().NewTask(), config, tc)
		} else {
			err = w.runSink(ctx, c.name, id, p.Sink().NewTask(), config, tc)
		}
		if err != nil && ctx.Err() == nil {
			w.log.Error("connect: task failed", "connector", c.name, "task", id, "err", err)
			w.mu.Lock()
			t.state, t.trace = StateFailed, err.Error()
			w.mu.Unlock()
			w.writeStatus(c.name, id, StateFailed, err.Error())
		}
	})
}

// writeStatus records a state in connect-status without waiting; id -1 is
// the connector itself.
func (w *Worker) writeStatus(name string, id int, state, trace string) {
	w.mu.Lock()
	mine := w.ownsLocked(name, id)
	w.mu.Unlock()
	if !mine {
		return
	}
	key := "status-connector-" + name
	if id >= 0 {
		key = fmt.Sprintf("status-task-%s-%d", name, id)
	}
	var tr any
	if trace != "" {
		tr = trace
	}
	v, _ := json.Marshal(map[string]any{"state": state, "trace": tr, "worker_id": w.cfg.workerID, "generation": 0})
	w.st.cl.Produce(context.Background(), &kgo.Record{Topic: w.cfg.statusTopicNm, Key: []byte(key), Value: v}, w.logProduceErr)
}

func (w *Worker) logProduceErr(r *kgo.Record, err error) {
	if err != nil && !errors.Is(err, kgo.ErrClientClosed) {
		w.log.Warn("connect: write status", "topic", r.Topic, "err", err)
	}
}

// workerKeys are the configuration names the worker itself reads.
var workerKeys = []ConfigKey{
	{Name: "name", Type: "STRING", Required: true, Importance: "HIGH", Doc: "Globally unique name of the connector."},
	{Name: "connector.class", Type: "STRING", Required: true, Importance: "HIGH", Doc: "Class name or alias of the connector."},
	{Name: "tasks.max", Type: "INT", Default: "1", Importance: "HIGH", Doc: "Maximum number of tasks."},
	{Name: "key.converter", Type: "CLASS", Importance: "LOW", Doc: "Key converter: JsonConverter (default), StringConverter, ByteArrayConverter or AvroConverter."},
	{Name: "value.converter", Type: "CLASS", Importance: "LOW", Doc: "Value converter: JsonConverter (default), StringConverter, ByteArrayConverter or AvroConverter."},
	{Name: "transforms", Type: "LIST", Importance: "LOW", Doc: "Aliases of the transformations to apply, in order."},
	{Name: "predicates", Type: "LIST", Importance: "LOW", Doc: "Aliases of the predicates used by transformations."},
	{Name: "errors.tolerance", Type: "STRING", Default: "none", Importance: "MEDIUM", Doc: "none: a conversion or transformation error, or a record a sink rejects, fails the task; all: the record is skipped."},
	{Name: "topics", Type: "LIST", Importance: "HIGH", Doc: "Sinks: topics to consume."},
	{Name: "topics.regex", Type: "STRING", Importance: "HIGH", Doc: "Sinks: regular expression of topics to consume."},
	{Name: "errors.deadletterqueue.topic.name", Type: "STRING", Importance: "MEDIUM", Doc: "Sinks: topic receiving records that failed conversion or transformation, or that the sink rejected (with errors.tolerance=all)."},
	{Name: "errors.deadletterqueue.context.headers.enable", Type: "BOOLEAN", Default: "false", Importance: "MEDIUM", Doc: "Sinks: add __connect.errors.* headers to dead letters."},
}

// validate checks a whole connector configuration: the worker's names,
// then the connector's own Validate.
func (w *Worker) validate(config map[string]string) (Plugin, []ConfigError) {
	var errs []ConfigError
	class := config["connector.class"]
	p, ok := w.plugins.lookup(class)
	if !ok {
		return Plugin{}, []ConfigError{{"connector.class", fmt.Sprintf("Failed to find any class that implements Connector and which name matches %s", class)}}
	}
	if s, ok := config["tasks.max"]; ok {
		if n, err := strconv.Atoi(s); err != nil || n < 1 {
			errs = append(errs, ConfigError{"tasks.max", "Invalid value " + s + ": want an integer >= 1"})
		}
	}
	for _, pre := range []string{"key.converter", "value.converter"} {
		if _, err := converter(config, pre); err != nil {
			var ce ConfigError
			errors.As(err, &ce)
			errs = append(errs, ce)
		}
	}
	if _, err := newChain(config); err != nil {
		var ce ConfigError
		if errors.As(err, &ce) {
			errs = append(errs, ce)
		} else {
			errs = append(errs, ConfigError{"transforms", err.Error()})
		}
	}
	switch config["errors.tolerance"] {
	case "", "none", "all":
	default:
		errs = append(errs, ConfigError{"errors.tolerance", "Invalid value " + config["errors.tolerance"] + ": want none or all"})
	}
	if p.Sink != nil {
		_, hasTopics := config["topics"]
		_, hasRegex := config["topics.regex"]
		if hasTopics == hasRegex || (hasTopics && strings.TrimSpace(config["topics"]) == "") {
			errs = append(errs, ConfigError{"topics", "Must configure one of topics or topics.regex"})
		}
		if dlq := config["errors.deadletterqueue.topic.name"]; dlq != "" && slices.Contains(splitList(config["topics"]), dlq) {
			errs = append(errs, ConfigError{"errors.deadletterqueue.topic.name", "The dead letter queue topic cannot be one of the topics consumed"})
		}
		errs = append(errs, p.Sink().Validate(config)...)
	} else {
		errs = append(errs, p.Source().Validate(config)...)
	}
	return p, errs
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
