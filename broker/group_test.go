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
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/sluicehq/sluice/broker/brokertest"
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

// groupAPIVersions caps a franz-go client at the group API versions our
// broker serves (COMPAT.md), so raw requests use the same versions against
// kfake (which serves newer ones, e.g. DescribeGroups v6 where an unknown
// group is an error rather than "Dead") as against our broker.
func groupAPIVersions() *kversion.Versions {
	v := kversion.Stable()
	for key, max := range map[kmsg.Key]int16{
		kmsg.OffsetCommit:    8,
		kmsg.OffsetFetch:     8,
		kmsg.FindCoordinator: 4,
		kmsg.JoinGroup:       7,
		kmsg.Heartbeat:       4,
		kmsg.LeaveGroup:      4,
		kmsg.SyncGroup:       5,
		kmsg.DescribeGroups:  5,
		kmsg.ListGroups:      4,
		kmsg.DeleteGroups:    2,
		kmsg.OffsetDelete:    0,
		kmsg.Metadata:        9,
	} {
		v.SetMaxKeyVersion(key.Int16(), max)
	}
	return v
}

// rawGroupClient returns a franz-go client for raw group requests, capped at
// groupAPIVersions. kgo routes each group request to the coordinator.
func rawGroupClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return newClient(t, addr, append([]kgo.Opt{kgo.MaxVersions(groupAPIVersions())}, opts...)...)
}

// rawMember is a group member driven by hand with raw requests.
type rawMember struct {
	group, topic string
	id           string
	gen          int32
}

// consumerSubscription is the "consumer" protocol metadata of a member
// subscribed to topics.
func consumerSubscription(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = topics
	return m.AppendTo(nil)
}

// joinRequest is a JoinGroup request for the "consumer" protocol type with
// the range protocol, subscribed to topic.
func joinRequest(group, memberID, topic string, sessionMs int32) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group = group
	req.MemberID = memberID
	req.SessionTimeoutMillis = sessionMs
	req.RebalanceTimeoutMillis = 30_000
	req.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	p.Metadata = consumerSubscription(topic)
	req.Protocols = append(req.Protocols, p)
	return req
}

