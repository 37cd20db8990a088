package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/table"
)

// thread is one stream thread: a consumer-group member (with its own
// franz-go client, consuming and producing) running the tasks assigned to
// it. Rebalance callbacks and the processing loop exclude each other with
// mu; franz-go holds rebalances while the loop processes a poll
// (BlockRebalanceOnPoll).
type thread struct {
	a    *App
	id   int
	plan partitionPlan
	cl   *kgo.Client
	log  *slog.Logger

	// Under ExactlyOnce: the client is the session's, and each commit
	// interval is one transaction.
	eos      bool
	sess     *kgo.GroupTransactSession
	inTxn    bool        // a transaction is begun (client side)
	produced atomic.Bool // records were produced in the transaction
	stopping bool        // shutting down: an abort closes tasks without restoring them

	subOf      map[string]int // physical source topic -> sub-topology
	changelogs map[string]bool

	mu struct {
		sync.Mutex
		tasks   map[taskID]*task
		byTP    map[tp]*task
		offsets map[string]map[int32]kgo.EpochOffset // next offset to commit
		dirty   bool
		reset   bool          // EOS: a rebalance revoked or lost partitions; abort and restore
		pending map[tp]taskID // EOS: assigned partitions whose tasks the next reset creates
	}
	cache *table.Cache // the record cache shared by the thread's stores

	lastCheckpoint  time.Time
	forceCheckpoint bool
	prodErr         atomic.Pointer[error]
	lastCommit      time.Time
	idleUntil       time.Time // when a task stops waiting for a lagging partition (zero: none waits)
	fatal           error     // set by callbacks, returned by run
}

func newThread(a *App, id int, plan partitionPlan) (*thread, error) {
	th := &thread{a: a, id: id, plan: plan, log: a.log.With("thread", id), subOf: map[string]int{}, changelogs: map[string]bool{},
		cache: table.NewCache(a.cfg.cacheBytes / int64(a.cfg.threads))}
	th.mu.tasks = map[taskID]*task{}
	th.mu.byTP = map[tp]*task{}
	th.mu.offsets = map[string]map[int32]kgo.EpochOffset{}
	th.mu.pending = map[tp]taskID{}
	var topics []string
	for _, st := range a.topo.subs {
		for _, src := range st.sources {
			for _, tpc := range src.topics {
				phys := tpc
				if src.partOf != "" {
					phys = a.cfg.appID + "-" + tpc
				}
				th.subOf[phys] = st.id
				topics = append(topics, phys)
			}
		}
	}
	for name := range a.topo.stores {
		th.changelogs[a.changelogTopic(name)] = true
	}
	var rr atomic.Uint32
	partitioner := kgo.BasicConsistentPartitioner(func(topic string) func(*kgo.Record, int) int {
		if th.changelogs[topic] {
			return func(r *kgo.Record, _ int) int { return int(r.Partition) }
		}
		return func(r *kgo.Record, n int) int {
			if r.Partition >= 0 {
				// Chosen by the operator: a foreign-key join answers the
				// task that subscribed, whatever its key hashes to.
				return int(r.Partition)
			}
			if r.Key == nil {
				return int(rr.Add(1) % uint32(n))
			}
			return int(partitionFor(r.Key, int32(n)))
		}
	})
	opts := []kgo.Opt{
		kgo.ConsumerGroup(a.cfg.appID),
		kgo.ConsumeTopics(topics...),
		kgo.Balancers(&taskBalancer{topo: a.topo, subOf: th.subOf}),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(th.assigned),
		kgo.OnPartitionsRevoked(th.revoked),
		kgo.OnPartitionsLost(th.lost),
		kgo.RecordPartitioner(partitioner),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), // Kafka Streams' auto.offset.reset=earliest
		// Control records move a partition's position past transaction
		// markers, so a task does not wait for records that are not
		// there (see partitionGroup); they are not processed.
		kgo.KeepControlRecords(),
		kgo.ClientID(fmt.Sprintf("%s-thread-%d", a.cfg.appID, id)),
	}
	if a.cfg.guarantee != ExactlyOnce {
		cl, err := a.newClient(opts...)
		if err != nil {
			return nil, fmt.Errorf("stream: client: %w", err)
		}
		th.cl = cl
		return th, nil
	}
	// Exactly-once v2: one transactional producer per thread, reading
	// read_committed; the session commits the polled offsets with
	// TxnOffsetCommit (group generation checked, KIP-447) and aborts a
	// transaction that a rebalance cut through.
	th.eos = true
	opts = append(opts,
		kgo.TransactionalID(a.transactionalID(id)),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
	)
	sess, err := kgo.NewGroupTransactSession(append(a.clientOpts(), opts...)...)
	if err != nil {
		return nil, fmt.Errorf("stream: transactional client: %w", err)
	}
	th.sess = sess
	th.cl = sess.Client()
	return th, nil
}

