package stream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// App runs a topology against Kafka: one consumer group (the app id), a
// task per (sub-topology, partition), spread over the app's threads and over
// every instance of the app with the same id. Records pass through a task
// by direct calls. Guarantee: at-least-once by default (state and outputs
// are written before the input offsets are committed), or exactly-once
// with Guarantee(ExactlyOnce) (see the package documentation).
type App struct {
	topo *Topology
	cfg  appConfig
	log  *slog.Logger

	mu struct {
		sync.Mutex
		running bool
		threads []*thread
	}
	stores    map[string]map[int32]*taskStore // guarded by mu: local stores, for queries
	globals   globalStores
	metrics   metrics
	closeOnce sync.Once
	cancel    context.CancelFunc
	done      chan struct{}
}

// NewApp validates the options and prepares an app; Run starts it.
func NewApp(topo *Topology, opts ...AppOpt) (*App, error) {
	cfg := appConfig{threads: 1, replication: 1, cacheBytes: 10 << 20}
	for _, o := range opts {
		o.applyApp(&cfg)
	}
	if !cfg.intervalSet {
		cfg.commitInterval = 30 * time.Second
		if cfg.guarantee == ExactlyOnce {
			cfg.commitInterval = 100 * time.Millisecond
		}
	}
	if !cfg.taskIdleSet {
		cfg.maxTaskIdle = 500 * time.Millisecond
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.threads == 0 {
		cfg.threads = 1
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.stateDir == "" {
		cfg.stateDir = filepath.Join(os.TempDir(), "sluice-streams", cfg.appID)
	}
	a := &App{topo: topo, cfg: cfg, log: cfg.logger.With("app", cfg.appID), done: make(chan struct{})}
	if cfg.onProcessing == nil {
		a.cfg.onProcessing = func(e *ProcessingError) error {
			a.log.Error("processing failed; stopping (set stream.OnProcessingError to skip instead)", "err", e)
			return e
		}
	}
	if cfg.onDeser == nil {
		a.cfg.onDeser = func(e *DeserializationError) error {
			a.log.Error("a record does not deserialize; stopping (set stream.OnDeserializationError or DeadLetterTopic to skip)", "err", e)
			return e
		}
	}
	return a, nil
}

func (a *App) newClient(opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append(a.clientOpts(), opts...)...)
}

func (a *App) clientOpts() []kgo.Opt {
	return append([]kgo.Opt{kgo.SeedBrokers(a.cfg.brokers...)}, a.cfg.clientOpts...)
}

func (a *App) changelogTopic(store string) string { return a.cfg.appID + "-" + store + "-changelog" }

// setup checks the source topics and creates the internal ones.
func (a *App) setup(ctx context.Context) (partitionPlan, error) {
	cl, err := a.newClient()
	if err != nil {
		return partitionPlan{}, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	sources := a.topo.SourceTopics()
	for _, g := range a.topo.globals {
		sources = append(sources, g.topic)
	}
	td, err := adm.ListTopics(ctx, sources...)
	if err != nil {
		return partitionPlan{}, fmt.Errorf("stream: list source topics: %w", err)
	}
	var missing []string
	for _, t := range sources {
		if d, ok := td[t]; !ok || d.Err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return partitionPlan{}, fmt.Errorf("stream: source topics %v do not exist: create them first", missing)
	}
	plan := a.topo.partitionCounts(a.cfg.appID, func(topic string) int32 { return int32(len(td[topic].Partitions)) })
	if err := a.topo.checkCopartitioning(a.cfg.appID, plan); err != nil {
		return partitionPlan{}, err
	}
	want := map[string]struct {
		n       int32
		configs map[string]*string
	}{}
	for name, n := range a.topo.repartitionTopics(a.cfg.appID, plan) {
		want[name] = struct {
			n       int32
			configs map[string]*string
		}{n, map[string]*string{"cleanup.policy": kadm.StringPtr("delete")}}
	}
	for _, sd := range a.topo.stores {
		if !sd.changelog || sd.owner == nil {
			continue
		}
		configs := map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}
		if sd.layout() != 0 {
			// Expiry drops segments without tombstones: like Kafka Streams,
			// let the log drop expired records too, a day after the store
			// (windowstore.changelog.additional.retention.ms).
			configs["cleanup.policy"] = kadm.StringPtr("compact,delete")
			configs["retention.ms"] = kadm.StringPtr(strconv.FormatInt(sd.retentionMs+24*60*60*1000, 10))
		}
		want[a.changelogTopic(sd.name)] = struct {
			n       int32
			configs map[string]*string
		}{plan.sub[sd.owner.sub], configs}
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	slices.Sort(names)
	existing, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return partitionPlan{}, fmt.Errorf("stream: list internal topics: %w", err)
	}
	for _, name := range names {
		w := want[name]
		if d, ok := existing[name]; ok && d.Err == nil {
			if int32(len(d.Partitions)) != w.n {
				return partitionPlan{}, fmt.Errorf("stream: internal topic %s has %d partitions, the topology needs %d (delete it, or the app's internal topics, to reset)", name, len(d.Partitions), w.n)
			}
			continue
		}
		resp, err := adm.CreateTopic(ctx, w.n, a.cfg.replication, w.configs, name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return partitionPlan{}, fmt.Errorf("stream: create internal topic %s: %w", name, err)
		}
		a.log.Info("created internal topic", "topic", name, "partitions", w.n)
	}
	for name, w := range want {
		plan.topic[name] = w.n
	}
	return plan, nil
}

// Run sets up the internal topics and runs the app until ctx is done or
// Close is called (then it commits and returns nil), or until a fatal error.
func (a *App) Run(ctx context.Context) error {
	a.mu.Lock()
	if a.mu.running {
		a.mu.Unlock()
		return errors.New("stream: App.Run called twice")
	}
	a.mu.running = true
	ctx, a.cancel = context.WithCancel(ctx)
	a.mu.Unlock()
	defer close(a.done)

	plan, err := a.setup(ctx)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(a.cfg.stateDir, 0o755); err != nil {
		return fmt.Errorf("stream: state dir: %w", err)
	}
	if a.cfg.guarantee == ExactlyOnce && a.cfg.instanceID == "" {
		if a.cfg.instanceID, err = loadInstanceID(a.cfg.stateDir); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	if err := a.runGlobals(ctx, &wg); err != nil {
		a.cancel()
		return err
	}
	errc := make(chan error, a.cfg.threads)
	for i := range a.cfg.threads {
		th, err := newThread(a, i, plan)
		if err != nil {
			a.cancel()
			wg.Wait()
			return err
		}
		a.mu.Lock()
		a.mu.threads = append(a.mu.threads, th)
		a.mu.Unlock()
		wg.Go(func() { errc <- th.run(ctx) })
	}
	var first error
	for range a.cfg.threads {
		if err := <-errc; err != nil && first == nil {
			first = err
			a.cancel() // one thread failing stops the app
		}
	}
	wg.Wait()
	return first
}

// Close stops the app (committing what was processed) and waits for Run to
// return. It is idempotent.
func (a *App) Close() error {
	a.closeOnce.Do(func() {
		a.mu.Lock()
		running := a.mu.running
		cancel := a.cancel
		a.mu.Unlock()
		if running && cancel != nil {
			cancel()
			<-a.done
		}
	})
	return nil
}

// loadInstanceID reads the instance id kept in the state directory,
// creating it (random) at the first start.
func loadInstanceID(dir string) (string, error) {
	path := filepath.Join(dir, "sluice-instance-id")
	b, err := os.ReadFile(path)
	if err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("stream: read instance id: %w", err)
	}
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(r[:])
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("stream: write instance id: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("stream: write instance id: %w", err)
	}
	return id, nil
}

// transactionalID of a thread under ExactlyOnce.
func (a *App) transactionalID(thread int) string {
	return a.cfg.appID + "-" + a.cfg.instanceID + "-" + strconv.Itoa(thread)
}

// tp is a topic partition.
type tp struct {
	topic     string
	partition int32
}

func (t tp) String() string { return t.topic + "-" + strconv.Itoa(int(t.partition)) }

// Metrics returns a snapshot of the app's counters.
func (a *App) Metrics() Metrics { return a.metrics.snapshot() }
