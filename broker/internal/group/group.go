package group

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// State is a group's state, named as Kafka names them in DescribeGroups.
type State string

// Group states.
const (
	Empty               State = "Empty"
	PreparingRebalance  State = "PreparingRebalance"
	CompletingRebalance State = "CompletingRebalance"
	Stable              State = "Stable"
	Dead                State = "Dead"
)

type protocol struct {
	name     string
	metadata []byte
}

type member struct {
	id         string
	instanceID *string
	clientID   string
	clientHost string

	protocols        []protocol
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	assignment       []byte

	joinVersion int16
	join        chan *kmsg.JoinGroupResponse // pending JoinGroup, nil if none
	sync        chan *kmsg.SyncGroupResponse // pending SyncGroup, nil if none
	session     *time.Timer
	joinedAt    int64 // order of first join, to pick a leader deterministically
}

func (m *member) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.name == name {
			return p.metadata
		}
	}
	return nil
}

type topicPartition struct {
	topic     string
	partition int32
}

type offset struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	committed   time.Time
}

type group struct {
	c  *Coordinator
	id string

	mu           sync.Mutex
	state        State
	stateSince   time.Time
	protocolType string
	protocol     string
	generation   int32
	leader       string
	members      map[string]*member
	instances    map[string]string    // static instance id -> member id
	pending      map[string]time.Time // KIP-394 member ids handed out, not yet joined
	rebalance    *time.Timer
	joinSeq      int64
	offsets      map[topicPartition]offset
	// txnOffsets holds, per producer id, the offsets committed inside its
	// ongoing transaction (TxnOffsetCommit): materialised into offsets
	// when the transaction commits, dropped when it aborts.
	txnOffsets map[int64]map[topicPartition]offset
	dead       bool
}

func newGroup(c *Coordinator, id string) *group {
	return &group{
		c: c, id: id, state: Empty, stateSince: c.cfg.Now(),
		members: map[string]*member{}, instances: map[string]string{}, pending: map[string]time.Time{},
		offsets: map[topicPartition]offset{}, txnOffsets: map[int64]map[topicPartition]offset{},
	}
}

func (g *group) setStateLocked(s State) {
	g.state = s
	g.stateSince = g.c.cfg.Now()
}

func (g *group) emptyOfEverythingLocked() bool {
	return len(g.members) == 0 && len(g.offsets) == 0 && len(g.txnOffsets) == 0 && g.generation == 0
}

// resetLocked forgets the group's membership (a tombstone of its metadata).
func (g *group) resetLocked() {
	for _, m := range g.members {
		g.stopMemberLocked(m)
	}
	g.members = map[string]*member{}
	g.instances = map[string]string{}
	g.protocolType, g.protocol, g.leader = "", "", ""
	g.generation = 0
	g.setStateLocked(Empty)
}

// restoreLocked rebuilds membership from a GroupMetadataValue.
func (g *group) restoreLocked(v *kmsg.GroupMetadataValue, now time.Time) {
	g.resetLocked()
	g.protocolType = v.ProtocolType
	g.generation = v.Generation
	if v.Protocol != nil {
		g.protocol = *v.Protocol
	}
	if v.Leader != nil {
		g.leader = *v.Leader
	}
	for _, vm := range v.Members {
		g.joinSeq++
		m := &member{
			id: vm.MemberID, instanceID: vm.InstanceID, clientID: vm.ClientID, clientHost: vm.ClientHost,
			protocols:        []protocol{{name: g.protocol, metadata: vm.Subscription}},
			sessionTimeout:   time.Duration(vm.SessionTimeoutMillis) * time.Millisecond,
			rebalanceTimeout: time.Duration(vm.RebalanceTimeoutMillis) * time.Millisecond,
			assignment:       vm.Assignment, joinedAt: g.joinSeq,
		}
		g.members[m.id] = m
		if m.instanceID != nil {
			g.instances[*m.instanceID] = m.id
		}
	}
	if len(g.members) > 0 {
		g.setStateLocked(Stable)
	} else {
		g.setStateLocked(Empty)
	}
	if v.CurrentStateTimestamp > 0 {
		g.stateSince = time.UnixMilli(v.CurrentStateTimestamp)
	}
}

func (g *group) shutdownLocked() {
	for _, m := range g.members {
		if m.join != nil {
			r := g.joinResponse(m.joinVersion, kerr.CoordinatorNotAvailable.Code)
			m.join <- r
			m.join = nil
		}
		if m.sync != nil {
			m.sync <- syncError(kerr.CoordinatorNotAvailable.Code)
			m.sync = nil
		}
		if m.session != nil {
			m.session.Stop()
		}
	}
	if g.rebalance != nil {
		g.rebalance.Stop()
	}
	g.dead = true
}