func (th *thread) run(ctx context.Context) (err error) {
	pprof.Do(ctx, pprof.Labels("stream-thread", strconv.Itoa(th.id)), func(ctx context.Context) { err = th.loop(ctx) })
	return err
}

func (th *thread) loop(ctx context.Context) error {
	defer th.cl.Close()
	if th.eos {
		// Initialize the producer id now: it fences a previous
		// incarnation with the same transactional id and aborts its open
		// transaction, which restores wait for.
		if _, _, err := th.cl.ProducerID(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return th.txnError("initialize the transactional producer", err)
		}
	}
	th.lastCommit = time.Now()
	interval := th.a.cfg.commitInterval
	for {
		if ctx.Err() != nil {
			// A poll with a done context returns at once and holds
			// rebalances off until AllowRebalance, so no rebalance
			// callback runs during the last commit (under
			// ExactlyOnce the session's callbacks and End would
			// deadlock on the thread's lock).
			th.cl.PollRecords(ctx, 1)
			err := th.shutdown()
			th.cl.AllowRebalance()
			return err
		}
		wait := max(interval-time.Since(th.lastCommit), time.Millisecond)
		if !th.idleUntil.IsZero() {
			// A task waits for a lagging partition: come back when it
			// stops waiting.
			wait = min(wait, max(time.Until(th.idleUntil), time.Millisecond))
		}
		pctx, cancel := context.WithTimeout(ctx, min(wait, time.Second))
		fs := th.cl.PollRecords(pctx, 10000)
		cancel()
		if fs.IsClientClosed() {
			return nil
		}
		err := th.handle(ctx, fs)
		th.cl.AllowRebalance()
		if err != nil {
			th.closeTasks()
			return err
		}
	}
}

func (th *thread) handle(ctx context.Context, fs kgo.Fetches) error {
	fs.EachError(func(topic string, p int32, err error) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return
		}
		th.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
	})
	th.mu.Lock()
	defer th.mu.Unlock()
	if th.fatal != nil {
		return th.fatal
	}
	if th.eos {
		if th.mu.reset {
			// A rebalance revoked or lost partitions during the
			// transaction: it cannot commit. The fetched records are
			// dropped (the abort rewinds to the committed offsets).
			return th.abortLocked(ctx)
		}
		if err := th.beginLocked(); err != nil {
			return err
		}
	}
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		k := tp{p.Topic, p.Partition}
		t := th.mu.byTP[k]
		if t == nil {
			return // revoked meanwhile
		}
		start, end := int64(-1), int64(-1)
		if p.Err == nil {
			start, end = p.LogStartOffset, p.HighWatermark
			if th.eos {
				end = p.LastStableOffset
			}
		}
		t.pg.add(k, p.Records, start, end)
	})
	if err := th.processLocked(false); err != nil {
		return err
	}
	now := time.Now().UnixMilli()
	for _, t := range th.mu.tasks {
		if err := t.punctuateWall(now); err != nil {
			return err
		}
	}
	if time.Since(th.lastCommit) >= th.a.cfg.commitInterval {
		if th.eos && !th.idleUntil.IsZero() && time.Now().Before(th.idleUntil) {
			// A transaction commits every polled record's offset, so it
			// would process the records a task keeps for timestamp order
			// out of order: commit once the task stops waiting.
			return nil
		}
		return th.commitLocked(ctx)
	}
	return nil
}

