package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// election elects one writer among the registry instances sharing a group.
//
// Every instance joins the group with a balancer of its own, whose member
// metadata carries the instance's URL (kmsg.ConsumerMemberMetadata, URL in
// UserData, so Kafka tools can still describe the group). The group leader
// picks the member with the smallest member id and sends every member an
// assignment whose UserData names the elected URL; the elected member is
// also assigned partition 0 of the group's topic (which nobody fetches: the
// topic is paused). So every member learns the writer at each rebalance.
type election struct {
	url   string
	topic string
	cl    *kgo.Client

	mu struct {
		sync.Mutex
		leader  string        // URL of the writer, "" while unknown
		changed chan struct{} // closed and replaced on change
	}
}

type leaderInfo struct {
	URL string `json:"url"`
}

func newElection(brokers []kgo.Opt, group, topic, url string) (*election, error) {
	e := &election{url: url, topic: topic}
	e.mu.changed = make(chan struct{})
	opts := append([]kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(e),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(10e9),
		kgo.HeartbeatInterval(1e9),
		// At the start of an (eager) rebalance the writer's partition is
		// revoked: stop writing until the new generation names a writer,
		// so two instances never both believe they write.
		kgo.OnPartitionsRevoked(func(context.Context, *kgo.Client, map[string][]int32) { e.setLeader("") }),
		kgo.OnPartitionsLost(func(context.Context, *kgo.Client, map[string][]int32) { e.setLeader("") }),
	}, brokers...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("serde/registry: election client: %w", err)
	}
	cl.PauseFetchTopics(topic)
	e.cl = cl
	return e, nil
}

// run keeps the group membership alive until ctx ends.
func (e *election) run(ctx context.Context) {
	for ctx.Err() == nil {
		// The topic is paused: this only returns on errors or when ctx ends,
		// but polling keeps the group consumer going.
		e.cl.PollFetches(ctx)
	}
}

func (e *election) setLeader(url string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.leader != url {
		e.mu.leader = url
		close(e.mu.changed)
		e.mu.changed = make(chan struct{})
	}
}

// changedSince returns a channel closed when the leader changes.
func (e *election) changes() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mu.changed
}

// leader waits until a writer is known and returns its URL.
func (e *election) leader(ctx context.Context) (string, error) {
	for {
		e.mu.Lock()
		l, ch := e.mu.leader, e.mu.changed
		e.mu.Unlock()
		if l != "" {
			return l, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return "", fmt.Errorf("serde/registry: no elected writer: %w", ctx.Err())
		}
	}
}

func (e *election) close() {
	e.cl.LeaveGroup()
	e.cl.Close()
}

// ProtocolName implements kgo.GroupBalancer.
func (e *election) ProtocolName() string { return "sluice-registry" }

// IsCooperative implements kgo.GroupBalancer.
func (e *election) IsCooperative() bool { return false }

// JoinGroupMetadata implements kgo.GroupBalancer.
func (e *election) JoinGroupMetadata(topics []string, _ map[string][]int32, _ int32) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = topics
	m.UserData, _ = json.Marshal(leaderInfo{URL: e.url})
	return m.AppendTo(nil)
}

// ParseSyncAssignment implements kgo.GroupBalancer: it learns the writer.
func (e *election) ParseSyncAssignment(b []byte) (map[string][]int32, error) {
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(b); err != nil {
		return nil, fmt.Errorf("serde/registry: bad assignment: %w", err)
	}
	var li leaderInfo
	if err := json.Unmarshal(a.UserData, &li); err != nil {
		return nil, fmt.Errorf("serde/registry: bad assignment user data: %w", err)
	}
	e.setLeader(li.URL)
	out := map[string][]int32{}
	for _, t := range a.Topics {
		out[t.Topic] = t.Partitions
	}
	return out, nil
}

// MemberBalancer implements kgo.GroupBalancer.
func (e *election) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	type cand struct{ id, url string }
	var cands []cand
	for _, m := range members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.ProtocolMetadata); err != nil {
			continue
		}
		var li leaderInfo
		if json.Unmarshal(md.UserData, &li) != nil || li.URL == "" {
			continue
		}
		cands = append(cands, cand{m.MemberID, li.URL})
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].id < cands[j].id })
	plan := &electionPlan{topic: e.topic}
	if len(cands) > 0 {
		plan.leaderID, plan.leaderURL = cands[0].id, cands[0].url
	}
	for _, m := range members {
		plan.members = append(plan.members, m.MemberID)
	}
	return plan, map[string]struct{}{e.topic: {}}, nil
}

type electionPlan struct {
	topic               string
	members             []string
	leaderID, leaderURL string
}

func (p *electionPlan) Balance(map[string]int32) kgo.IntoSyncAssignment { return p }

func (p *electionPlan) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment {
	ud, _ := json.Marshal(leaderInfo{URL: p.leaderURL})
	var out []kmsg.SyncGroupRequestGroupAssignment
	for _, id := range p.members {
		a := kmsg.NewConsumerMemberAssignment()
		a.UserData = ud
		if id == p.leaderID {
			t := kmsg.NewConsumerMemberAssignmentTopic()
			t.Topic, t.Partitions = p.topic, []int32{0}
			a.Topics = append(a.Topics, t)
		}
		sa := kmsg.NewSyncGroupRequestGroupAssignment()
		sa.MemberID, sa.MemberAssignment = id, a.AppendTo(nil)
		out = append(out, sa)
	}
	return out
}
