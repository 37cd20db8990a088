package connect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// GroupID makes the worker run in distributed mode, sharing connectors and
// tasks with the other workers that use the same group id and topics
// (Kafka Connect's group.id). Worker ids must be unique within the group.
//
// Every worker tails connect-configs, connect-offsets and connect-status, so
// a REST request may go to any worker: it writes to connect-configs and
// returns once that worker has read its write back. Membership is a Kafka
// consumer group whose assignment is the sorted list of live worker ids;
// the connector and each task belong to the worker at index
// fnv32a("<name>" or "<name>/<task>") mod len(workers). On every
// membership change each worker stops its tasks and starts the ones it now
// owns (an eager rebalance); source tasks first read the offsets the
// previous owner stored. A worker that stops cleanly leaves the group, so
// the others take over its tasks at once; one that crashes is replaced
// after the group's session timeout. Two workers may briefly run the same
// task around a rebalance, which at-least-once delivery allows (with
// ExactlyOnceSource, the transactional id fences the older one).
func GroupID(id string) Opt { return optFunc(func(c *cfg) { c.groupID = id }) }

// ownsLocked reports whether this worker runs the connector (id -1) or
// the task id of connector name. Always true in standalone mode.
func (w *Worker) ownsLocked(name string, id int) bool {
	if w.cfg.groupID == "" {
		return true
	}
	if len(w.mu.members) == 0 {
		return false
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	if id >= 0 {
		fmt.Fprintf(h, "/%d", id)
	}
	return w.mu.members[h.Sum32()%uint32(len(w.mu.members))] == w.cfg.workerID
}

// remoteLocked returns the last state another worker wrote for key.
func (w *Worker) remoteLocked(key string) State {
	if s, ok := w.mu.remote[key]; ok {
		return s
	}
	return State{State: StateUnassigned}
}

// applyStatus applies a connect-status record to m.
func applyStatus(m map[string]State, k, v []byte) {
	if v == nil {
		delete(m, string(k))
		return
	}
	var s struct {
		State    string  `json:"state"`
		Trace    *string `json:"trace"`
		WorkerID string  `json:"worker_id"`
	}
	if json.Unmarshal(v, &s) != nil {
		return
	}
	st := State{State: s.State, WorkerID: s.WorkerID}
	if s.Trace != nil {
		st.Trace = *s.Trace
	}
	m[string(k)] = st
}

// broadcastLocked wakes the goroutines waiting for tailer progress.
func (w *Worker) broadcastLocked() {
	close(w.mu.progress)
	w.mu.progress = make(chan struct{})
}

// startDistributed starts the tailers, the rebalance loop and the group
// membership. ends are the end offsets replay returned.
func (w *Worker) startDistributed(ctx context.Context, ends [3]int64) error {
	w.bg.Go(func() { w.st.tail(w.life, w.cfg.configs, ends[1], w.applyConfigRecord) })
	w.bg.Go(func() {
		w.st.tail(w.life, w.cfg.offsets, ends[0], func(k, v []byte, off int64) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if k != nil {
				if v == nil {
					delete(w.mu.offsets, string(k))
				} else if o, err := decodeOffset(v); err == nil {
					w.mu.offsets[string(k)] = o
				}
			}
			w.mu.offsetsApplied = off + 1
			w.broadcastLocked()
		})
	})
	w.bg.Go(func() {
		w.st.tail(w.life, w.cfg.statusTopicNm, ends[2], func(k, v []byte, _ int64) {
			if k == nil {
				return
			}
			w.mu.Lock()
			applyStatus(w.mu.remote, k, v)
			w.mu.Unlock()
		})
	})
	w.bg.Go(w.reassignLoop)
	grp, err := kgo.NewClient(append(slices.Clone(w.cfg.brokers),
		kgo.ConsumerGroup(w.cfg.groupID),
		kgo.ConsumeTopics(w.cfg.configs),
		kgo.Balancers(&balancer{w: w}),
		kgo.DisableAutoCommit())...)
	if err != nil {
		return fmt.Errorf("connect: group client: %w", err)
	}
	w.grp = grp
	return ctx.Err()
}

// applyConfigRecord applies a connect-configs record read by the tailer.
func (w *Worker) applyConfigRecord(k, v []byte, off int64) {
	if k != nil {
		w.opMu.Lock()
		key := string(k)
		switch {
		case strings.HasPrefix(key, "connector-"):
			name := strings.TrimPrefix(key, "connector-")
			var m struct {
				Properties map[string]string `json:"properties"`
			}
			if v == nil {
				w.applyDeleteOpLocked(name)
			} else if json.Unmarshal(v, &m) == nil && m.Properties != nil {
				w.applyConfigOpLocked(name, m.Properties)
			}
		case strings.HasPrefix(key, "target-state-") && v != nil:
			var m struct {
				State   string `json:"state"`
				StateV2 string `json:"state.v2"`
			}
			if json.Unmarshal(v, &m) == nil {
				w.applyTargetStateOpLocked(strings.TrimPrefix(key, "target-state-"), cmp(m.StateV2, m.State))
			}
		case strings.HasPrefix(key, "restart-connector-") && v != nil:
			var m struct {
				IncludeTasks bool `json:"include-tasks"`
				OnlyFailed   bool `json:"only-failed"`
			}
			if json.Unmarshal(v, &m) == nil {
				w.applyRestartOpLocked(strings.TrimPrefix(key, "restart-connector-"), m.IncludeTasks, m.OnlyFailed)
			}
		case strings.HasPrefix(key, "restart-task-"):
			rest := strings.TrimPrefix(key, "restart-task-")
			if i := strings.LastIndexByte(rest, '-'); i > 0 {
				id, err := strconv.Atoi(rest[i+1:])
				w.mu.Lock()
				c, ok := w.mu.conns[rest[:i]]
				w.mu.Unlock()
				if err == nil && ok {
					w.restartTaskOpLocked(c, id)
				}
			}
		}
		w.opMu.Unlock()
	}
	w.mu.Lock()
	w.mu.configsApplied = off + 1
	w.broadcastLocked()
	w.mu.Unlock()
}