// processLocked processes the records buffered by the thread's tasks, each
// task in timestamp order across its partitions. Unless enforce is set, a
// task waiting for a lagging partition keeps its records (see
// partitionGroup); th.idleUntil is when the first such wait ends.
func (th *thread) processLocked(enforce bool) error {
	now := time.Now()
	th.idleUntil = time.Time{}
	var in inRecord
	for _, t := range th.mu.tasks {
		for {
			r := t.pg.pop(now, enforce)
			if r == nil {
				break
			}
			if t.pg.isControl(r) {
				th.advanceLocked(r)
				continue
			}
			in = inRecord{topic: r.Topic, partition: r.Partition, offset: r.Offset, key: r.Key, value: r.Value, ts: r.Timestamp.UnixMilli()}
			if len(r.Headers) > 0 {
				in.headers = make([]Header, len(r.Headers))
				for i, h := range r.Headers {
					in.headers[i] = Header{Key: h.Key, Value: h.Value}
				}
			}
			if err := t.process(&in); err != nil {
				return err
			}
			th.advanceLocked(r)
		}
		if u := t.pg.waitingUntil(); !u.IsZero() && (th.idleUntil.IsZero() || u.Before(th.idleUntil)) {
			th.idleUntil = u
		}
	}
	return nil
}

// advanceLocked records that everything up to r is processed: the next
// commit commits the offset after it.
func (th *thread) advanceLocked(r *kgo.Record) {
	po := th.mu.offsets[r.Topic]
	if po == nil {
		po = map[int32]kgo.EpochOffset{}
		th.mu.offsets[r.Topic] = po
	}
	po[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
	th.mu.dirty = true
}

// commitLocked commits the thread's tasks: caches flush downstream, every
// produced record (outputs, changelogs) is acknowledged, then the input
// offsets are committed. Under at-least-once a crash before the last step
// replays the records since the previous commit. Under exactly-once the
// offsets and the end of the transaction commit it all atomically.
func (th *thread) commitLocked(ctx context.Context) error {
	th.lastCommit = time.Now()
	// A commit runs to its end even when the app is being stopped: a
	// half-done commit only means more to reprocess.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if th.eos {
		return th.commitTxnLocked(ctx)
	}
	// Records fetched but not processed yet (a task waiting for a lagging
	// partition) stay buffered: th.mu.offsets covers processed records
	// only.
	for _, t := range th.mu.tasks {
		if err := t.flush(); err != nil {
			return err
		}
	}
	if err := th.cl.Flush(ctx); err != nil {
		return fmt.Errorf("stream: flush produced records: %w", err)
	}
	if e := th.prodErr.Swap(nil); e != nil {
		return fmt.Errorf("stream: producing failed: %w", *e)
	}
	if !th.mu.dirty {
		return nil
	}
	var cerr error
	done := make(chan struct{})
	th.cl.CommitOffsetsSync(ctx, th.mu.offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		defer close(done)
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil && cerr == nil {
					cerr = fmt.Errorf("%s-%d: %w", t.Topic, p.Partition, e)
				}
			}
		}
	})
	<-done
	if cerr != nil {
		return fmt.Errorf("stream: commit offsets: %w", cerr)
	}
	th.mu.dirty = false
	// Checkpointing flushes pebble's memtables to disk: do it at most every
	// checkpointEvery (and when tasks are stopped or revoked), not at every
	// commit. A restart then restores a longer, but still bounded, tail.
	if th.stopping || th.forceCheckpoint || time.Since(th.lastCheckpoint) >= checkpointEvery {
		th.checkpointLocked()
		th.lastCheckpoint = time.Now()
	}
	return nil
}

// checkpointEvery bounds how often persistent stores are flushed and
// checkpointed under at-least-once.
const checkpointEvery = 30 * time.Second

// shutdown commits and closes everything on a clean stop.
func (th *thread) shutdown() error {
	th.mu.Lock()
	defer th.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	th.stopping = true
	err := th.commitLocked(ctx)
	if th.eos && err == nil {
		// The stores hold exactly the committed state: checkpoint them
		// so the next start restores only the tail.
		th.checkpointLocked()
	}
	th.closeTasksLocked()
	return err
}

// beginLocked begins the thread's transaction if none is open.
func (th *thread) beginLocked() error {
	if th.inTxn {
		return nil
	}
	if err := th.sess.Begin(); err != nil {
		return th.txnError("begin transaction", err)
	}
	th.inTxn = true
	return nil
}

