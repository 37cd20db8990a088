package broker_test

// Consumer-group tests with franz-go: members joining and leaving under
// load with both rebalance protocols, static membership, offsets across a
// restart, and the coordinator's answers to bad requests sent raw.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// settleTimeout bounds every wait for a group to rebalance and for
// consumption to catch up. Rebalances here take well under a second; the
// slack is for the race detector on two cores.
const settleTimeout = 30 * time.Second

// genPart is a partition in one generation of a group.
type genPart struct {
	gen int32
	p   int32
}

// groupRun records what the members of one group own and process, and every
// violation of the group protocol's promises it sees:
//   - two members owning the same partition in the same generation;
//   - a partition assigned to one member while another still owns it (the
//     eager protocol revokes everything before rejoining, the cooperative one
//     revokes before the second join, so this never happens with live
//     members);
//   - a member processing a record of a partition it does not own.
type groupRun struct {
	topic      string
	partitions int32

	mu struct {
		sync.Mutex
		byGen     map[genPart]string        // (generation, partition) -> member
		owner     map[int32]string          // partition -> member that owns it now
		owned     map[string]map[int32]bool // member -> partitions it owns now
		gen       map[string]int32          // member -> generation of its last assignment
		processed map[int32]map[int64]int   // partition -> offset -> times processed
		maxDone   map[int32]int64           // partition -> highest offset processed
		problems  []string
	}
}

func newGroupRun(topic string, partitions int32) *groupRun {
	r := &groupRun{topic: topic, partitions: partitions}
	r.mu.byGen = make(map[genPart]string)
	r.mu.owner = make(map[int32]string)
	r.mu.owned = make(map[string]map[int32]bool)
	r.mu.gen = make(map[string]int32)
	r.mu.processed = make(map[int32]map[int64]int)
	r.mu.maxDone = make(map[int32]int64)
	for p := range partitions {
		r.mu.processed[p] = make(map[int64]int)
		r.mu.maxDone[p] = -1
	}
	return r
}

func (r *groupRun) problemLocked(format string, args ...any) {
	if len(r.mu.problems) < 50 {
		r.mu.problems = append(r.mu.problems, fmt.Sprintf(format, args...))
	}
}

func (r *groupRun) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problemLocked(format, args...)
}

// assigned records that member was assigned added in generation gen, on
// top of what it kept.
func (r *groupRun) assigned(member string, gen int32, added []int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.mu.gen[member]; ok && gen < prev {
		r.problemLocked("%s: assignment for generation %d after generation %d", member, gen, prev)
	}
	r.mu.gen[member] = gen
	owned := r.mu.owned[member]
	if owned == nil {
		owned = make(map[int32]bool)
		r.mu.owned[member] = owned
	}
	for _, p := range added {
		if cur := r.mu.owner[p]; cur != "" && cur != member {
			r.problemLocked("generation %d: partition %d assigned to %s while %s still owns it", gen, p, member, cur)
		}
		r.mu.owner[p] = member
		owned[p] = true
	}
	for p := range owned {
		k := genPart{gen, p}
		if other := r.mu.byGen[k]; other != "" && other != member {
			r.problemLocked("generation %d: partition %d owned by both %s and %s", gen, p, other, member)
		}
		r.mu.byGen[k] = member
	}
}

// revoked records that member gave up ps (revoked or lost).
func (r *groupRun) revoked(member string, ps []int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range ps {
		delete(r.mu.owned[member], p)
		if r.mu.owner[p] == member {
			delete(r.mu.owner, p)
		}
	}
}

// process records that member processed rec.
func (r *groupRun) process(member string, rec *kgo.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec.Topic != r.topic {
		r.problemLocked("%s: record from unexpected topic %s", member, rec.Topic)
		return
	}
	if !r.mu.owned[member][rec.Partition] {
		r.problemLocked("%s: processed %d@%d without owning the partition (owner %q)",
			member, rec.Partition, rec.Offset, r.mu.owner[rec.Partition])
	}
	r.mu.processed[rec.Partition][rec.Offset]++
	r.mu.maxDone[rec.Partition] = max(r.mu.maxDone[rec.Partition], rec.Offset)
}

// settled reports whether the live members, and only they, own all
// partitions between them, every one of them in the same generation.
func (r *groupRun) settled(live []string) (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	ok := true
	gens := make(map[int32]bool)
	n := 0
	for _, m := range live {
		gen, has := r.mu.gen[m]
		if !has {
			ok = false
		}
		gens[gen] = true
		n += len(r.mu.owned[m])
		fmt.Fprintf(&b, "%s gen %d owns %v; ", m, gen, sortedKeys(r.mu.owned[m]))
	}
	for m, ps := range r.mu.owned {
		if len(ps) > 0 && !slices.Contains(live, m) {
			ok = false
			fmt.Fprintf(&b, "departed %s still owns %v; ", m, sortedKeys(ps))
		}
	}
	return ok && len(gens) == 1 && n == int(r.partitions), b.String()
}

