// Package cluster holds the broker's state: its topics and their partitions,
// each partition's log, idempotent-producer state and transaction state,
// and the metadata that survives restarts.
//
// Transactions on a partition: the first batch of a producer's transaction
// opens it (its offset holds the last stable offset back) and the
// producer's next marker (WriteMarker, from the transaction coordinator)
// closes it; an ABORT adds (producer id, first offset, marker offset) to
// the partition's aborted-transaction index, which read_committed fetches
// are served from. Neither is kept in a file of its own: at open, both are
// rebuilt with the producer state from the log's batch headers (reading
// the one record of each control batch for its type), so they always agree
// with the log, including after a torn tail was cut; the cost is one header
// scan per partition at start, which producer state already needed.
//
// On disk, under the data directory:
//
//	meta.json            cluster id and topics (name, id, partition count,
//	                     config overrides), replaced atomically on change
//	producer-ids         the next unallocated block of producer ids
//	<topic>-<partition>/ one partition's log (see package log)
//
// Concurrency: Cluster is safe for concurrent use. Its mutex guards the topic
// map and is never held across log I/O except when topics are created or
// deleted, which are rare. Each Partition serialises its own appends and
// markers under its mu; its aborted index has its own lock (abortMu, taken
// under mu or alone by fetches), and the first unstable offset is an atomic
// set before a transaction's data is appended and cleared after its marker.
package cluster

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/broker/internal/configs"
	"github.com/sluicehq/sluice/broker/internal/log"
	"github.com/sluicehq/sluice/broker/internal/vfs"
)

// Errors returned by Cluster. The broker maps each to a Kafka error code.
var (
	// ErrUnknownTopic: the topic does not exist (UNKNOWN_TOPIC_OR_PARTITION).
	ErrUnknownTopic = errors.New("broker/cluster: unknown topic or partition")
	// ErrTopicExists: CreateTopics for an existing name (TOPIC_ALREADY_EXISTS).
	ErrTopicExists = errors.New("broker/cluster: topic already exists")
	// ErrInvalidTopic: a name Kafka would refuse (INVALID_TOPIC_EXCEPTION).
	ErrInvalidTopic = errors.New("broker/cluster: invalid topic name")
	// ErrInvalidPartitions: a partition count that is not allowed
	// (INVALID_PARTITIONS).
	ErrInvalidPartitions = errors.New("broker/cluster: invalid partition count")
	// ErrClosed: the cluster was closed.
	ErrClosed = errors.New("broker/cluster: closed")
)

// Options configure Open.
type Options struct {
	DataDir  string
	Resolver configs.Resolver
	Logger   *slog.Logger
	Now      func() time.Time
	FS       vfs.FS // nil: the operating system
}

// Cluster is the broker's topic and partition state.
type Cluster struct {
	opts     Options
	pids     *pidAllocator
	resolver atomic.Pointer[configs.Resolver]

	mu struct {
		sync.RWMutex
		clusterID string
		topics    map[string]*Topic
		closed    bool
	}
}

// Topic is one topic. Name, ID and Internal never change; Configs and
// Partitions are replaced (not modified) under the cluster lock.
type Topic struct {
	Name       string
	ID         [16]byte
	Internal   bool
	Configs    map[string]string
	Partitions []*Partition
}

type metaFile struct {
	Version   int         `json:"version"`
	ClusterID string      `json:"cluster_id"`
	Topics    []metaTopic `json:"topics"`
	// Dynamic broker-level topic config defaults (AlterConfigs on the
	// broker resource), by topic config name.
	BrokerDefault map[string]string `json:"broker_default_configs,omitempty"`
	BrokerNode    map[string]string `json:"broker_node_configs,omitempty"`
}