// commitTxnLocked ends the thread's transaction with a commit: caches
// flush (into the transaction), every produced record is acknowledged, the
// session commits the input offsets in the transaction (TxnOffsetCommit)
// and ends it. If the group rebalanced meanwhile, the session aborts
// instead, and the tasks are restored to the last committed state.
func (th *thread) commitTxnLocked(ctx context.Context) error {
	if th.mu.reset {
		return th.abortLocked(ctx)
	}
	if err := th.beginLocked(); err != nil {
		return err
	}
	// The session commits the offsets of every polled record: process
	// them all first (handle defers the commit while a task waits for a
	// lagging partition, up to MaxTaskIdle).
	if err := th.processLocked(true); err != nil {
		th.abortQuietly(ctx)
		return err
	}
	for _, t := range th.mu.tasks {
		if err := t.flush(); err != nil {
			th.abortQuietly(ctx)
			return err
		}
	}
	if err := th.cl.Flush(ctx); err != nil {
		th.abortQuietly(ctx)
		return fmt.Errorf("stream: flush produced records: %w", err)
	}
	if e := th.prodErr.Swap(nil); e != nil {
		th.abortQuietly(ctx)
		return th.txnError("produce in transaction (aborted)", *e)
	}
	if !th.mu.dirty && !th.produced.Load() {
		return nil // nothing in the transaction: keep it open
	}
	t0 := time.Now()
	committed, err := th.sess.End(ctx, kgo.TryCommit)
	th.log.Debug("end transaction", "committed", committed, "took", time.Since(t0), "err", err)
	th.inTxn = false
	th.produced.Store(false)
	if err != nil {
		return th.txnError("commit transaction", err)
	}
	if !committed {
		th.log.Info("transaction aborted (the group rebalanced); restoring the tasks' state")
		return th.resetTasksLocked(ctx)
	}
	th.mu.dirty = false
	return nil
}

// abortLocked aborts the open transaction (the session rewinds the
// consumer to the committed offsets) and restores the tasks' state.
func (th *thread) abortLocked(ctx context.Context) error {
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_, err := th.sess.End(ectx, kgo.TryAbort)
	th.inTxn = false
	th.produced.Store(false)
	th.prodErr.Swap(nil)
	if err != nil {
		return th.txnError("abort transaction", err)
	}
	if err := th.resetTasksLocked(ctx); err != nil && ctx.Err() == nil {
		return err
	}
	return nil // stopping: the loop shuts down
}

// abortQuietly aborts on a path that fails the thread anyway.
func (th *thread) abortQuietly(ctx context.Context) {
	if _, err := th.sess.End(ctx, kgo.TryAbort); err != nil {
		th.log.Warn("abort transaction", "err", err)
	}
	th.inTxn = false
}

// txnError wraps a transaction error; being fenced (another producer with
// the thread's transactional id started) wraps ErrFenced.
func (th *thread) txnError(what string, err error) error {
	if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) {
		return fmt.Errorf("stream: thread %d: %s: %w: another instance runs with transactional id %s (same InstanceID or StateDir): %w",
			th.id, what, ErrFenced, th.a.transactionalID(th.id), err)
	}
	return fmt.Errorf("stream: thread %d: %s: %w", th.id, what, err)
}

// resetTasksLocked closes every task without committing (their stores'
// uncommitted writes are discarded: pebble stores, opened without a
// checkpoint, are wiped at the next open; memory stores are rebuilt) and
// creates them again, restored from the changelogs' committed records.
func (th *thread) resetTasksLocked(ctx context.Context) error {
	th.mu.reset = false
	th.mu.dirty = false
	owned := th.mu.pending
	th.mu.pending = map[tp]taskID{}
	for k, t := range th.mu.byTP {
		owned[k] = t.id
	}
	th.closeTasksLocked()
	clear(th.mu.offsets)
	if th.stopping {
		return nil
	}
	for k, id := range owned {
		t := th.mu.tasks[id]
		if t == nil {
			var err error
			if t, err = th.newTask(ctx, id); err != nil {
				return err
			}
			th.mu.tasks[id] = t
		}
		th.mu.byTP[k] = t
	}
	return nil
}

