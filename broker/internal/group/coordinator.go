// Package group is the broker's group coordinator for the classic consumer
// group protocol: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, DescribeGroups,
// ListGroups, DeleteGroups and committed offsets (OffsetCommit, OffsetFetch,
// OffsetDelete, TxnOffsetCommit).
//
// State lives in memory and is written to the compacted internal topic
// __consumer_offsets in Kafka's own formats (kmsg.OffsetCommitKey/Value and
// kmsg.GroupMetadataKey/Value), keyed so that compaction keeps the latest
// state; on start the coordinator replays that topic. A group's records go to
// partition abs(javaHashCode(group)) % partitions, as in Kafka.
//
// Transactional offset commits (TxnOffsetCommit, checked first by package
// txn) are kept pending per producer until the transaction's marker; see
// txn_offsets.go.
//
// Concurrency: Coordinator.mu guards the map of groups; each group has its
// own mutex guarding all of its state, held while its records are appended
// (so a group's log order is its state order). Coordinator.txn guards the
// index of groups with pending transactional offsets. Lock order:
// Coordinator.mu, then a group's mu, then Coordinator.txn; never two groups
// at once. Timers (session, rebalance)
// take the group's mu in their callbacks.
//
// Requests that must wait (a JoinGroup until the rebalance completes, a
// SyncGroup until the leader's assignment arrives) return a wait function the
// broker runs in the connection's writer goroutine.
package group

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/broker/internal/cluster"
)

// TopicName is the internal topic holding committed offsets and group
// metadata.
const TopicName = "__consumer_offsets"

// Store is where the coordinator keeps its records: the partitions of
// __consumer_offsets.
type Store interface {
	// Partitions returns the partition count of the offsets topic.
	Partitions() int32
	// Append appends one record batch to partition p (creating the topic
	// on first use) and returns once it is as durable as a produce with
	// acks=all would be.
	Append(p int32, batch []byte) error
	// Load calls fn for every record of the topic, partition by partition
	// in offset order, if the topic exists, including transaction markers.
	Load(fn func(cluster.StoredRecord)) error
}

// Config configures a Coordinator.
type Config struct {
	// MinSessionTimeout and MaxSessionTimeout are group.min.session.timeout.ms
	// (default 6s) and group.max.session.timeout.ms (default 30m).
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// OffsetsRetention is offsets.retention.minutes (default 7 days): the
	// offsets of a group that has been empty this long are deleted.
	OffsetsRetention time.Duration
	// MaxMetadataBytes is offset.metadata.max.bytes (default 4096).
	MaxMetadataBytes int
	Logger           *slog.Logger
	Now              func() time.Time
}

func (c *Config) ensureDefaults() {
	if c.MinSessionTimeout <= 0 {
		c.MinSessionTimeout = 6 * time.Second
	}
	if c.MaxSessionTimeout <= 0 {
		c.MaxSessionTimeout = 30 * time.Minute
	}
	if c.OffsetsRetention <= 0 {
		c.OffsetsRetention = 7 * 24 * time.Hour
	}
	if c.MaxMetadataBytes <= 0 {
		c.MaxMetadataBytes = 4096
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Coordinator coordinates every group of this broker.
type Coordinator struct {
	cfg   Config
	store Store

	mu struct {
		sync.Mutex
		groups map[string]*group
		closed bool
	}
	// txn maps a producer id to the groups holding offsets committed in
	// its ongoing transaction. Lock order: after a group's mu.
	txn struct {
		sync.Mutex
		groups map[int64]map[string]struct{}
	}
}

// New loads the groups and offsets kept in store.
func New(cfg Config, store Store) (*Coordinator, error) {
	cfg.ensureDefaults()
	c := &Coordinator{cfg: cfg, store: store}
	c.mu.groups = map[string]*group{}
	c.txn.groups = map[int64]map[string]struct{}{}
	if err := c.load(); err != nil {
		return nil, fmt.Errorf("broker/group: load %s: %w", TopicName, err)
	}
	return c, nil
}

// Close stops every timer. Pending joins and syncs are answered with
// COORDINATOR_NOT_AVAILABLE so that clients look for the coordinator again.
func (c *Coordinator) Close() {
	c.mu.Lock()
	c.mu.closed = true
	groups := make([]*group, 0, len(c.mu.groups))
	for _, g := range c.mu.groups {
		groups = append(groups, g)
	}
	c.mu.Unlock()
	for _, g := range groups {
		g.mu.Lock()
		g.shutdownLocked()
		g.mu.Unlock()
	}
}

// get returns the group, creating it (Empty) if create is set.
func (c *Coordinator) get(id string, create bool) *group {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.mu.groups[id]
	if g == nil && create && !c.mu.closed {
		g = newGroup(c, id)
		c.mu.groups[id] = g
	}
	return g
}

// forget removes a dead group from the map.
func (c *Coordinator) forget(g *group) {
	c.mu.Lock()
	if c.mu.groups[g.id] == g {
		delete(c.mu.groups, g.id)
	}
	c.mu.Unlock()
}

func (c *Coordinator) groupsSnapshot() []*group {
	c.mu.Lock()
	defer c.mu.Unlock()
	gs := make([]*group, 0, len(c.mu.groups))
	for _, g := range c.mu.groups {
		gs = append(gs, g)
	}
	slices.SortFunc(gs, func(a, b *group) int { return strings.Compare(a.id, b.id) })
	return gs
}

// HasGroups reports whether any group exists (then __consumer_offsets is
// in use).
func (c *Coordinator) HasGroups() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.mu.groups) > 0
}