func (g *group) stopMemberLocked(m *member) {
	if m.session != nil {
		m.session.Stop()
		m.session = nil
	}
	if m.join != nil {
		m.join <- g.joinResponse(m.joinVersion, kerr.UnknownMemberID.Code)
		m.join = nil
	}
	if m.sync != nil {
		m.sync <- syncError(kerr.UnknownMemberID.Code)
		m.sync = nil
	}
}

// resetSessionLocked (re)arms a member's session timer.
func (g *group) resetSessionLocked(m *member) {
	if m.session != nil {
		m.session.Stop()
	}
	d := m.sessionTimeout
	if d <= 0 {
		d = g.c.cfg.MinSessionTimeout
	}
	m.session = time.AfterFunc(d, func() { g.expire(m) })
}

// expire removes a member whose session timed out.
func (g *group) expire(m *member) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dead || g.members[m.id] != m {
		return
	}
	if m.join != nil {
		// A member waiting in a join is alive; the rebalance timeout
		// decides for it.
		return
	}
	g.c.cfg.Logger.Info("group member session expired", "group", g.id, "member", m.id)
	g.removeMemberLocked(m)
}

func (g *group) removeMemberLocked(m *member) {
	g.stopMemberLocked(m)
	delete(g.members, m.id)
	if m.instanceID != nil && g.instances[*m.instanceID] == m.id {
		delete(g.instances, *m.instanceID)
	}
	switch g.state {
	case Stable, CompletingRebalance:
		g.prepareRebalanceLocked()
	case PreparingRebalance:
		g.maybeCompleteJoinLocked()
	}
}

func syncError(code int16) *kmsg.SyncGroupResponse {
	r := kmsg.NewPtrSyncGroupResponse()
	r.ErrorCode = code
	return r
}

func (g *group) joinResponse(version int16, code int16) *kmsg.JoinGroupResponse {
	r := kmsg.NewPtrJoinGroupResponse()
	r.SetVersion(version)
	r.ErrorCode = code
	r.Generation = -1
	return r
}

// selectProtocol picks the protocol every member supports that most members
// prefer (Kafka's vote), ties broken by the leader's order.
func (g *group) selectProtocolLocked() string {
	var candidates []string
	first := true
	for _, m := range g.members {
		var names []string
		for _, p := range m.protocols {
			names = append(names, p.name)
		}
		if first {
			candidates = names
			first = false
			continue
		}
		candidates = slices.DeleteFunc(candidates, func(n string) bool { return !slices.Contains(names, n) })
	}
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if slices.Contains(candidates, p.name) {
				votes[p.name]++
				break
			}
		}
	}
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