func (th *thread) closeTasks() {
	th.mu.Lock()
	defer th.mu.Unlock()
	th.closeTasksLocked()
}

func (th *thread) closeTasksLocked() {
	for id, t := range th.mu.tasks {
		th.closeTaskLocked(id, t)
	}
}

func (th *thread) closeTaskLocked(id taskID, t *task) {
	t.close()
	for _, st := range t.stores {
		_ = st.kv.Close()
		th.a.unregisterStore(st.def.name, id.partition, st)
	}
	delete(th.mu.tasks, id)
	for k, v := range th.mu.byTP {
		if v == t {
			delete(th.mu.byTP, k)
			delete(th.mu.offsets[k.topic], k.partition)
		}
	}
}

// assigned creates the tasks of newly assigned partitions, restoring their
// stores from the changelogs first.
func (th *thread) assigned(ctx context.Context, _ *kgo.Client, assigned map[string][]int32) {
	th.mu.Lock()
	defer th.mu.Unlock()
	if th.eos {
		// Under exactly-once the tasks are created by the loop after it
		// has aborted any transaction a revocation cut through: the
		// restore waits until no transaction is open on the changelogs,
		// this thread's included.
		for topic, ps := range assigned {
			if sub, ok := th.subOf[topic]; ok {
				for _, p := range ps {
					th.mu.pending[tp{topic, p}] = taskID{sub: sub, partition: p}
					th.mu.reset = true
				}
			}
		}
		return
	}
	for topic, ps := range assigned {
		sub, ok := th.subOf[topic]
		if !ok {
			continue
		}
		for _, p := range ps {
			id := taskID{sub: sub, partition: p}
			t := th.mu.tasks[id]
			if t == nil {
				var err error
				if t, err = th.newTask(ctx, id); err != nil {
					th.fatal = err
					return
				}
				th.mu.tasks[id] = t
			}
			th.mu.byTP[tp{topic, p}] = t
		}
	}
}

// revoked commits what the thread processed and closes the tasks of the
// revoked partitions.
func (th *thread) revoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	th.mu.Lock()
	defer th.mu.Unlock()
	if th.eos {
		// The session aborts a transaction that a revocation cut
		// through (it cannot be ended from this callback): the kept
		// tasks are restored at the next poll.
		th.mu.reset = th.mu.reset || len(revoked) > 0 && len(th.mu.tasks) > 0
		th.dropLocked(revoked)
		return
	}
	th.forceCheckpoint = true
	if err := th.commitLocked(ctx); err != nil {
		th.log.Warn("commit on revoke failed; records since the last commit will be processed again", "err", err)
	}
	th.forceCheckpoint = false
	th.dropLocked(revoked)
}

// lost closes the tasks of partitions lost without a chance to commit.
func (th *thread) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	th.mu.Lock()
	defer th.mu.Unlock()
	th.mu.reset = th.eos
	th.dropLocked(lost)
}

func (th *thread) dropLocked(parts map[string][]int32) {
	for topic, ps := range parts {
		sub, ok := th.subOf[topic]
		if !ok {
			continue
		}
		for _, p := range ps {
			delete(th.mu.pending, tp{topic, p})
			id := taskID{sub: sub, partition: p}
			if t := th.mu.tasks[id]; t != nil {
				th.closeTaskLocked(id, t)
			}
		}
	}
}

// emitter of a thread: records go out through its franz-go client.
type threadEmitter struct{ th *thread }