// caughtUp reports whether every partition has been processed up to (not
// including) the offsets in ends.
func (r *groupRun) caughtUp(ends map[int32]int64) (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ok := true
	var b strings.Builder
	for p := range r.partitions {
		if r.mu.maxDone[p]+1 < ends[p] {
			ok = false
		}
		fmt.Fprintf(&b, "p%d processed to %d of %d; ", p, r.mu.maxDone[p]+1, ends[p])
	}
	return ok, b.String()
}

// failOnProblems fails t now if any violation has been seen.
func (r *groupRun) failOnProblems(t *testing.T) {
	t.Helper()
	if ps := r.problems(); len(ps) > 0 {
		t.Fatalf("group protocol violations:\n\t%s", strings.Join(ps, "\n\t"))
	}
}

func (r *groupRun) problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.mu.problems)
}

func sortedKeys[K int32 | int64, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// loadProducer writes to every partition of a topic from a goroutine until
// stopped, and knows the last offset acknowledged per partition.
type loadProducer struct {
	stop chan struct{}
	done chan struct{}

	mu struct {
		sync.Mutex
		next map[int32]int64 // partition -> offset after the last acknowledged record
		err  error
	}
}

// startLoad produces one record to each partition of topic every tick until
// stop is called.
func startLoad(t *testing.T, addr, topic string, partitions int32) *loadProducer {
	t.Helper()
	cl := newClient(t, addr, kgo.ProducerLinger(0))
	lp := &loadProducer{stop: make(chan struct{}), done: make(chan struct{})}
	lp.mu.next = make(map[int32]int64)
	go func() {
		defer close(lp.done)
		// A steady trickle, not a flood: enough to keep every partition
		// moving through each rebalance without swamping two cores.
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for seq := 0; ; seq++ {
			select {
			case <-lp.stop:
				return
			case <-tick.C:
			}
			rs := make([]*kgo.Record, partitions)
			for p := range partitions {
				rs[p] = &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "p%d-seq%d", p, seq)}
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			err := cl.ProduceSync(ctx, rs...).FirstErr()
			cancel()
			lp.mu.Lock()
			if err != nil {
				lp.mu.err = err
				lp.mu.Unlock()
				return
			}
			for _, r := range rs {
				lp.mu.next[r.Partition] = r.Offset + 1
			}
			lp.mu.Unlock()
		}
	}()
	t.Cleanup(lp.halt)
	return lp
}

func (lp *loadProducer) halt() {
	select {
	case <-lp.stop:
	default:
		close(lp.stop)
	}
	<-lp.done
}

// acked returns the offset after the last acknowledged record per
// partition, failing t if producing failed.
func (lp *loadProducer) acked(t *testing.T) map[int32]int64 {
	t.Helper()
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if lp.mu.err != nil {
		t.Fatalf("load producer: %v", lp.mu.err)
	}
	return maps.Clone(lp.mu.next)
}

// loadMember is one group member consuming in its own goroutine: poll,
// process, mark, allow the rebalance, repeat. BlockRebalanceOnPoll keeps a
// revoke from landing while polled records are processed, so the offsets
// committed on revoke are exactly the processed ones.
type loadMember struct {
	name   string
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
}

func startLoadMember(t *testing.T, addr, group string, run *groupRun, name string, extra ...kgo.Opt) *loadMember {
	t.Helper()
	m := &loadMember{name: name, done: make(chan struct{})}
	opts := append([]kgo.Opt{
		kgo.ClientID(name),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(run.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(200 * time.Millisecond),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(10 * time.Second),
		kgo.HeartbeatInterval(200 * time.Millisecond),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, cl *kgo.Client, a map[string][]int32) {
			// The session's generation: the join that produced this
			// assignment stored it, and the next join waits for us.
			_, gen := cl.GroupMetadata()
			run.assigned(name, gen, a[run.topic])
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, rv map[string][]int32) {
			// Replacing the default revoke means committing ourselves.
			if err := cl.CommitMarkedOffsets(ctx); err != nil {
				run.problem("%s: commit on revoking %v: %v", name, rv, err)
			}
			run.revoked(name, rv[run.topic])
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) {
			run.problem("%s: lost %v (a live member should only ever have partitions revoked)", name, l)
			run.revoked(name, l[run.topic])
		}),
	}, extra...)
	m.cl = newClient(t, addr, opts...)
	ctx, cancel := context.WithCancel(t.Context())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		defer m.cl.Close() // leaves the group, revoking and committing first
		defer m.cl.AllowRebalance()
		for ctx.Err() == nil {
			fs := m.cl.PollFetches(ctx)
			fs.EachError(func(topic string, p int32, err error) {
				if !errors.Is(err, context.Canceled) && !errors.Is(err, kgo.ErrClientClosed) {
					run.problem("%s: fetch %s/%d: %v", name, topic, p, err)
				}
			})
			recs := fs.Records()
			for _, r := range recs {
				run.process(name, r)
			}
			m.cl.MarkCommitRecords(recs...)
			m.cl.AllowRebalance()
		}
	}()
	t.Cleanup(func() { m.leave(t) })
	return m
}