// supportsLocked reports whether protocols intersect what every member
// supports (so the member can join without breaking the group).
func (g *group) supportsLocked(ps []protocol, except string) bool {
	for _, p := range ps {
		ok := true
		for _, m := range g.members {
			if m.id == except {
				continue
			}
			if !slices.ContainsFunc(m.protocols, func(q protocol) bool { return q.name == p.name }) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (g *group) prepareRebalanceLocked() {
	if g.state == CompletingRebalance {
		// Members waiting for their assignment must rejoin.
		for _, m := range g.members {
			if m.sync != nil {
				m.sync <- syncError(kerr.RebalanceInProgress.Code)
				m.sync = nil
			}
		}
	}
	g.setStateLocked(PreparingRebalance)
	if g.rebalance == nil {
		var d time.Duration
		for _, m := range g.members {
			d = max(d, m.rebalanceTimeout)
		}
		if d <= 0 {
			d = g.c.cfg.MinSessionTimeout
		}
		g.rebalance = time.AfterFunc(d, func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.rebalance = nil
			if !g.dead && g.state == PreparingRebalance {
				g.completeJoinLocked()
			}
		})
	}
	g.maybeCompleteJoinLocked()
}

func (g *group) maybeCompleteJoinLocked() {
	for _, m := range g.members {
		if m.join == nil {
			return
		}
	}
	g.completeJoinLocked()
}

// completeJoinLocked ends the join phase: members that did not rejoin are
// removed, the generation advances, a protocol and a leader are chosen, and
// every waiting member gets its JoinGroup response.
func (g *group) completeJoinLocked() {
	if g.rebalance != nil {
		g.rebalance.Stop()
		g.rebalance = nil
	}
	for _, m := range g.members {
		if m.join == nil {
			g.c.cfg.Logger.Info("group member did not rejoin in time", "group", g.id, "member", m.id)
			g.stopMemberLocked(m)
			delete(g.members, m.id)
			if m.instanceID != nil && g.instances[*m.instanceID] == m.id {
				delete(g.instances, *m.instanceID)
			}
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.protocol, g.leader = "", ""
		g.setStateLocked(Empty)
		if err := g.persistLocked(); err != nil {
			g.c.cfg.Logger.Error("persist group", "group", g.id, "err", err)
		}
		return
	}
	g.protocol = g.selectProtocolLocked()
	if _, ok := g.members[g.leader]; !ok {
		g.leader = ""
		var first *member
		for _, m := range g.members {
			if first == nil || m.joinedAt < first.joinedAt {
				first = m
			}
		}
		g.leader = first.id
	}
	g.setStateLocked(CompletingRebalance)
	for _, m := range g.members {
		m.assignment = nil
		r := g.joinResponse(m.joinVersion, 0)
		g.fillJoinLocked(r, m)
		m.join <- r
		m.join = nil
		g.resetSessionLocked(m)
	}
}

// fillJoinLocked fills a successful JoinGroup response for m.
func (g *group) fillJoinLocked(r *kmsg.JoinGroupResponse, m *member) {
	r.Generation = g.generation
	pt, proto := g.protocolType, g.protocol
	r.ProtocolType = &pt
	r.Protocol = &proto
	r.LeaderID = g.leader
	r.MemberID = m.id
	if m.id == g.leader {
		ids := make([]*member, 0, len(g.members))
		for _, o := range g.members {
			ids = append(ids, o)
		}
		slices.SortFunc(ids, func(a, b *member) int { return int(a.joinedAt - b.joinedAt) })
		for _, o := range ids {
			r.Members = append(r.Members, kmsg.JoinGroupResponseMember{MemberID: o.id, InstanceID: o.instanceID, ProtocolMetadata: o.metadataFor(g.protocol)})
		}
	}
}

// fencedLocked reports whether a request names a static instance that now
// belongs to another member id (Kafka checks this before anything else).
func (g *group) fencedLocked(instanceID *string, memberID string) bool {
	if instanceID == nil {
		return false
	}
	id, ok := g.instances[*instanceID]
	return ok && id != memberID
}

func sameProtocols(a, b []protocol) bool {
	return slices.EqualFunc(a, b, func(x, y protocol) bool { return x.name == y.name && bytes.Equal(x.metadata, y.metadata) })
}

// Join handles a JoinGroup request. It returns the response at once, or a
// function that waits for it (until the rebalance completes or ctx ends).
func (c *Coordinator) Join(req *kmsg.JoinGroupRequest, clientID, clientHost string) (kmsg.Response, func(context.Context) kmsg.Response) {
	fail := func(code int16) (kmsg.Response, func(context.Context) kmsg.Response) {
		r := kmsg.NewPtrJoinGroupResponse()
		r.ErrorCode = code
		r.Generation = -1
		r.MemberID = req.MemberID
		return r, nil
	}
	switch st := time.Duration(req.SessionTimeoutMillis) * time.Millisecond; {
	case req.Group == "":
		return fail(kerr.InvalidGroupID.Code)
	case st < c.cfg.MinSessionTimeout || st > c.cfg.MaxSessionTimeout:
		return fail(kerr.InvalidSessionTimeout.Code)
	case req.ProtocolType == "" || len(req.Protocols) == 0:
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	g := c.get(req.Group, true)
	if g == nil {
		return fail(kerr.CoordinatorNotAvailable.Code)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dead {
		return fail(kerr.CoordinatorNotAvailable.Code)
	}
	protos := make([]protocol, len(req.Protocols))
	for i, p := range req.Protocols {
		protos[i] = protocol{name: p.Name, metadata: bytes.Clone(p.Metadata)}
	}
	if len(g.members) > 0 && req.ProtocolType != g.protocolType {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	if len(g.members) > 0 && !g.supportsLocked(protos, req.MemberID) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	version := req.GetVersion()
	var m *member
	isStatic := req.InstanceID != nil && version >= 5
	switch {
	case req.MemberID == "" && isStatic && g.instances[*req.InstanceID] != "":
		// A static member restarting: it takes over its old identity
		// under a new member id, keeping its assignment.
		old := g.members[g.instances[*req.InstanceID]]
		delete(g.members, old.id)
		if old.session != nil {
			old.session.Stop()
		}
		if old.join != nil {
			old.join <- g.joinResponse(old.joinVersion, kerr.FencedInstanceID.Code)
			old.join = nil
		}
		if old.sync != nil {
			old.sync <- syncError(kerr.FencedInstanceID.Code)
			old.sync = nil
		}
		m = old
		m.id = newMemberID(clientID)
		g.members[m.id] = m
		g.instances[*req.InstanceID] = m.id
		wasLeader := g.leader == old.id && old.id != ""
		if g.leader == "" || wasLeader {
			g.leader = m.id
		}
		changed := !sameProtocols(m.protocols, protos)
		g.updateMemberLocked(m, req, protos, clientID, clientHost)
		if g.state == Stable && !changed && !wasLeader {
			// No rebalance: hand back the current generation.
			r := g.joinResponse(version, 0)
			g.fillJoinLocked(r, m)
			g.resetSessionLocked(m)
			return r, nil
		}
	case req.MemberID == "":
		id := newMemberID(clientID)
		if version >= 4 && !isStatic {
			// KIP-394: the member must rejoin with the id it is given.
			g.pending[id] = g.c.cfg.Now()
			r := g.joinResponse(version, kerr.MemberIDRequired.Code)
			r.MemberID = id
			return r, nil
		}
		m = g.addMemberLocked(id, req, protos, clientID, clientHost)
	default:
		if isStatic && g.fencedLocked(req.InstanceID, req.MemberID) {
			return fail(kerr.FencedInstanceID.Code)
		}
		m = g.members[req.MemberID]
		if m == nil {
			if _, ok := g.pending[req.MemberID]; !ok {
				return fail(kerr.UnknownMemberID.Code)
			}
			delete(g.pending, req.MemberID)
			m = g.addMemberLocked(req.MemberID, req, protos, clientID, clientHost)
			break
		}
		changed := !sameProtocols(m.protocols, protos)
		g.updateMemberLocked(m, req, protos, clientID, clientHost)
		switch g.state {
		case Stable:
			if !changed && m.id != g.leader {
				r := g.joinResponse(version, 0)
				g.fillJoinLocked(r, m)
				g.resetSessionLocked(m)
				return r, nil
			}
		case CompletingRebalance:
			if !changed {
				r := g.joinResponse(version, 0)
				g.fillJoinLocked(r, m)
				g.resetSessionLocked(m)
				return r, nil
			}
		}
	}
	if len(g.members) == 1 && g.state == Empty {
		g.protocolType = req.ProtocolType
	}
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	if m.join != nil {
		// A retried join replaces the earlier one.
		m.join <- g.joinResponse(m.joinVersion, kerr.UnknownMemberID.Code)
	}
	m.join = ch
	m.joinVersion = version
	if g.state != PreparingRebalance {
		g.prepareRebalanceLocked()
	} else {
		g.maybeCompleteJoinLocked()
	}
	r := g.joinResponse(version, 0)
	return r, func(ctx context.Context) kmsg.Response {
		select {
		case resp := <-ch:
			return resp
		case <-ctx.Done():
			return nil
		}
	}
}

func (g *group) addMemberLocked(id string, req *kmsg.JoinGroupRequest, protos []protocol, clientID, clientHost string) *member {
	g.joinSeq++
	m := &member{id: id, joinedAt: g.joinSeq}
	g.updateMemberLocked(m, req, protos, clientID, clientHost)
	g.members[id] = m
	if m.instanceID != nil {
		g.instances[*m.instanceID] = id
	}
	if len(g.members) == 1 {
		g.protocolType = req.ProtocolType
	}
	return m
}

func (g *group) updateMemberLocked(m *member, req *kmsg.JoinGroupRequest, protos []protocol, clientID, clientHost string) {
	m.protocols = protos
	m.sessionTimeout = time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	m.rebalanceTimeout = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if req.GetVersion() == 0 {
		m.rebalanceTimeout = m.sessionTimeout
	}
	if req.InstanceID != nil && req.GetVersion() >= 5 {
		id := *req.InstanceID
		m.instanceID = &id
	}
	m.clientID, m.clientHost = clientID, clientHost
}

// Sync handles a SyncGroup request; followers wait for the leader's
// assignment.
func (c *Coordinator) Sync(req *kmsg.SyncGroupRequest) (kmsg.Response, func(context.Context) kmsg.Response) {
	fail := func(code int16) (kmsg.Response, func(context.Context) kmsg.Response) {
		return syncError(code), nil
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	g := c.get(req.Group, false)
	if g == nil {
		return fail(kerr.UnknownMemberID.Code)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.members[req.MemberID]
	switch {
	case g.dead:
		return fail(kerr.CoordinatorNotAvailable.Code)
	case g.fencedLocked(req.InstanceID, req.MemberID):
		return fail(kerr.FencedInstanceID.Code)
	case m == nil:
		return fail(kerr.UnknownMemberID.Code)
	case req.Generation != g.generation:
		return fail(kerr.IllegalGeneration.Code)
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	ok := func(assignment []byte) *kmsg.SyncGroupResponse {
		r := kmsg.NewPtrSyncGroupResponse()
		pt, p := g.protocolType, g.protocol
		r.ProtocolType, r.Protocol = &pt, &p
		r.MemberAssignment = assignment
		return r
	}
	switch g.state {
	case PreparingRebalance:
		return fail(kerr.RebalanceInProgress.Code)
	case Stable:
		g.resetSessionLocked(m)
		return ok(m.assignment), nil
	case CompletingRebalance:
	default:
		return fail(kerr.UnknownMemberID.Code)
	}
	g.resetSessionLocked(m)
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	if m.sync != nil {
		m.sync <- syncError(kerr.RebalanceInProgress.Code)
	}
	m.sync = ch
	if m.id == g.leader {
		for _, a := range req.GroupAssignment {
			if o := g.members[a.MemberID]; o != nil {
				o.assignment = bytes.Clone(a.MemberAssignment)
			}
		}
		g.setStateLocked(Stable)
		if err := g.persistLocked(); err != nil {
			g.c.cfg.Logger.Error("persist group", "group", g.id, "err", err)
			for _, o := range g.members {
				if o.sync != nil {
					o.sync <- syncError(kerr.CoordinatorNotAvailable.Code)
					o.sync = nil
				}
			}
			g.prepareRebalanceLocked()
			return syncError(kerr.CoordinatorNotAvailable.Code), nil
		}
		for _, o := range g.members {
			if o.sync != nil {
				o.sync <- ok(o.assignment)
				o.sync = nil
			}
		}
	}
	return syncError(0), func(ctx context.Context) kmsg.Response {
		select {
		case r := <-ch:
			return r
		case <-ctx.Done():
			return nil
		}
	}
}

// Heartbeat handles a Heartbeat request.
func (c *Coordinator) Heartbeat(req *kmsg.HeartbeatRequest) kmsg.Response {
	r := kmsg.NewPtrHeartbeatResponse()
	g := c.get(req.Group, false)
	if g == nil {
		r.ErrorCode = kerr.UnknownMemberID.Code
		if req.Group == "" {
			r.ErrorCode = kerr.InvalidGroupID.Code
		}
		return r
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.members[req.MemberID]
	switch {
	case g.dead:
		r.ErrorCode = kerr.CoordinatorNotAvailable.Code
	case g.fencedLocked(req.InstanceID, req.MemberID):
		r.ErrorCode = kerr.FencedInstanceID.Code
	case m == nil:
		r.ErrorCode = kerr.UnknownMemberID.Code
	case req.Generation != g.generation:
		r.ErrorCode = kerr.IllegalGeneration.Code
	case g.state == PreparingRebalance:
		g.resetSessionLocked(m)
		r.ErrorCode = kerr.RebalanceInProgress.Code
	default:
		g.resetSessionLocked(m)
	}
	return r
}

// Leave handles a LeaveGroup request.
func (c *Coordinator) Leave(req *kmsg.LeaveGroupRequest) kmsg.Response {
	r := kmsg.NewPtrLeaveGroupResponse()
	g := c.get(req.Group, false)
	leaving := req.Members
	if req.GetVersion() < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	if g == nil {
		r.ErrorCode = kerr.UnknownMemberID.Code
		if req.Group == "" {
			r.ErrorCode = kerr.InvalidGroupID.Code
		}
		return r
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dead {
		r.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return r
	}
	for _, lm := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = lm.MemberID, lm.InstanceID
		m := g.members[lm.MemberID]
		if lm.InstanceID != nil {
			id := g.instances[*lm.InstanceID]
			switch {
			case id == "":
				m = nil
			case lm.MemberID != "" && lm.MemberID != id:
				rm.ErrorCode = kerr.FencedInstanceID.Code
			default:
				m = g.members[id]
			}
		}
		if m == nil && rm.ErrorCode == 0 {
			rm.ErrorCode = kerr.UnknownMemberID.Code
		}
		if rm.ErrorCode == 0 {
			g.c.cfg.Logger.Info("group member left", "group", g.id, "member", m.id)
			g.removeMemberLocked(m)
		}
		if req.GetVersion() < 3 {
			r.ErrorCode = rm.ErrorCode
		} else {
			r.Members = append(r.Members, rm)
		}
	}
	return r
}
