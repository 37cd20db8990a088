package group

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/broker/internal/records"
)

func (g *group) setOffsetLocked(topic string, p int32, o offset) {
	g.offsets[topicPartition{topic, p}] = o
}

func (g *group) deleteOffsetLocked(topic string, p int32) {
	delete(g.offsets, topicPartition{topic, p})
}

func offsetKey(group, topic string, p int32) []byte {
	k := kmsg.OffsetCommitKey{Version: 1, Group: group, Topic: topic, Partition: p}
	return k.AppendTo(nil)
}

func groupKey(group string) []byte {
	k := kmsg.GroupMetadataKey{Version: 2, Group: group}
	return k.AppendTo(nil)
}

// appendLocked writes records for this group to its offsets partition.
func (g *group) appendLocked(kvs []records.KV) error {
	if len(kvs) == 0 {
		return nil
	}
	st := g.c.store
	batch := records.AppendBatch(nil, records.BatchSpec{
		Timestamp: g.c.cfg.Now().UnixMilli(), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
	}, kvs)
	return st.Append(Partition(g.id, st.Partitions()), batch)
}

// persistLocked writes the group's membership (GroupMetadataValue v3).
func (g *group) persistLocked() error {
	v := kmsg.NewGroupMetadataValue()
	v.Version = 3
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		p := g.protocol
		v.Protocol = &p
	}
	if g.leader != "" {
		l := g.leader
		v.Leader = &l
	}
	v.CurrentStateTimestamp = g.stateSince.UnixMilli()
	for _, m := range g.members {
		v.Members = append(v.Members, kmsg.GroupMetadataValueMember{
			MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost,
			RebalanceTimeoutMillis: int32(m.rebalanceTimeout / time.Millisecond),
			SessionTimeoutMillis:   int32(m.sessionTimeout / time.Millisecond),
			Subscription:           m.metadataFor(g.protocol), Assignment: m.assignment,
		})
	}
	return g.appendLocked([]records.KV{{Key: groupKey(g.id), Value: v.AppendTo(nil)}})
}