// Partition returns the offsets-topic partition of a group, as Kafka
// computes it: abs(String.hashCode) % partitions.
func Partition(group string, partitions int32) int32 {
	var h int32
	for _, r := range utf16(group) {
		h = 31*h + int32(r)
	}
	if h == -1<<31 {
		return 0
	}
	if h < 0 {
		h = -h
	}
	return h % partitions
}

// utf16 returns the UTF-16 code units of s, what Java's hashCode runs over.
func utf16(s string) []uint16 {
	out := make([]uint16, 0, len(s))
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			out = append(out, uint16(0xd800+(r>>10)), uint16(0xdc00+(r&0x3ff)))
			continue
		}
		out = append(out, uint16(r))
	}
	return out
}

func newMemberID(clientID string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	if clientID == "" {
		clientID = "member"
	}
	return clientID + "-" + hex.EncodeToString(b[:4]) + "-" + hex.EncodeToString(b[4:6]) + "-" + hex.EncodeToString(b[6:8]) + "-" + hex.EncodeToString(b[8:10]) + "-" + hex.EncodeToString(b[10:])
}

// load replays __consumer_offsets.
func (c *Coordinator) load() error {
	now := c.cfg.Now()
	err := c.store.Load(func(r cluster.StoredRecord) {
		key, value := r.Key, r.Value
		if r.Control {
			c.CompleteTxn(r.Partition, r.ProducerID, r.Commit)
			return
		}
		if len(key) < 2 {
			return
		}
		switch v := int16(key[0])<<8 | int16(key[1]); v {
		case 0, 1:
			var k kmsg.OffsetCommitKey
			if k.ReadFrom(key) != nil {
				return
			}
			g := c.get(k.Group, true)
			g.mu.Lock()
			defer g.mu.Unlock()
			if value == nil {
				g.deleteOffsetLocked(k.Topic, k.Partition)
				return
			}
			var val kmsg.OffsetCommitValue
			if val.ReadFrom(value) != nil {
				return
			}
			o := offset{
				offset: val.Offset, leaderEpoch: val.LeaderEpoch, metadata: val.Metadata,
				committed: time.UnixMilli(val.CommitTimestamp),
			}
			if r.Transactional && r.ProducerID >= 0 {
				g.addTxnOffsetLocked(r.ProducerID, topicPartition{k.Topic, k.Partition}, o)
				return
			}
			g.setOffsetLocked(k.Topic, k.Partition, o)
		case 2:
			var k kmsg.GroupMetadataKey
			if k.ReadFrom(key) != nil {
				return
			}
			g := c.get(k.Group, true)
			g.mu.Lock()
			defer g.mu.Unlock()
			if value == nil {
				g.resetLocked()
				return
			}
			var val kmsg.GroupMetadataValue
			if val.ReadFrom(value) != nil {
				return
			}
			g.restoreLocked(&val, now)
		}
	})
	if err != nil {
		return err
	}
	// Groups whose records were all deleted are gone; the others' members
	// must heartbeat within their session timeout or be expelled.
	for _, g := range c.groupsSnapshot() {
		g.mu.Lock()
		if g.emptyOfEverythingLocked() {
			c.forget(g)
		} else {
			for _, m := range g.members {
				g.resetSessionLocked(m)
			}
		}
		g.mu.Unlock()
	}
	return nil
}

var errClosed = errors.New("broker/group: coordinator closed")