type metaTopic struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions"`
	Internal   bool              `json:"internal,omitempty"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// Open loads the cluster state in opts.DataDir (creating it if needed),
// opening and recovering every partition log.
func Open(opts Options) (*Cluster, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("broker/cluster: create data dir: %w", err)
	}
	c := &Cluster{opts: opts}
	c.mu.topics = make(map[string]*Topic)
	pids, err := openPIDAllocator(filepath.Join(opts.DataDir, "producer-ids"))
	if err != nil {
		return nil, err
	}
	c.pids = pids

	var mf metaFile
	switch data, err := os.ReadFile(c.metaPath()); {
	case errors.Is(err, os.ErrNotExist):
		mf = metaFile{Version: 1, ClusterID: newClusterID()}
		if err := c.writeMeta(mf); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("broker/cluster: read metadata: %w", err)
	default:
		if err := json.Unmarshal(data, &mf); err != nil {
			return nil, fmt.Errorf("broker/cluster: metadata file %s is corrupt: %w", c.metaPath(), err)
		}
	}
	c.mu.clusterID = mf.ClusterID
	r := opts.Resolver
	r.DynamicDefault, r.DynamicBroker = mf.BrokerDefault, mf.BrokerNode
	c.resolver.Store(&r)
	c.removeDeleted()
	for _, mt := range mf.Topics {
		t := &Topic{Name: mt.Name, Internal: mt.Internal, Configs: mt.Configs}
		if t.Configs == nil {
			t.Configs = map[string]string{}
		}
		if id, err := parseTopicID(mt.ID); err == nil {
			t.ID = id
		} else {
			return nil, fmt.Errorf("broker/cluster: topic %q: %w", mt.Name, err)
		}
		for i := range mt.Partitions {
			p, err := c.openPartition(t, i)
			if err != nil {
				c.closeTopics()
				return nil, err
			}
			t.Partitions = append(t.Partitions, p)
		}
		c.mu.topics[t.Name] = t
	}
	return c, nil
}

func (c *Cluster) metaPath() string { return filepath.Join(c.opts.DataDir, "meta.json") }

func (c *Cluster) partitionDir(topic string, p int32) string {
	return filepath.Join(c.opts.DataDir, topic+"-"+strconv.Itoa(int(p)))
}

func (c *Cluster) openPartition(t *Topic, i int32) (*Partition, error) {
	l, err := log.Open(log.Options{
		Dir:    c.partitionDir(t.Name, i),
		Config: c.LogConfig(t.Configs),
		Logger: c.opts.Logger.With("topic", t.Name, "partition", i),
		Now:    c.opts.Now,
		FS:     c.opts.FS,
	})
	if err != nil {
		return nil, fmt.Errorf("broker/cluster: open %s-%d: %w", t.Name, i, err)
	}
	return newPartition(t.Name, i, l)
}

// LogConfig resolves a topic's log settings from its overrides.
func (c *Cluster) LogConfig(overrides map[string]string) log.Config {
	r := c.Resolver()
	policy := strings.Split(r.String(overrides, configs.CleanupPolicy), ",")
	return log.Config{
		SegmentBytes:       r.Int64(overrides, configs.SegmentBytes),
		SegmentMs:          r.Int64(overrides, configs.SegmentMs),
		RetentionBytes:     r.Int64(overrides, configs.RetentionBytes),
		RetentionMs:        r.Int64(overrides, configs.RetentionMs),
		IndexIntervalBytes: int(r.Int64(overrides, configs.IndexIntervalBytes)),
		MaxMessageBytes:    int(r.Int64(overrides, configs.MaxMessageBytes)),
		LogAppendTime:      r.String(overrides, configs.MessageTimestampType) == "LogAppendTime",

		Compact:                slices.Contains(policy, "compact"),
		NoDelete:               !slices.Contains(policy, "delete"),
		DeleteRetentionMs:      r.Int64(overrides, configs.DeleteRetentionMs),
		MinCompactionLagMs:     r.Int64(overrides, configs.MinCompactionLagMs),
		MaxCompactionLagMs:     r.Int64(overrides, configs.MaxCompactionLagMs),
		MinCleanableDirtyRatio: r.Float64(overrides, configs.MinCleanableRatio),
	}
}

// Resolver returns the config resolver.
func (c *Cluster) Resolver() configs.Resolver { return *c.resolver.Load() }

// ClusterID returns the persistent cluster id.
func (c *Cluster) ClusterID() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.mu.clusterID
}

// Topic returns the named topic.
func (c *Cluster) Topic(name string) (*Topic, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.mu.topics[name]
	return t, ok
}

// Partition returns one partition.
func (c *Cluster) Partition(topic string, p int32) (*Partition, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.mu.topics[topic]
	if !ok || p < 0 || int(p) >= len(t.Partitions) {
		return nil, false
	}
	return t.Partitions[p], true
}

// Topics returns every topic, sorted by name.
func (c *Cluster) Topics() []*Topic {
	c.mu.RLock()
	ts := make([]*Topic, 0, len(c.mu.topics))
	for _, t := range c.mu.topics {
		ts = append(ts, t)
	}
	c.mu.RUnlock()
	slices.SortFunc(ts, func(a, b *Topic) int { return strings.Compare(a.Name, b.Name) })
	return ts
}

// ValidateTopicName checks a topic name against Kafka's rules.
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: the empty string", ErrInvalidTopic)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q", ErrInvalidTopic, name)
	case len(name) > 249:
		return fmt.Errorf("%w: %q is longer than 249 characters", ErrInvalidTopic, name[:20]+"...")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%w: %q contains %q; legal characters are ASCII letters, digits, '.', '_' and '-'", ErrInvalidTopic, name, r)
		}
	}
	return nil
}

func collisionName(name string) string { return strings.ReplaceAll(name, ".", "_") }

// CreateTopic creates a topic with n partitions and the given (already
// validated) config overrides. With validateOnly it checks everything but
// creates nothing.
func (c *Cluster) CreateTopic(name string, n int32, overrides map[string]string, validateOnly bool) (*Topic, error) {
	if err := ValidateTopicName(name); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, fmt.Errorf("%w: %d (must be at least 1)", ErrInvalidPartitions, n)
	}
	if n > 100000 {
		return nil, fmt.Errorf("%w: %d (at most 100000 on one broker)", ErrInvalidPartitions, n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return nil, ErrClosed
	}
	if _, ok := c.mu.topics[name]; ok {
		return nil, fmt.Errorf("%w: %q", ErrTopicExists, name)
	}
	for other := range c.mu.topics {
		if collisionName(other) == collisionName(name) {
			return nil, fmt.Errorf("%w: %q collides with existing topic %q ('.' and '_' collide in metric names)", ErrInvalidTopic, name, other)
		}
	}
	t := &Topic{Name: name, Configs: overrides, Internal: IsInternal(name)}
	if t.Configs == nil {
		t.Configs = map[string]string{}
	}
	if validateOnly {
		return t, nil
	}
	if _, err := rand.Read(t.ID[:]); err != nil {
		return nil, err
	}
	for i := range n {
		p, err := c.openPartition(t, i)
		if err != nil {
			for _, p := range t.Partitions {
				_ = p.log.Delete()
			}
			return nil, err
		}
		t.Partitions = append(t.Partitions, p)
	}
	c.mu.topics[name] = t
	if err := c.persistLocked(); err != nil {
		delete(c.mu.topics, name)
		for _, p := range t.Partitions {
			_ = p.log.Delete()
		}
		return nil, err
	}
	c.opts.Logger.Info("created topic", "topic", name, "partitions", n)
	return t, nil
}

// DeleteTopic deletes a topic and its data.
func (c *Cluster) DeleteTopic(name string) error {
	c.mu.Lock()
	t, ok := c.mu.topics[name]
	if !ok {
		c.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	delete(c.mu.topics, name)
	if err := c.persistLocked(); err != nil {
		c.mu.topics[name] = t
		c.mu.Unlock()
		return err
	}
	c.mu.Unlock()
	for _, p := range t.Partitions {
		p.close()
		dir := c.partitionDir(name, p.Index)
		gone := fmt.Sprintf("%s.%x-delete", dir, t.ID)
		if err := os.Rename(dir, gone); err != nil {
			c.opts.Logger.Warn("deleting topic: rename partition dir", "topic", name, "partition", p.Index, "err", err)
			continue
		}
		if err := os.RemoveAll(gone); err != nil {
			c.opts.Logger.Warn("deleting topic: remove partition dir", "topic", name, "partition", p.Index, "err", err)
		}
	}
	c.opts.Logger.Info("deleted topic", "topic", name)
	return nil
}

// AddPartitions grows a topic to total partitions.
func (c *Cluster) AddPartitions(name string, total int32, validateOnly bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.mu.topics[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	have := int32(len(t.Partitions))
	if total <= have {
		return fmt.Errorf("%w: topic %q has %d partitions; the new count %d must be larger", ErrInvalidPartitions, name, have, total)
	}
	if total > 100000 {
		return fmt.Errorf("%w: %d (at most 100000 on one broker)", ErrInvalidPartitions, total)
	}
	if validateOnly {
		return nil
	}
	ps := slices.Clone(t.Partitions)
	for i := have; i < total; i++ {
		p, err := c.openPartition(t, i)
		if err != nil {
			for _, p := range ps[have:] {
				_ = p.log.Delete()
			}
			return err
		}
		ps = append(ps, p)
	}
	nt := *t
	nt.Partitions = ps
	c.mu.topics[name] = &nt
	if err := c.persistLocked(); err != nil {
		c.mu.topics[name] = t
		return err
	}
	return nil
}

// SetConfigs replaces a topic's config overrides (already validated) and
// applies them to its partitions.
func (c *Cluster) SetConfigs(name string, overrides map[string]string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.mu.topics[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	nt := *t
	nt.Configs = overrides
	c.mu.topics[name] = &nt
	if err := c.persistLocked(); err != nil {
		c.mu.topics[name] = t
		return err
	}
	lc := c.LogConfig(overrides)
	for _, p := range nt.Partitions {
		p.log.SetConfig(lc)
	}
	return nil
}

// SetDynamicBrokerConfigs replaces the dynamic broker-level topic config
// defaults (already validated, keyed by topic config name): the cluster-wide
// defaults when node is false, this broker's own when it is true. They are
// persisted and applied to every topic at once.
func (c *Cluster) SetDynamicBrokerConfigs(node bool, m map[string]string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.resolver.Load()
	r := *old
	if node {
		r.DynamicBroker = m
	} else {
		r.DynamicDefault = m
	}
	c.resolver.Store(&r)
	if err := c.persistLocked(); err != nil {
		c.resolver.Store(old)
		return err
	}
	for _, t := range c.mu.topics {
		lc := c.LogConfig(t.Configs)
		for _, p := range t.Partitions {
			p.log.SetConfig(lc)
		}
	}
	return nil
}

// NextProducerID allocates a new producer id.
func (c *Cluster) NextProducerID() (int64, error) { return c.pids.next() }

// EachPartition calls fn for every partition.
func (c *Cluster) EachPartition(fn func(*Partition)) {
	for _, t := range c.Topics() {
		for _, p := range t.Partitions {
			fn(p)
		}
	}
}

// Close closes every partition log. It is idempotent.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.closed = true
	c.mu.Unlock()
	return c.closeTopics()
}

func (c *Cluster) closeTopics() error {
	var errs []error
	for _, t := range c.Topics() {
		for _, p := range t.Partitions {
			errs = append(errs, p.close())
		}
	}
	return errors.Join(errs...)
}

func (c *Cluster) persistLocked() error {
	r := c.resolver.Load()
	mf := metaFile{Version: 1, ClusterID: c.mu.clusterID, BrokerDefault: r.DynamicDefault, BrokerNode: r.DynamicBroker}
	for _, t := range c.mu.topics {
		mf.Topics = append(mf.Topics, metaTopic{
			Name: t.Name, ID: fmt.Sprintf("%x", t.ID), Partitions: int32(len(t.Partitions)),
			Internal: t.Internal, Configs: t.Configs,
		})
	}
	slices.SortFunc(mf.Topics, func(a, b metaTopic) int { return strings.Compare(a.Name, b.Name) })
	return c.writeMeta(mf)
}

func (c *Cluster) writeMeta(mf metaFile) error {
	data, err := json.MarshalIndent(mf, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(c.metaPath(), data); err != nil {
		return fmt.Errorf("broker/cluster: write metadata: %w", err)
	}
	return nil
}

// removeDeleted finishes deletions interrupted by a crash.
func (c *Cluster) removeDeleted() {
	ents, _ := os.ReadDir(c.opts.DataDir)
	for _, e := range ents {
		if e.IsDir() && strings.HasSuffix(e.Name(), "-delete") {
			_ = os.RemoveAll(filepath.Join(c.opts.DataDir, e.Name()))
		}
	}
}

// writeFileAtomic replaces path with data: temp file, fsync, rename, fsync dir.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func newClusterID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func parseTopicID(s string) ([16]byte, error) {
	var id [16]byte
	if len(s) != 32 {
		return id, fmt.Errorf("bad topic id %q", s)
	}
	for i := range 16 {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			return id, fmt.Errorf("bad topic id %q", s)
		}
		id[i] = byte(v)
	}
	return id, nil
}

// pidAllocator hands out producer ids, persisting the end of the current
// block before using any id in it so that ids are never reused after a
// restart.
type pidAllocator struct {
	path string
	mu   struct {
		sync.Mutex
		next, end int64
	}
}

const pidBlock = 1000

func openPIDAllocator(path string) (*pidAllocator, error) {
	a := &pidAllocator{path: path}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("broker/cluster: read producer ids: %w", err)
	default:
		n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("broker/cluster: producer id file %s is corrupt", path)
		}
		a.mu.next, a.mu.end = n, n
	}
	return a, nil
}

func (a *pidAllocator) next() (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mu.next >= a.mu.end {
		end := a.mu.next + pidBlock
		if err := writeFileAtomic(a.path, []byte(strconv.FormatInt(end, 10)+"\n")); err != nil {
			return 0, fmt.Errorf("broker/cluster: persist producer ids: %w", err)
		}
		a.mu.end = end
	}
	id := a.mu.next
	a.mu.next++
	return id, nil
}