// issue sends req with a bounded context and fails t on a transport error.
func issue[R kmsg.Response](t *testing.T, cl *kgo.Client, req interface {
	kmsg.Request
	RequestWith(context.Context, kmsg.Requestor) (R, error)
}) R {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("%s request: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

// wantCode fails t unless code is want.
func wantCode(t *testing.T, what string, code int16, want *kerr.Error) {
	t.Helper()
	var wantCode int16
	wantName := "NONE"
	if want != nil {
		wantCode, wantName = want.Code, want.Message
	}
	if code != wantCode {
		got := "NONE"
		if err := kerr.ErrorForCode(code); err != nil {
			got = err.Error()
		}
		t.Fatalf("%s: error code %d (%s), want %d (%s)", what, code, got, wantCode, wantName)
	}
}

// joinRawMember joins group as the only member with raw JoinGroup (twice if
// the broker asks for a member id first, KIP-394) and SyncGroup, assigning
// itself every partition of topic. The member must then heartbeat within
// sessionMs or be expelled.
func joinRawMember(t *testing.T, cl *kgo.Client, group, topic string, partitions []int32, sessionMs int32) rawMember {
	t.Helper()
	req := joinRequest(group, "", topic, sessionMs)
	resp := issue(t, cl, req)
	if resp.ErrorCode == kerr.MemberIDRequired.Code {
		req.MemberID = resp.MemberID
		resp = issue(t, cl, req)
	}
	wantCode(t, "JoinGroup", resp.ErrorCode, nil)
	if resp.LeaderID != resp.MemberID {
		t.Fatalf("JoinGroup: member %s is not the leader (%s) of a group it is alone in", resp.MemberID, resp.LeaderID)
	}
	m := rawMember{group: group, topic: topic, id: resp.MemberID, gen: resp.Generation}

	a := kmsg.NewConsumerMemberAssignment()
	at := kmsg.NewConsumerMemberAssignmentTopic()
	at.Topic, at.Partitions = topic, partitions
	a.Topics = append(a.Topics, at)
	sync := m.syncRequest(m.id, m.gen)
	ga := kmsg.NewSyncGroupRequestGroupAssignment()
	ga.MemberID, ga.MemberAssignment = m.id, a.AppendTo(nil)
	sync.GroupAssignment = append(sync.GroupAssignment, ga)
	sresp := issue(t, cl, sync)
	wantCode(t, "SyncGroup", sresp.ErrorCode, nil)
	var got kmsg.ConsumerMemberAssignment
	if err := got.ReadFrom(sresp.MemberAssignment); err != nil || len(got.Topics) != 1 || !slices.Equal(got.Topics[0].Partitions, partitions) {
		t.Fatalf("SyncGroup: assignment %+v (%v), want %s %v", got, err, topic, partitions)
	}
	return m
}

func (m rawMember) syncRequest(memberID string, gen int32) *kmsg.SyncGroupRequest {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.MemberID, req.Generation = m.group, memberID, gen
	req.ProtocolType, req.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	return req
}

func (m rawMember) heartbeat(memberID string, gen int32) *kmsg.HeartbeatRequest {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.MemberID, req.Generation = m.group, memberID, gen
	return req
}

// commit is an OffsetCommit of one offset per partition in offsets.
func (m rawMember) commit(memberID string, gen int32, topic string, offsets map[int32]int64) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.MemberID, req.Generation = m.group, memberID, gen
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	for _, p := range sortedKeys(offsets) {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = p, offsets[p]
		rp.Metadata = kmsg.StringPtr("raw")
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// commitCodes returns the error code of every partition in an OffsetCommit
// response, by partition.
func commitCodes(t *testing.T, resp *kmsg.OffsetCommitResponse, topic string) map[int32]int16 {
	t.Helper()
	out := make(map[int32]int16)
	for _, rt := range resp.Topics {
		if rt.Topic != topic {
			t.Fatalf("OffsetCommit response for topic %q, asked about %q", rt.Topic, topic)
		}
		for _, rp := range rt.Partitions {
			out[rp.Partition] = rp.ErrorCode
		}
	}
	return out
}

// rawOffsetFetch asks for group's committed offsets of the given partitions
// of topic and returns offset and error code by partition, whichever
// OffsetFetch version (grouped v8 or not) was used.
func rawOffsetFetch(t *testing.T, cl *kgo.Client, group, topic string, partitions ...int32) map[int32][2]int64 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = topic, partitions
	req.Topics = append(req.Topics, rt)
	resp := issue(t, cl, req)
	out := make(map[int32][2]int64)
	add := func(p int32, off int64, code int16) { out[p] = [2]int64{off, int64(code)} }
	if len(resp.Groups) > 0 {
		g := resp.Groups[0]
		wantCode(t, "OffsetFetch group "+group, g.ErrorCode, nil)
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				add(p.Partition, p.Offset, p.ErrorCode)
			}
		}
		return out
	}
	wantCode(t, "OffsetFetch group "+group, resp.ErrorCode, nil)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			add(p.Partition, p.Offset, p.ErrorCode)
		}
	}
	return out
}