func (e threadEmitter) send(r outRecord) {
	kr := &kgo.Record{Topic: r.topic, Key: r.key, Value: r.value, Timestamp: time.UnixMilli(r.ts), Partition: r.partition}
	for _, h := range r.headers {
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	e.th.produced.Store(true)
	e.th.cl.Produce(context.Background(), kr, e.th.onProduced)
}

func (e threadEmitter) changelog(st *taskStore, key, value []byte) {
	kr := &kgo.Record{Topic: e.th.a.changelogTopic(st.def.name), Partition: st.partition, Key: key, Value: value}
	e.th.produced.Store(true)
	e.th.cl.Produce(context.Background(), kr, func(r *kgo.Record, err error) {
		if err != nil {
			e.th.onProduced(r, err)
			return
		}
		// Acks of one partition arrive in offset order.
		st.logEnd.Store(r.Offset + 1)
	})
}

func (th *thread) onProduced(r *kgo.Record, err error) {
	if err != nil {
		err = fmt.Errorf("produce to %s: %w", r.Topic, err)
		th.prodErr.CompareAndSwap(nil, &err)
	}
}

func (th *thread) newTask(ctx context.Context, id taskID) (*task, error) {
	st := th.a.topo.subs[id.sub]
	stores := map[string]*taskStore{}
	out := threadEmitter{th}
	for _, name := range st.stores {
		def := th.a.topo.stores[name]
		kv, err := th.openStore(def, id)
		if err != nil {
			for _, ts := range stores {
				_ = ts.kv.Close()
			}
			return nil, err
		}
		ts, err := newTaskStore(def, kv, id.partition, out, th.cache)
		if err != nil {
			_ = kv.Close()
			for _, ts := range stores {
				_ = ts.kv.Close()
			}
			return nil, err
		}
		if def.changelog {
			from := int64(0)
			if ts.persist != nil {
				from = ts.persist.RestoreFrom()
			}
			t0 := time.Now()
			n, end, err := th.restore(ctx, name, id.partition, from, ts.data)
			if err != nil {
				_ = kv.Close()
				for _, ts := range stores {
					_ = ts.kv.Close()
				}
				return nil, fmt.Errorf("stream: restore store %s of task %s: %w", name, id, err)
			}
			ts.logEnd.Store(end)
			th.log.Info("restored store", "store", name, "task", id.String(), "from", from, "records", n, "took", time.Since(t0))
		}
		stores[name] = ts
		th.a.registerStore(name, id.partition, ts)
	}
	env := taskEnv{appID: th.a.cfg.appID, out: out, log: th.log, onError: th.a.cfg.onProcessing, onDeser: th.deserHandler(out), clock: time.Now, metrics: &th.a.metrics, globals: &th.a.globals}
	t := newTask(th.a.topo, id, env, stores)
	t.pg = newPartitionGroup(th.a.cfg.maxTaskIdle)
	return t, nil
}

func (th *thread) deserHandler(out emitter) func(*DeserializationError) error {
	dlq := th.a.cfg.deadLetter
	if dlq == "" {
		return th.a.cfg.onDeser
	}
	return func(e *DeserializationError) error {
		hs := append([]Header(nil), e.Headers...)
		hs = append(hs,
			Header{Key: "__sluice.error.message", Value: []byte(e.Err.Error())},
			Header{Key: "__sluice.error.topic", Value: []byte(e.Topic)},
			Header{Key: "__sluice.error.partition", Value: []byte(strconv.Itoa(int(e.Partition)))},
			Header{Key: "__sluice.error.offset", Value: []byte(strconv.FormatInt(e.Offset, 10))},
		)
		out.send(outRecord{topic: dlq, partition: -1, key: e.Key, value: e.Value, ts: e.Timestamp, headers: hs})
		return nil
	}
}

// openStore opens a task's store: pebble under the state directory
// (<state-dir>/<task>/<store>) for persistent stores, memory otherwise.
func (th *thread) openStore(def *storeDef, id taskID) (table.Store, error) {
	if !def.persistent {
		return table.NewMemory(), nil
	}
	dir := filepath.Join(th.a.cfg.stateDir, id.String(), def.name)
	// Under exactly-once the checkpoint is consumed at open: until the
	// next clean shutdown the disk may hold uncommitted writes, and a
	// crash or an abort wipes the store (restored from the changelog).
	p, err := table.OpenPebble(dir, table.Logger(th.log), table.ExactlyOnce(th.eos))
	if err != nil {
		return nil, fmt.Errorf("stream: open store %s of task %s in %s: %w", def.name, id, dir, err)
	}
	return p, nil
}

// checkpointLocked records, after a commit, how far each persistent store
// holds its changelog, so a restart restores only the tail.
func (th *thread) checkpointLocked() {
	for _, t := range th.mu.tasks {
		for _, st := range t.stores {
			if st.persist == nil || !st.def.changelog {
				continue
			}
			end := st.logEnd.Load()
			if end < 0 {
				continue
			}
			if err := st.kv.Flush(); err != nil {
				th.log.Warn("flush store before checkpoint", "store", st.def.name, "err", err)
				continue
			}
			if err := st.persist.Checkpoint(end); err != nil {
				th.log.Warn("write store checkpoint", "store", st.def.name, "err", err)
			}
		}
	}
}

// restore reads a store's changelog partition from offset from to its end
// into kv, returning the records applied and the end offset.
func (th *thread) restore(ctx context.Context, store string, p int32, from int64, dst table.Store) (int64, int64, error) {
	topic := th.a.changelogTopic(store)
	opts := []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(from)}}),
		kgo.FetchMaxPartitionBytes(4 << 20)}
	if th.eos {
		// Only committed changelog records, up to the last stable
		// offset; control records are kept to see the position move
		// past transaction markers.
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	}
	cl, err := th.a.newClient(opts...)
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, 0, err
	}
	if th.eos {
		if ends, err = th.waitStable(ctx, adm, topic, p, ends); err != nil {
			return 0, 0, err
		}
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return 0, 0, err
	}
	end, ok := ends.Lookup(topic, p)
	start, ok2 := starts.Lookup(topic, p)
	if !ok || !ok2 || end.Err != nil || start.Err != nil {
		return 0, 0, fmt.Errorf("offsets of %s-%d: %v %v", topic, p, end.Err, start.Err)
	}
	if from > end.Offset {
		// The checkpoint is ahead of the changelog (it was recreated):
		// the local state cannot be trusted.
		return 0, 0, fmt.Errorf("checkpoint %d is past the end %d of %s-%d: delete the state directory to restore from scratch", from, end.Offset, topic, p)
	}
	var n int64
	var batch []rawKV
	for next := max(from, start.Offset); next < end.Offset; {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return n, 0, err
		}
		if pctx.Err() != nil && fs.NumRecords() == 0 {
			if th.eos {
				// Below the LSO what is not returned was aborted (its
				// marker may lie past the LSO, after another
				// producer's open transaction).
				break
			}
			continue
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return n, 0, ferr
		}
		batch = batch[:0]
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			next = r.Offset + 1
			if r.Attrs.IsControl() {
				continue
			}
			batch = append(batch, rawKV{r.Key, r.Value})
		}
		c, err := table.Restore(dst, func(yield func([]byte, []byte) bool) {
			for _, e := range batch {
				if !yield(e.k, e.v) {
					return
				}
			}
		})
		n += int64(c)
		if err != nil {
			return n, 0, err
		}
	}
	return n, end.Offset, nil
}