// OffsetCommit handles an OffsetCommit request.
func (c *Coordinator) OffsetCommit(req *kmsg.OffsetCommitRequest, partitionExists func(topic string, p int32) bool) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	code := c.offsetCommitCheck(req)
	var g *group
	if code == 0 {
		g = c.get(req.Group, true)
		if g == nil {
			code = kerr.CoordinatorNotAvailable.Code
		}
	}
	type entry struct {
		ti, pi int
		tp     topicPartition
		o      offset
	}
	var kvs []records.KV
	var entries []entry
	now := c.cfg.Now()
	if g != nil {
		g.mu.Lock()
		defer g.mu.Unlock()
		code = g.commitAllowedLocked(req)
	}
	for ti, rt := range req.Topics {
		st := kmsg.OffsetCommitResponseTopic{Topic: rt.Topic}
		for pi, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			if code != 0 {
				sp.ErrorCode = code
			} else if o, kv, ec := c.commitEntry(req.Group, rt.Topic, rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata,
				req.GetVersion() >= 6, now, partitionExists); ec != 0 {
				sp.ErrorCode = ec
			} else {
				kvs = append(kvs, kv)
				entries = append(entries, entry{ti, pi, topicPartition{rt.Topic, rp.Partition}, o})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(entries) == 0 {
		return resp
	}
	if err := g.appendLocked(kvs); err != nil {
		c.cfg.Logger.Error("write committed offsets", "group", req.Group, "err", err)
		for _, e := range entries {
			resp.Topics[e.ti].Partitions[e.pi].ErrorCode = kerr.CoordinatorNotAvailable.Code
		}
		return resp
	}
	for _, e := range entries {
		g.offsets[e.tp] = e.o
	}
	if len(g.members) == 0 && g.state == Empty {
		g.stateSince = now // an offsets-only group lives as long as its commits are fresh
	}
	return resp
}

// commitEntry checks one partition of an offset commit (plain or
// transactional) and builds its stored record: the offset, the
// __consumer_offsets key/value, or a Kafka error code. withEpoch says
// whether the request version carries leader epochs.
func (c *Coordinator) commitEntry(group, topic string, p int32, off int64, epoch int32, md *string, withEpoch bool,
	now time.Time, partitionExists func(string, int32) bool) (offset, records.KV, int16) {
	switch {
	case !partitionExists(topic, p):
		return offset{}, records.KV{}, kerr.UnknownTopicOrPartition.Code
	case md != nil && len(*md) > c.cfg.MaxMetadataBytes:
		return offset{}, records.KV{}, kerr.OffsetMetadataTooLarge.Code
	}
	o := offset{offset: off, leaderEpoch: epoch, committed: now}
	if !withEpoch {
		o.leaderEpoch = -1
	}
	if md != nil {
		o.metadata = *md
	}
	v := kmsg.NewOffsetCommitValue()
	v.Version = 3
	v.Offset, v.LeaderEpoch, v.Metadata, v.CommitTimestamp = o.offset, o.leaderEpoch, o.metadata, now.UnixMilli()
	return o, records.KV{Key: offsetKey(group, topic, p), Value: v.AppendTo(nil)}, 0
}

func (c *Coordinator) offsetCommitCheck(req *kmsg.OffsetCommitRequest) int16 {
	if req.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	return 0
}

// commitAllowedLocked applies Kafka's rules for who may commit: anyone when
// the group has no members and the request carries no generation (the
// "simple" consumer and admin tools), otherwise only a member of the current
// generation.
func (g *group) commitAllowedLocked(req *kmsg.OffsetCommitRequest) int16 {
	if g.dead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if req.Generation < 0 && req.MemberID == "" {
		if len(g.members) == 0 {
			return 0
		}
		return kerr.UnknownMemberID.Code
	}
	m := g.members[req.MemberID]
	switch {
	case g.fencedLocked(req.InstanceID, req.MemberID):
		return kerr.FencedInstanceID.Code
	case m == nil:
		return kerr.UnknownMemberID.Code
	case req.Generation != g.generation:
		return kerr.IllegalGeneration.Code
	case g.state == CompletingRebalance:
		return kerr.RebalanceInProgress.Code
	}
	g.resetSessionLocked(m)
	return 0
}

// OffsetFetch handles an OffsetFetch request (one group below v8, several
// from v8).
func (c *Coordinator) OffsetFetch(req *kmsg.OffsetFetchRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.GetVersion() < 8 {
		var topics []kmsg.OffsetFetchRequestGroupTopic
		for _, t := range req.Topics {
			topics = append(topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
		}
		all := req.Topics == nil && req.GetVersion() >= 2
		rg, code := c.fetchGroup(req.Group, topics, all, req.RequireStable)
		resp.ErrorCode = code
		for _, t := range rg {
			rt := kmsg.OffsetFetchResponseTopic{Topic: t.Topic}
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, kmsg.OffsetFetchResponseTopicPartition{
					Partition: p.Partition, Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: p.Metadata, ErrorCode: p.ErrorCode,
				})
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	for _, rg := range req.Groups {
		topics, code := c.fetchGroup(rg.Group, rg.Topics, rg.Topics == nil, req.RequireStable)
		resp.Groups = append(resp.Groups, kmsg.OffsetFetchResponseGroup{Group: rg.Group, Topics: topics, ErrorCode: code})
	}
	return resp
}

func (c *Coordinator) fetchGroup(id string, topics []kmsg.OffsetFetchRequestGroupTopic, all, requireStable bool) ([]kmsg.OffsetFetchResponseGroupTopic, int16) {
	if id == "" {
		return nil, kerr.InvalidGroupID.Code
	}
	g := c.get(id, false)
	var offs map[topicPartition]offset
	var unstable map[topicPartition]bool
	if g != nil {
		g.mu.Lock()
		offs = make(map[topicPartition]offset, len(g.offsets))
		for k, v := range g.offsets {
			offs[k] = v
		}
		if requireStable {
			for _, m := range g.txnOffsets {
				for tp := range m {
					if unstable == nil {
						unstable = map[topicPartition]bool{}
					}
					unstable[tp] = true
				}
			}
		}
		g.mu.Unlock()
	}
	part := func(topic string, p int32) kmsg.OffsetFetchResponseGroupTopicPartition {
		rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		rp.Partition = p
		rp.Offset, rp.LeaderEpoch = -1, -1
		empty := ""
		rp.Metadata = &empty
		if unstable[topicPartition{topic, p}] {
			// KIP-447: a transaction holds offsets for this partition;
			// the client retries until it completes.
			rp.ErrorCode = kerr.UnstableOffsetCommit.Code
			return rp
		}
		if o, ok := offs[topicPartition{topic, p}]; ok {
			rp.Offset, rp.LeaderEpoch = o.offset, o.leaderEpoch
			md := o.metadata
			rp.Metadata = &md
		}
		return rp
	}
	var out []kmsg.OffsetFetchResponseGroupTopic
	if all {
		byTopic := map[string][]int32{}
		for tp := range offs {
			byTopic[tp.topic] = append(byTopic[tp.topic], tp.partition)
		}
		names := make([]string, 0, len(byTopic))
		for t := range byTopic {
			names = append(names, t)
		}
		slices.Sort(names)
		for _, t := range names {
			ps := byTopic[t]
			slices.Sort(ps)
			rt := kmsg.OffsetFetchResponseGroupTopic{Topic: t}
			for _, p := range ps {
				rt.Partitions = append(rt.Partitions, part(t, p))
			}
			out = append(out, rt)
		}
		return out, 0
	}
	for _, t := range topics {
		rt := kmsg.OffsetFetchResponseGroupTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			rt.Partitions = append(rt.Partitions, part(t.Topic, p))
		}
		out = append(out, rt)
	}
	return out, 0
}

// OffsetDelete handles an OffsetDelete request: offsets of topics the
// group's members are not subscribed to (or of an empty group) are deleted.
func (c *Coordinator) OffsetDelete(req *kmsg.OffsetDeleteRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	g := c.get(req.Group, false)
	if g == nil {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dead {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
	subscribed := g.subscribedTopicsLocked()
	var kvs []records.KV
	var del []topicPartition
	for _, rt := range req.Topics {
		st := kmsg.OffsetDeleteResponseTopic{Topic: rt.Topic}
		for _, rp := range rt.Partitions {
			sp := kmsg.OffsetDeleteResponseTopicPartition{Partition: rp.Partition}
			if subscribed[rt.Topic] {
				sp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			} else if _, ok := g.offsets[topicPartition{rt.Topic, rp.Partition}]; ok {
				kvs = append(kvs, records.KV{Key: offsetKey(g.id, rt.Topic, rp.Partition)})
				del = append(del, topicPartition{rt.Topic, rp.Partition})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if err := g.appendLocked(kvs); err != nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		resp.Topics = nil
		return resp
	}
	for _, tp := range del {
		delete(g.offsets, tp)
	}
	return resp
}

// subscribedTopicsLocked returns the topics members of a consumer group are
// subscribed to (from their consumer protocol metadata).
func (g *group) subscribedTopicsLocked() map[string]bool {
	out := map[string]bool{}
	if g.protocolType != "consumer" {
		return out
	}
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if md.ReadFrom(m.metadataFor(g.protocol)) != nil {
			continue
		}
		for _, t := range md.Topics {
			out[t] = true
		}
	}
	return out
}

// ExpireOffsets deletes the offsets of groups that have been empty for
// offsets.retention.minutes, and those groups (Kafka's rule since KIP-211).
// It returns how many groups were removed.
func (c *Coordinator) ExpireOffsets() int {
	now := c.cfg.Now()
	n := 0
	for _, g := range c.groupsSnapshot() {
		g.mu.Lock()
		if g.dead || len(g.members) > 0 || g.state != Empty || now.Sub(g.stateSince) < c.cfg.OffsetsRetention {
			g.mu.Unlock()
			continue
		}
		if err := g.deleteLocked(); err != nil {
			c.cfg.Logger.Error("expire group offsets", "group", g.id, "err", err)
		} else {
			c.cfg.Logger.Info("expired offsets of an empty group", "group", g.id)
			n++
		}
		g.mu.Unlock()
	}
	return n
}

// deleteLocked writes tombstones for everything of the group and marks it
// dead.
func (g *group) deleteLocked() error {
	kvs := []records.KV{{Key: groupKey(g.id)}}
	for tp := range g.offsets {
		kvs = append(kvs, records.KV{Key: offsetKey(g.id, tp.topic, tp.partition)})
	}
	if err := g.appendLocked(kvs); err != nil {
		return err
	}
	g.offsets = map[topicPartition]offset{}
	g.shutdownLocked()
	g.setStateLocked(Dead)
	g.c.forget(g)
	return nil
}

// DeleteGroups handles a DeleteGroups request.
func (c *Coordinator) DeleteGroups(req *kmsg.DeleteGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, id := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = id
		g := c.get(id, false)
		if g == nil {
			rg.ErrorCode = kerr.GroupIDNotFound.Code
		} else {
			g.mu.Lock()
			switch {
			case g.dead:
				rg.ErrorCode = kerr.GroupIDNotFound.Code
			case len(g.members) > 0:
				rg.ErrorCode = kerr.NonEmptyGroup.Code
			default:
				if err := g.deleteLocked(); err != nil {
					rg.ErrorCode = kerr.CoordinatorNotAvailable.Code
					msg := err.Error()
					rg.ErrorMessage = &msg
				}
			}
			g.mu.Unlock()
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

// DescribeGroups handles a DescribeGroups request.
func (c *Coordinator) DescribeGroups(req *kmsg.DescribeGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group = id
		rg.State = string(Dead)
		rg.AuthorizedOperations = -2147483648
		if g := c.get(id, false); g != nil {
			g.mu.Lock()
			if !g.dead {
				rg.State = string(g.state)
				rg.ProtocolType = g.protocolType
				if g.state == Stable {
					rg.Protocol = g.protocol
				}
				ms := make([]*member, 0, len(g.members))
				for _, m := range g.members {
					ms = append(ms, m)
				}
				slices.SortFunc(ms, func(a, b *member) int { return strings.Compare(a.id, b.id) })
				for _, m := range ms {
					rm := kmsg.NewDescribeGroupsResponseGroupMember()
					rm.MemberID, rm.InstanceID, rm.ClientID, rm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
					if g.state == Stable {
						rm.ProtocolMetadata = m.metadataFor(g.protocol)
						rm.MemberAssignment = m.assignment
					}
					rg.Members = append(rg.Members, rm)
				}
			}
			g.mu.Unlock()
		}
		if id == "" {
			rg.ErrorCode = kerr.InvalidGroupID.Code
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

// ListGroups handles a ListGroups request.
func (c *Coordinator) ListGroups(req *kmsg.ListGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	for _, g := range c.groupsSnapshot() {
		g.mu.Lock()
		state, pt, dead := g.state, g.protocolType, g.dead
		g.mu.Unlock()
		if dead {
			continue
		}
		if len(req.StatesFilter) > 0 && !slices.ContainsFunc(req.StatesFilter, func(s string) bool { return strings.EqualFold(s, string(state)) }) {
			continue
		}
		if len(req.TypesFilter) > 0 && !slices.ContainsFunc(req.TypesFilter, func(s string) bool { return strings.EqualFold(s, "classic") }) {
			continue
		}
		rg := kmsg.NewListGroupsResponseGroup()
		rg.Group, rg.ProtocolType, rg.GroupState, rg.GroupType = g.id, pt, string(state), "classic"
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

// DeleteTopicOffsets drops every group's committed offsets of a deleted
// topic, as Kafka does.
func (c *Coordinator) DeleteTopicOffsets(topic string) error {
	var errs []error
	for _, g := range c.groupsSnapshot() {
		g.mu.Lock()
		var kvs []records.KV
		var del []topicPartition
		for tp := range g.offsets {
			if tp.topic == topic {
				kvs = append(kvs, records.KV{Key: offsetKey(g.id, tp.topic, tp.partition)})
				del = append(del, tp)
			}
		}
		if err := g.appendLocked(kvs); err != nil {
			errs = append(errs, fmt.Errorf("group %s: %w", g.id, err))
		} else {
			for _, tp := range del {
				delete(g.offsets, tp)
			}
		}
		g.mu.Unlock()
	}
	return errors.Join(errs...)
}