// TestGroupBadRequests sends the coordinator requests it must refuse, with
// raw kmsg requests next to one member joined by hand, checks each error
// code, and checks that none of them changed the group or its offsets.
func TestGroupBadRequests(t *testing.T) {
	addr := startGroupBroker(t)
	cl := rawGroupClient(t, addr)
	adm := kadm.NewClient(cl)
	topic := newTopic(t, addr, "group-bad", 2)
	group := newGroupName("bad")
	// Long enough never to expire during the test without heartbeats.
	m := joinRawMember(t, cl, group, topic, []int32{0, 1}, 60_000)
	resp := issue(t, cl, m.commit(m.id, m.gen, topic, map[int32]int64{0: 5}))
	for p, code := range commitCodes(t, resp, topic) {
		wantCode(t, fmt.Sprintf("OffsetCommit of partition %d by the member", p), code, nil)
	}
	wantOffsets := map[int32][2]int64{0: {5, 0}, 1: {-1, 0}}
	if got := rawOffsetFetch(t, cl, group, topic, 0, 1); !maps.Equal(got, wantOffsets) {
		t.Fatalf("offsets after the first commit: %v, want %v ({offset, error code} by partition)", got, wantOffsets)
	}
	const bogus = "no-such-member"

	t.Run("heartbeat", func(t *testing.T) {
		wantCode(t, "Heartbeat by the member", issue(t, cl, m.heartbeat(m.id, m.gen)).ErrorCode, nil)
		wantCode(t, "Heartbeat by an unknown member", issue(t, cl, m.heartbeat(bogus, m.gen)).ErrorCode, kerr.UnknownMemberID)
		wantCode(t, "Heartbeat with a stale generation", issue(t, cl, m.heartbeat(m.id, m.gen-1)).ErrorCode, kerr.IllegalGeneration)
		wantCode(t, "Heartbeat with a future generation", issue(t, cl, m.heartbeat(m.id, m.gen+1)).ErrorCode, kerr.IllegalGeneration)
	})
	t.Run("sync", func(t *testing.T) {
		wantCode(t, "SyncGroup by an unknown member", issue(t, cl, m.syncRequest(bogus, m.gen)).ErrorCode, kerr.UnknownMemberID)
		wantCode(t, "SyncGroup with a stale generation", issue(t, cl, m.syncRequest(m.id, m.gen-1)).ErrorCode, kerr.IllegalGeneration)
	})
	t.Run("commit", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			member string
			gen    int32
			topic  string
			p      int32
			want   *kerr.Error
		}{
			{"unknown member", bogus, m.gen, topic, 0, kerr.UnknownMemberID},
			{"stale generation", m.id, m.gen - 1, topic, 0, kerr.IllegalGeneration},
			{"unknown topic", m.id, m.gen, "no-such-topic", 0, kerr.UnknownTopicOrPartition},
			{"unknown partition", m.id, m.gen, topic, 7, kerr.UnknownTopicOrPartition},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp := issue(t, cl, m.commit(tc.member, tc.gen, tc.topic, map[int32]int64{tc.p: 99}))
				codes := commitCodes(t, resp, tc.topic)
				if len(codes) != 1 {
					t.Fatalf("OffsetCommit response partitions %v, want just %d", codes, tc.p)
				}
				wantCode(t, "OffsetCommit by "+tc.name, codes[tc.p], tc.want)
			})
		}
	})
	t.Run("join", func(t *testing.T) {
		t.Run("inconsistent protocol type", func(t *testing.T) {
			req := joinRequest(group, "", topic, 30_000)
			req.ProtocolType = "connect"
			wantCode(t, "JoinGroup with protocol type connect into a consumer group",
				issue(t, cl, req).ErrorCode, kerr.InconsistentGroupProtocol)
		})
		t.Run("no common protocol", func(t *testing.T) {
			req := joinRequest(group, "", topic, 30_000)
			req.Protocols[0].Name = "roundrobin"
			wantCode(t, "JoinGroup with only roundrobin into a range group",
				issue(t, cl, req).ErrorCode, kerr.InconsistentGroupProtocol)
		})
		t.Run("empty group id", func(t *testing.T) {
			wantCode(t, "JoinGroup with an empty group id",
				issue(t, cl, joinRequest("", "", topic, 30_000)).ErrorCode, kerr.InvalidGroupID)
		})
	})
	t.Run("leave unknown member", func(t *testing.T) {
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Group = group
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID = bogus
		req.Members = append(req.Members, lm)
		resp := issue(t, cl, req)
		if len(resp.Members) == 1 && resp.ErrorCode == 0 {
			wantCode(t, "LeaveGroup of an unknown member (member error)", resp.Members[0].ErrorCode, kerr.UnknownMemberID)
		} else {
			wantCode(t, "LeaveGroup of an unknown member", resp.ErrorCode, kerr.UnknownMemberID)
		}
	})
	t.Run("delete groups", func(t *testing.T) {
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Groups = []string{group, "no-such-group"}
		resp := issue(t, cl, req)
		codes := make(map[string]int16)
		for _, g := range resp.Groups {
			codes[g.Group] = g.ErrorCode
		}
		if len(codes) != 2 {
			t.Fatalf("DeleteGroups answered for %v, want both groups", codes)
		}
		wantCode(t, "DeleteGroups of a group with a member", codes[group], kerr.NonEmptyGroup)
		wantCode(t, "DeleteGroups of an unknown group", codes["no-such-group"], kerr.GroupIDNotFound)
	})
	t.Run("describe unknown group", func(t *testing.T) {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = []string{"no-such-group"}
		resp := issue(t, cl, req)
		if len(resp.Groups) != 1 {
			t.Fatalf("DescribeGroups: %d groups, want 1", len(resp.Groups))
		}
		g := resp.Groups[0]
		wantCode(t, "DescribeGroups of an unknown group (v0-5)", g.ErrorCode, nil)
		if g.State != "Dead" || len(g.Members) != 0 {
			t.Fatalf("DescribeGroups of an unknown group: state %q with %d members, want Dead with none", g.State, len(g.Members))
		}
	})
	t.Run("fetch offsets without commits", func(t *testing.T) {
		want := map[int32][2]int64{0: {-1, 0}, 1: {-1, 0}}
		// A group with a member that never committed.
		g := newGroupName("never-committed")
		joinRawMember(t, cl, g, topic, []int32{0, 1}, 60_000)
		if got := rawOffsetFetch(t, cl, g, topic, 0, 1); !maps.Equal(got, want) {
			t.Fatalf("OffsetFetch of %s: %v, want %v ({offset, error code} by partition)", g, got, want)
		}
		t.Run("unknown group", func(t *testing.T) {
			if got := rawOffsetFetch(t, cl, "no-such-group", topic, 0, 1); !maps.Equal(got, want) {
				t.Fatalf("OffsetFetch of an unknown group: %v, want %v ({offset, error code} by partition)", got, want)
			}
		})
	})

	t.Run("state unchanged", func(t *testing.T) {
		if got := rawOffsetFetch(t, cl, group, topic, 0, 1); !maps.Equal(got, wantOffsets) {
			t.Fatalf("offsets after the bad requests: %v, want still %v", got, wantOffsets)
		}
		g := describeGroup(t, adm, group)
		if g.State != "Stable" || len(g.Members) != 1 || g.Members[0].MemberID != m.id || g.Protocol != "range" || g.ProtocolType != "consumer" {
			t.Fatalf("group after the bad requests: %s (type %q), want Stable with just %s on range", memberSummary(g), g.ProtocolType, m.id)
		}
		wantCode(t, "Heartbeat by the member after the bad requests", issue(t, cl, m.heartbeat(m.id, m.gen)).ErrorCode, nil)
	})
}