type rawKV struct{ k, v []byte }

// waitStable waits until no transaction is open on a changelog partition
// (its last stable offset reaches its high watermark) and returns the end
// offsets then. A previous owner's transaction may still be committing:
// restoring without its writes while the input offsets it commits are
// fetched afterwards would lose updates. Open transactions end within the
// transaction timeout (a crashed owner's is aborted then, or at once when
// it restarts with the same transactional id).
func (th *thread) waitStable(ctx context.Context, adm *kadm.Client, topic string, p int32, ends kadm.ListedOffsets) (kadm.ListedOffsets, error) {
	deadline := time.Now().Add(2 * time.Minute)
	logged := false
	for {
		lsos, err := adm.ListCommittedOffsets(ctx, topic)
		if err != nil {
			return nil, err
		}
		lso, ok1 := lsos.Lookup(topic, p)
		hw, ok2 := ends.Lookup(topic, p)
		if ok1 && ok2 && lso.Err == nil && hw.Err == nil && lso.Offset >= hw.Offset {
			return lsos, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s-%d: a transaction is still open after 2 minutes (last stable offset %d, end %d)", topic, p, lso.Offset, hw.Offset)
		}
		if !logged {
			th.log.Info("waiting for an open transaction on a changelog to end before restoring", "topic", topic, "partition", p, "lso", lso.Offset, "end", hw.Offset)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond): // polling the broker's LSO
		}
		if ends, err = adm.ListEndOffsets(ctx, topic); err != nil {
			return nil, err
		}
	}
}
