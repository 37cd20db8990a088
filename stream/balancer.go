package stream

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// taskBalancer assigns tasks, not partitions: every source partition of a
// task (all topics of its sub-topology, same partition number) goes to the
// same member, which co-partitioned joins and merges need. Assignment is
// sticky: a task stays with the member that had it while that member is
// under its fair share, so state rarely moves. The protocol is eager.
type taskBalancer struct {
	topo  *Topology
	subOf map[string]int
}

const taskProtocol = "sluice-streams"

func (b *taskBalancer) ProtocolName() string { return taskProtocol }
func (b *taskBalancer) IsCooperative() bool  { return false }

type taskUserData struct {
	Tasks []string `json:"tasks"` // "sub_partition" of the tasks the member had
}

func (b *taskBalancer) JoinGroupMetadata(interests []string, current map[string][]int32, _ int32) []byte {
	seen := map[taskID]bool{}
	var ud taskUserData
	for topic, ps := range current {
		sub, ok := b.subOf[topic]
		if !ok {
			continue
		}
		for _, p := range ps {
			id := taskID{sub: sub, partition: p}
			if !seen[id] {
				seen[id] = true
				ud.Tasks = append(ud.Tasks, id.String())
			}
		}
	}
	slices.Sort(ud.Tasks)
	data, _ := json.Marshal(ud)
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = interests
	meta.UserData = data
	return meta.AppendTo(nil)
}

func (b *taskBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	return kgo.ParseConsumerSyncAssignment(assignment)
}

func (b *taskBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	if err != nil {
		return nil, nil, err
	}
	return cb, cb.MemberTopics(), nil
}

// Balance implements kgo.ConsumerBalancerBalance.
func (b *taskBalancer) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	plan := cb.NewPlan()
	members := cb.Members()
	if len(members) == 0 {
		return plan
	}
	// Tasks: per sub-topology, as many as its largest source topic.
	subTopics := map[int][]string{}
	for topic, sub := range b.subOf {
		if _, ok := topics[topic]; ok {
			subTopics[sub] = append(subTopics[sub], topic)
		}
	}
	var tasks []taskID
	subs := make([]int, 0, len(subTopics))
	for s := range subTopics {
		subs = append(subs, s)
	}
	sort.Ints(subs)
	for _, s := range subs {
		var n int32
		for _, t := range subTopics[s] {
			n = max(n, topics[t])
		}
		for p := range n {
			tasks = append(tasks, taskID{sub: s, partition: p})
		}
	}
	// Members sorted by id for determinism; previous owners from user data.
	order := make([]int, len(members))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(i, j int) bool { return members[order[i]].MemberID < members[order[j]].MemberID })
	prev := map[taskID]int{}
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		var ud taskUserData
		if json.Unmarshal(meta.UserData, &ud) != nil {
			return
		}
		idx := slices.IndexFunc(members, func(o kmsg.JoinGroupResponseMember) bool { return o.MemberID == m.MemberID })
		for _, s := range ud.Tasks {
			var id taskID
			if _, err := fmtSscan(s, &id); err == nil {
				if _, taken := prev[id]; !taken {
					prev[id] = idx
				}
			}
		}
	})
	quota := (len(tasks) + len(members) - 1) / len(members)
	load := make([]int, len(members))
	owner := map[taskID]int{}
	for _, t := range tasks {
		if m, ok := prev[t]; ok && load[m] < quota {
			owner[t] = m
			load[m]++
		}
	}
	for _, t := range tasks {
		if _, ok := owner[t]; ok {
			continue
		}
		best := order[0]
		for _, m := range order {
			if load[m] < load[best] {
				best = m
			}
		}
		owner[t] = best
		load[best]++
	}
	for _, t := range tasks {
		m := &members[owner[t]]
		for _, topic := range subTopics[t.sub] {
			if t.partition < topics[topic] {
				plan.AddPartition(m, topic, t.partition)
			}
		}
	}
	return plan
}

// fmtSscan parses a task id written by taskID.String ("sub_partition").
func fmtSscan(s string, id *taskID) (int, error) {
	var sub, p int
	n, err := fmt.Sscanf(s, "%d_%d", &sub, &p)
	id.sub, id.partition = sub, int32(p)
	return n, err
}