// leave stops the member's loop and closes its client, which leaves the
// group after committing in OnPartitionsRevoked.
func (m *loadMember) leave(t *testing.T) {
	t.Helper()
	m.cancel()
	select {
	case <-m.done:
	case <-time.After(settleTimeout):
		t.Fatalf("member %s did not leave the group within %s", m.name, settleTimeout)
	}
}

// waitSettled waits until the live members own all partitions between them
// in one generation, the coordinator describes the group as Stable with
// exactly them, and every partition has been processed up to where the
// producer was when the group settled: consumption resumed.
func waitSettled(t *testing.T, adm *kadm.Client, group string, run *groupRun, lp *loadProducer, live ...*loadMember) {
	t.Helper()
	var names []string
	for _, m := range live {
		names = append(names, m.name)
	}
	waitFor(t, settleTimeout, fmt.Sprintf("group %s to settle with members %v", group, names), func() (bool, string) {
		run.failOnProblems(t)
		ok, state := run.settled(names)
		if !ok {
			return false, state
		}
		g := describeGroup(t, adm, group)
		return g.State == "Stable" && len(g.Members) == len(live), state + "coordinator: " + memberSummary(g)
	})
	ends := lp.acked(t)
	waitFor(t, settleTimeout, fmt.Sprintf("members %v to consume up to %v", names, ends), func() (bool, string) {
		run.failOnProblems(t)
		return run.caughtUp(ends)
	})
}

// TestGroupMembersJoinAndLeaveUnderLoad runs members of one group that join
// and leave while a producer keeps writing to six partitions, with the
// cooperative-sticky (kgo's default) and the range (eager) balancer. At no
// moment may two members own the same partition, in the same generation or
// at all; every member processes only what it owns; and when everyone has
// left, the committed offsets are exactly one past the last processed
// record of each partition, and every produced record was processed.
func TestGroupMembersJoinAndLeaveUnderLoad(t *testing.T) {
	for _, tc := range []struct {
		name     string
		balancer kgo.GroupBalancer
	}{
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
		{"range", kgo.RangeBalancer()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startGroupBroker(t)
			const partitions = 6
			topic := newTopic(t, addr, "group-load", partitions)
			group := newGroupName("load-" + tc.name)
			adm := kadm.NewClient(newClient(t, addr))
			run := newGroupRun(topic, partitions)
			lp := startLoad(t, addr, topic, partitions)
			member := func(name string) *loadMember {
				return startLoadMember(t, addr, group, run, name, kgo.Balancers(tc.balancer))
			}

			m0, m1 := member("m0"), member("m1")
			waitSettled(t, adm, group, run, lp, m0, m1)
			m2, m3 := member("m2"), member("m3")
			waitSettled(t, adm, group, run, lp, m0, m1, m2, m3)
			m1.leave(t)
			waitSettled(t, adm, group, run, lp, m0, m2, m3)
			m4 := member("m4")
			waitSettled(t, adm, group, run, lp, m0, m2, m3, m4)
			m0.leave(t)
			m2.leave(t)
			waitSettled(t, adm, group, run, lp, m3, m4)

			// Stop producing, let the last two drain everything, and
			// leave one after the other.
			lp.halt()
			ends := lp.acked(t)
			if got := endOffsets(t, adm, topic); !maps.Equal(got, ends) {
				t.Fatalf("end offsets %v, but the producer was acknowledged up to %v", got, ends)
			}
			waitFor(t, settleTimeout, "the last members to consume everything", func() (bool, string) {
				run.failOnProblems(t)
				return run.caughtUp(ends)
			})
			m3.leave(t)
			m4.leave(t)

			run.failOnProblems(t)
			g := describeGroup(t, adm, group)
			if g.State != "Empty" || len(g.Members) != 0 {
				t.Errorf("after every member left: %s, want Empty with no members", memberSummary(g))
			}
			committed := committedOffsets(t, adm, group, topic)
			run.mu.Lock()
			defer run.mu.Unlock()
			dups := 0
			for p := range int32(partitions) {
				for o := range ends[p] {
					switch n := run.mu.processed[p][o]; {
					case n == 0:
						t.Errorf("partition %d offset %d was produced but never processed", p, o)
					case n > 1:
						dups += n - 1
					}
				}
				if c, ok := committed[p]; !ok || c != run.mu.maxDone[p]+1 || c != ends[p] {
					t.Errorf("partition %d: committed %d (present %v), want one past the last processed offset %d = end offset %d",
						p, c, ok, run.mu.maxDone[p], ends[p])
				}
			}
			t.Logf("%s: %d records over %d partitions, %d processed twice (at-least-once across rebalances), %d generations seen",
				tc.name, sumValues(ends), partitions, dups, countGens(run.mu.byGen))
		})
	}
}

func sumValues(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func countGens(m map[genPart]string) int {
	gens := make(map[int32]bool)
	for k := range m {
		gens[k.gen] = true
	}
	return len(gens)
}