// TestGroupJoinMemberIDRequired checks KIP-394: JoinGroup v4+ with an empty
// member id is answered MEMBER_ID_REQUIRED with a member id to join with
// (which then works), while v0-3 clients, which predate it, join at once.
func TestGroupJoinMemberIDRequired(t *testing.T) {
	addr := startGroupBroker(t)
	topic := newTopic(t, addr, "group-kip394", 1)

	t.Run("v4+", func(t *testing.T) {
		cl := rawGroupClient(t, addr)
		group := newGroupName("kip394")
		req := joinRequest(group, "", topic, 30_000)
		resp := issue(t, cl, req)
		if resp.Version < 4 {
			t.Fatalf("JoinGroup went out as v%d, want v4+", resp.Version)
		}
		wantCode(t, "JoinGroup v4+ with an empty member id", resp.ErrorCode, kerr.MemberIDRequired)
		if resp.MemberID == "" {
			t.Fatal("MEMBER_ID_REQUIRED without a member id to join with")
		}
		req.MemberID = resp.MemberID
		resp2 := issue(t, cl, req)
		wantCode(t, "JoinGroup with the member id given", resp2.ErrorCode, nil)
		if resp2.MemberID != resp.MemberID || resp2.LeaderID != resp.MemberID || resp2.Generation < 1 {
			t.Fatalf("JoinGroup with member id %s: member %s, leader %s, generation %d; want the same member, leading, generation >= 1",
				resp.MemberID, resp2.MemberID, resp2.LeaderID, resp2.Generation)
		}
	})
	t.Run("v3", func(t *testing.T) {
		v := groupAPIVersions()
		v.SetMaxKeyVersion(kmsg.JoinGroup.Int16(), 3)
		cl := newClient(t, addr, kgo.MaxVersions(v))
		group := newGroupName("kip394-v3")
		resp := issue(t, cl, joinRequest(group, "", topic, 30_000))
		if resp.Version != 3 {
			t.Fatalf("JoinGroup went out as v%d, want v3", resp.Version)
		}
		wantCode(t, "JoinGroup v3 with an empty member id", resp.ErrorCode, nil)
		if resp.MemberID == "" || resp.LeaderID != resp.MemberID {
			t.Fatalf("JoinGroup v3: member %q, leader %q; want a new member id, leading", resp.MemberID, resp.LeaderID)
		}
	})
}