// waitConfigs waits until the tailer has applied connect-configs up to
// offset off.
func (w *Worker) waitConfigs(ctx context.Context, off int64) error {
	return w.waitProgress(ctx, func() bool { return w.mu.configsApplied > off })
}

// catchUpOffsets waits (at most 10s) until the tailer has read
// connect-offsets up to its current end.
func (w *Worker) catchUpOffsets(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(w.st.cl).ListEndOffsets(ctx, w.cfg.offsets)
	if err != nil {
		return err
	}
	o, ok := ends.Lookup(w.cfg.offsets, 0)
	if !ok || o.Err != nil {
		return errors.Join(errors.New("connect: no end offset for connect-offsets"), o.Err)
	}
	return w.waitProgress(ctx, func() bool { return w.mu.offsetsApplied >= o.Offset })
}

func (w *Worker) waitProgress(ctx context.Context, done func() bool) error {
	for {
		w.mu.Lock()
		ok, ch := done(), w.mu.progress
		w.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-w.life.Done():
			return ErrClosed
		}
	}
}

// setMembers records a new assignment and wakes the rebalance loop.
func (w *Worker) setMembers(workers []string) {
	w.mu.Lock()
	same := slices.Equal(w.mu.members, workers)
	w.mu.members = workers
	w.mu.Unlock()
	if same {
		return
	}
	w.log.Info("connect: group assignment", "workers", workers)
	select {
	case w.reassign <- struct{}{}:
	default:
	}
}

// reassignLoop restarts the tasks this worker owns after each membership
// change.
func (w *Worker) reassignLoop() {
	for {
		select {
		case <-w.life.Done():
			return
		case <-w.reassign:
		}
		w.opMu.Lock()
		w.mu.Lock()
		names := slices.Sorted(maps.Keys(w.mu.conns))
		w.mu.Unlock()
		for _, n := range names {
			w.mu.Lock()
			c, ok := w.mu.conns[n]
			w.mu.Unlock()
			if ok && w.life.Err() == nil {
				w.stopTasksOpLocked(c)
				w.applyTargetOpLocked(w.life, n)
			}
		}
		w.opMu.Unlock()
	}
}

// balancer is the group protocol: the leader gives every member the sorted
// list of worker ids, and no partitions.
type balancer struct{ w *Worker }

func (*balancer) ProtocolName() string { return "sluice-connect-v1" }
func (*balancer) IsCooperative() bool  { return false }

func (b *balancer) JoinGroupMetadata([]string, map[string][]int32, int32) []byte {
	m, _ := json.Marshal(map[string]string{"worker_id": b.w.cfg.workerID})
	return m
}

func (b *balancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	var a struct {
		Workers []string `json:"workers"`
	}
	if err := json.Unmarshal(assignment, &a); err != nil {
		return nil, fmt.Errorf("connect: group assignment: %w", err)
	}
	b.w.setMembers(a.Workers)
	return map[string][]int32{}, nil
}

func (b *balancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	mb := memberBalancer{}
	seen := map[string]bool{}
	for _, m := range members {
		mb.members = append(mb.members, m.MemberID)
		var meta struct {
			WorkerID string `json:"worker_id"`
		}
		if json.Unmarshal(m.ProtocolMetadata, &meta) == nil && meta.WorkerID != "" && !seen[meta.WorkerID] {
			seen[meta.WorkerID] = true
			mb.workers = append(mb.workers, meta.WorkerID)
		}
	}
	slices.Sort(mb.workers)
	return mb, map[string]struct{}{b.w.cfg.configs: {}}, nil
}

type memberBalancer struct{ members, workers []string }

func (m memberBalancer) Balance(map[string]int32) kgo.IntoSyncAssignment { return m }

func (m memberBalancer) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment {
	a, _ := json.Marshal(map[string][]string{"workers": m.workers})
	out := make([]kmsg.SyncGroupRequestGroupAssignment, 0, len(m.members))
	for _, id := range m.members {
		out = append(out, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: a})
	}
	return out
}

// Workers returns the worker ids of the group as of the last rebalance,
// sorted; nil before the first one and in standalone mode.
func (w *Worker) Workers() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.mu.members)
}