// TestGroupSessionTimeoutExpelsMember joins a member by hand with a 6 s
// session timeout (Kafka's group.min.session.timeout.ms) and never
// heartbeats: the coordinator must drop it, leaving the group Empty, within
// a bounded time. Its committed offset stays.
func TestGroupSessionTimeoutExpelsMember(t *testing.T) {
	t.Parallel() // mostly waiting out the session timeout
	addr := startGroupBroker(t)
	cl := rawGroupClient(t, addr)
	adm := kadm.NewClient(cl)
	topic := newTopic(t, addr, "group-expire", 1)
	group := newGroupName("expire")
	const sessionMs = 6000
	start := time.Now()
	m := joinRawMember(t, cl, group, topic, []int32{0}, sessionMs)
	codes := commitCodes(t, issue(t, cl, m.commit(m.id, m.gen, topic, map[int32]int64{0: 3})), topic)
	wantCode(t, "OffsetCommit by the member", codes[0], nil)
	if g := describeGroup(t, adm, group); g.State != "Stable" || len(g.Members) != 1 {
		t.Fatalf("after joining: %s, want Stable with the member", memberSummary(g))
	}
	waitFor(t, 4*sessionMs*time.Millisecond, "the coordinator to expel a member that never heartbeats", func() (bool, string) {
		g := describeGroup(t, adm, group)
		return len(g.Members) == 0 && g.State == "Empty", memberSummary(g)
	})
	if took := time.Since(start); took < sessionMs*time.Millisecond {
		t.Fatalf("member expelled after %s, before its session timeout of %d ms", took, sessionMs)
	}
	wantCode(t, "Heartbeat by the expelled member", issue(t, cl, m.heartbeat(m.id, m.gen)).ErrorCode, kerr.UnknownMemberID)
	if got := committedOffsets(t, adm, group, topic); !maps.Equal(got, map[int32]int64{0: 3}) {
		t.Fatalf("offsets after the member expired: %v, want {0: 3}", got)
	}
}

// TestGroupConsumerOffsetsTopicInternal checks that once a group has
// committed, Metadata lists __consumer_offsets with IsInternal set, as
// Kafka does and as tools (and kafka-python's list_topics filters) expect.
func TestGroupConsumerOffsetsTopicInternal(t *testing.T) {
	addr := startGroupBroker(t)
	cl := rawGroupClient(t, addr)
	adm := kadm.NewClient(cl)
	topic := newTopic(t, addr, "group-internal", 1)
	group := newGroupName("internal")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: topic, Partition: 0, At: 0, LeaderEpoch: -1})
	resp, err := adm.CommitOffsets(ctx, group, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("commit offsets of an empty group: %v", err)
	}
	req := kmsg.NewPtrMetadataRequest() // Topics nil: all topics
	mresp := issue(t, cl, req)
	for _, mt := range mresp.Topics {
		if mt.Topic != nil && *mt.Topic == "__consumer_offsets" {
			wantCode(t, "Metadata of __consumer_offsets", mt.ErrorCode, nil)
			if !mt.IsInternal {
				t.Fatal("__consumer_offsets is listed with IsInternal false")
			}
			if len(mt.Partitions) == 0 {
				t.Fatal("__consumer_offsets is listed with no partitions")
			}
			return
		}
	}
	t.Fatalf("Metadata for all topics (v%d) does not list __consumer_offsets after a commit", mresp.Version)
}

// unprocessed returns the offsets below ends that were never processed, by
// partition, at most a few per partition.
func (r *groupRun) unprocessed(ends map[int32]int64) map[int32][]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[int32][]int64)
	for p, end := range ends {
		for o := range end {
			if r.mu.processed[p][o] == 0 && len(out[p]) < 5 {
				out[p] = append(out[p], o)
			}
		}
	}
	return out
}

// snapshot returns each member's generation and owned partitions.
func (r *groupRun) snapshot(members ...string) map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string)
	for _, m := range members {
		out[m] = fmt.Sprintf("gen %d owns %v", r.mu.gen[m], sortedKeys(r.mu.owned[m]))
	}
	return out
}

// TestGroupStaticMemberRestart checks static membership (KIP-345): a member
// with an instance id that closes (static members do not leave) and comes
// back with the same instance id within its session timeout gets its
// partitions back, in the same generation, with no rebalance of the others,
// and resumes from its committed offsets with nothing lost.
func TestGroupStaticMemberRestart(t *testing.T) {
	addr := startGroupBroker(t)
	const partitions = 6
	topic := newTopic(t, addr, "group-static", partitions)
	group := newGroupName("static")
	adm := kadm.NewClient(newClient(t, addr))
	run := newGroupRun(topic, partitions)
	lp := startLoad(t, addr, topic, partitions)
	member := func(name string) *loadMember {
		return startLoadMember(t, addr, group, run, name,
			kgo.InstanceID(name), kgo.Balancers(kgo.RangeBalancer()))
	}

	// s0 first and alone, so that it leads: a restarted static leader
	// on JoinGroup v8 and older cannot balance (KIP-814), which is not
	// what this test is about.
	s0 := member("s0")
	waitSettled(t, adm, group, run, lp, s0)
	s1, s2 := member("s1"), member("s2")
	waitSettled(t, adm, group, run, lp, s0, s1, s2)
	before := run.snapshot("s0", "s1", "s2")
	_, gen0 := s0.cl.GroupMetadata()
	_, gen1 := s1.cl.GroupMetadata()
	oldID, _ := s2.cl.GroupMetadata()

	s2.leave(t) // a static member's Close does not send LeaveGroup
	g := describeGroup(t, adm, group)
	if len(g.Members) != 3 {
		t.Fatalf("after static member s2 closed: %s, want all three still members until the session timeout", memberSummary(g))
	}
	s2 = member("s2")
	waitSettled(t, adm, group, run, lp, s0, s1, s2)

	after := run.snapshot("s0", "s1", "s2")
	if !maps.Equal(before, after) {
		t.Errorf("assignments changed across the static restart:\n\tbefore %v\n\tafter  %v", before, after)
	}
	if _, gen := s0.cl.GroupMetadata(); gen != gen0 {
		t.Errorf("s0 went from generation %d to %d: the static rejoin rebalanced the group", gen0, gen)
	}
	if _, gen := s1.cl.GroupMetadata(); gen != gen1 {
		t.Errorf("s1 went from generation %d to %d: the static rejoin rebalanced the group", gen1, gen)
	}
	newID, _ := s2.cl.GroupMetadata()
	if newID == oldID || newID == "" {
		t.Errorf("restarted s2 has member id %q, was %q: a static rejoin gets a new member id that fences the old one", newID, oldID)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation, hb.InstanceID = group, oldID, gen0, kmsg.StringPtr("s2")
	wantCode(t, "Heartbeat by the replaced member id of instance s2",
		issue(t, rawGroupClient(t, addr), hb).ErrorCode, kerr.FencedInstanceID)
	g = describeGroup(t, adm, group)
	var ids []string
	for _, m := range g.Members {
		if m.InstanceID != nil {
			ids = append(ids, *m.InstanceID)
		}
		if m.MemberID == oldID {
			t.Errorf("the replaced member id %s of s2 is still in the group", oldID)
		}
	}
	slices.Sort(ids)
	if g.State != "Stable" || !slices.Equal(ids, []string{"s0", "s1", "s2"}) || !slices.ContainsFunc(g.Members, func(m kadm.DescribedGroupMember) bool { return m.MemberID == newID }) {
		t.Errorf("group after the restart: %s, want Stable with instances s0, s1, s2 and s2 as %s", memberSummary(g), newID)
	}
	lp.halt()
	ends := lp.acked(t)
	waitFor(t, settleTimeout, "the static members to consume everything", func() (bool, string) {
		run.failOnProblems(t)
		return run.caughtUp(ends)
	})
	if gaps := run.unprocessed(ends); len(gaps) > 0 {
		t.Errorf("records never processed (partition: offsets): %v", gaps)
	}
}

// TestGroupOffsetsSurviveRestart commits offsets in the middle of each
// partition with a group consumer, restarts the broker on the same data
// directory, and checks that the committed offsets are still there and that
// a new member of the group resumes exactly from them: nothing old again,
// nothing lost, including records produced after the restart.
func TestGroupOffsetsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	b := brokertest.Start(t, brokertest.DataDir(dir))
	addr := b.Addr()
	const partitions, perPartition, commitAt = 3, 40, 25
	topic := newTopic(t, addr, "group-restart", partitions)
	group := newGroupName("restart")
	produce := func(addr string, from, to int) {
		var rs []*kgo.Record
		for p := range int32(partitions) {
			for i := from; i < to; i++ {
				rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "p%d-%d", p, i)})
			}
		}
		produceSync(t, newClient(t, addr), rs...)
	}
	produce(addr, 0, perPartition)

	// A member that reads everything but commits only offsets below
	// commitAt, then leaves without committing more.
	{
		var mu sync.Mutex
		done := make(map[int32]*kgo.Record)
		cl := newClient(t, addr,
			kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.DisableAutoCommit(),
			kgo.OnPartitionsRevoked(func(context.Context, *kgo.Client, map[string][]int32) {}),
		)
		ctx, cancel := context.WithTimeout(t.Context(), settleTimeout)
		defer cancel()
		seen := 0
		for seen < partitions*perPartition {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("first member read %d of %d records before timing out", seen, partitions*perPartition)
			}
			fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
			for r := range fs.RecordsAll() {
				seen++
				if r.Offset == commitAt-1 {
					mu.Lock()
					done[r.Partition] = r
					mu.Unlock()
				}
			}
		}
		if err := cl.CommitRecords(ctx, slices.Collect(maps.Values(done))...); err != nil {
			t.Fatalf("commit records at offset %d: %v", commitAt-1, err)
		}
		cl.Close()
	}
	want := map[int32]int64{0: commitAt, 1: commitAt, 2: commitAt}
	if got := committedOffsets(t, kadm.NewClient(newClient(t, addr)), group, topic); !maps.Equal(got, want) {
		t.Fatalf("committed before the restart: %v, want %v", got, want)
	}

	b.Stop(t)
	b = brokertest.Start(t, brokertest.DataDir(dir))
	addr = b.Addr()
	adm := kadm.NewClient(newClient(t, addr))
	if got := committedOffsets(t, adm, group, topic); !maps.Equal(got, want) {
		t.Fatalf("committed after the restart: %v, want %v", got, want)
	}
	if g := describeGroup(t, adm, group); g.State != "Empty" {
		t.Fatalf("group after the restart: %s, want Empty", memberSummary(g))
	}
	produce(addr, perPartition, perPartition+10)

	// A new member resumes from the committed offsets.
	run := newGroupRun(topic, partitions)
	ends := endOffsets(t, adm, topic)
	m := startLoadMember(t, addr, group, run, "after-restart")
	waitFor(t, settleTimeout, "the member to consume after the restart", func() (bool, string) {
		run.failOnProblems(t)
		return run.caughtUp(ends)
	})
	m.leave(t)
	run.failOnProblems(t)
	run.mu.Lock()
	for p := range int32(partitions) {
		got := sortedKeys(run.mu.processed[p])
		var want []int64
		for o := int64(commitAt); o < ends[p]; o++ {
			want = append(want, o)
		}
		if !slices.Equal(got, want) {
			t.Errorf("partition %d: processed offsets %v after the restart, want exactly %d..%d", p, got, commitAt, ends[p]-1)
		}
	}
	run.mu.Unlock()
	if got := committedOffsets(t, adm, group, topic); !maps.Equal(got, ends) {
		t.Fatalf("committed after consuming to the end: %v, want %v", got, ends)
	}
}
