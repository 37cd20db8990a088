package stream

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// AppOpt configures an App (functional options, validated by NewApp).
type AppOpt interface{ applyApp(*appConfig) }

type appOptFunc func(*appConfig)

func (f appOptFunc) applyApp(c *appConfig) { f(c) }

type appConfig struct {
	appID          string
	brokers        []string
	stateDir       string
	commitInterval time.Duration
	threads        int
	logger         *slog.Logger
	clientOpts     []kgo.Opt
	onProcessing   func(*ProcessingError) error
	onDeser        func(*DeserializationError) error
	deadLetter     string
	replication    int16
	cacheBytes     int64
	guarantee      ProcessingGuarantee
	intervalSet    bool // CommitInterval was given
	maxTaskIdle    time.Duration
	taskIdleSet    bool
	instanceID     string // InstanceID, or the one kept in the state dir
}

// ProcessingGuarantee is what an App promises about each input record's
// effect on state and outputs after a crash (Kafka Streams'
// processing.guarantee).
type ProcessingGuarantee int

const (
	// AtLeastOnce (the default): after a crash, the records processed
	// since the last commit are processed again.
	AtLeastOnce ProcessingGuarantee = iota
	// ExactlyOnce: each commit is one Kafka transaction per stream thread
	// (exactly-once v2) carrying the outputs, the changelog writes and the
	// input offsets; uncommitted work is aborted and state restored. Needs
	// a broker with transactions (KIP-447: Kafka 2.5+).
	ExactlyOnce
)

func (g ProcessingGuarantee) String() string {
	switch g {
	case AtLeastOnce:
		return "at-least-once"
	case ExactlyOnce:
		return "exactly-once"
	}
	return fmt.Sprintf("ProcessingGuarantee(%d)", int(g))
}

// Guarantee sets the processing guarantee (default AtLeastOnce). See the
// package documentation, section Guarantees.
func Guarantee(g ProcessingGuarantee) AppOpt {
	return appOptFunc(func(c *appConfig) { c.guarantee = g })
}

// InstanceID names this instance of the app for its transactional ids
// under ExactlyOnce (<app-id>-<instance-id>-<thread>). It must be stable
// across restarts of the same instance and unique among the instances
// running at the same time. Default: a random id created at the first
// start and kept in the state directory (file sluice-instance-id), so an
// instance restarted on the same StateDir reuses its transactional ids and
// fences its previous incarnation.
func InstanceID(id string) AppOpt { return appOptFunc(func(c *appConfig) { c.instanceID = id }) }

// AppID sets the application id (required): the consumer group, and the
// prefix of internal topics (<app-id>-<name>-repartition,
// <app-id>-<store>-changelog). Kafka Streams' application.id.
func AppID(id string) AppOpt { return appOptFunc(func(c *appConfig) { c.appID = id }) }

// Brokers sets the Kafka bootstrap addresses (required).
func Brokers(addrs ...string) AppOpt {
	return appOptFunc(func(c *appConfig) { c.brokers = append(c.brokers, addrs...) })
}

// StateDir is where persistent stores and checkpoints live (default: a
// directory under os.TempDir named after the app id). Kafka Streams'
// state.dir.
func StateDir(dir string) AppOpt { return appOptFunc(func(c *appConfig) { c.stateDir = dir }) }

// CommitInterval is how often offsets are committed and caches flushed
// (default 30s under at-least-once, 100ms under exactly-once, as Kafka
// Streams' commit.interval.ms). Under exactly-once it is how long a
// transaction stays open: outputs are visible to read_committed consumers
// only once it commits.
func CommitInterval(d time.Duration) AppOpt {
	return appOptFunc(func(c *appConfig) { c.commitInterval = d; c.intervalSet = true })
}

// MaxTaskIdle bounds how long a task whose inputs are several partitions
// (a join's two topics, a merge) waits for one of them before it processes
// the others out of timestamp order. A task processes the records of its
// partitions in timestamp order (Kafka Streams' PartitionGroup); when one
// partition has nothing buffered but the broker reported records of it that
// were not fetched yet, the task waits for that fetch, for at most d.
// Partitions known to be caught up are never waited for (Kafka's
// max.task.idle.ms=0). Default 500ms; a negative d never waits (records
// are then ordered only within what one poll returns). Under ExactlyOnce a
// waiting task delays the thread's next commit by up to d.
func MaxTaskIdle(d time.Duration) AppOpt {
	return appOptFunc(func(c *appConfig) { c.maxTaskIdle = d; c.taskIdleSet = true })
}

// Threads is how many stream threads (each a consumer-group member running
// some of the tasks) the app runs (default 1; num.stream.threads).
func Threads(n int) AppOpt { return appOptFunc(func(c *appConfig) { c.threads = n }) }

// Logger sets the logger (default: discard).
func Logger(l *slog.Logger) AppOpt { return appOptFunc(func(c *appConfig) { c.logger = l }) }

// ClientOpts adds franz-go options to every client the app creates (TLS,
// SASL, ...).
func ClientOpts(opts ...kgo.Opt) AppOpt {
	return appOptFunc(func(c *appConfig) { c.clientOpts = append(c.clientOpts, opts...) })
}

// CacheMaxBytes is the record cache of the app's stateful operators, split
// between its threads (default 10 MiB; 0 forwards every update at once).
// Kafka Streams' cache.max.bytes.buffering (statestore.cache.max.bytes).
func CacheMaxBytes(n int64) AppOpt { return appOptFunc(func(c *appConfig) { c.cacheBytes = n }) }

// ReplicationFactor for the internal topics the app creates (default 1).
func ReplicationFactor(n int16) AppOpt { return appOptFunc(func(c *appConfig) { c.replication = n }) }

// OnProcessingError sets what happens when a user callback panics or a
// Processor returns an error: return nil to skip the record and go on, or
// an error to stop the app with it. Default: log and stop.
func OnProcessingError(fn func(*ProcessingError) error) AppOpt {
	return appOptFunc(func(c *appConfig) { c.onProcessing = fn })
}

// OnDeserializationError sets what happens to a record whose key or value
// does not decode: return nil to skip it, an error to stop the app. Default:
// log and stop (Kafka Streams' LogAndFailExceptionHandler).
func OnDeserializationError(fn func(*DeserializationError) error) AppOpt {
	return appOptFunc(func(c *appConfig) { c.onDeser = fn })
}

// LogAndContinue is a deserialization-error handler that logs and skips.
func LogAndContinue(l *slog.Logger) func(*DeserializationError) error {
	return func(e *DeserializationError) error {
		l.Warn("skipping a record that does not deserialize", "topic", e.Topic, "partition", e.Partition, "offset", e.Offset, "err", e.Err)
		return nil
	}
}

// DeadLetterTopic sends records that do not deserialize to topic, unchanged,
// with headers naming the error (__sluice.error.message,
// __sluice.error.topic, __sluice.error.partition, __sluice.error.offset),
// and goes on.
func DeadLetterTopic(topic string) AppOpt {
	return appOptFunc(func(c *appConfig) { c.deadLetter = topic })
}

func (c *appConfig) validate() error {
	switch {
	case c.appID == "":
		return fmt.Errorf("stream: NewApp needs stream.AppID")
	case len(c.brokers) == 0:
		return fmt.Errorf("stream: NewApp needs stream.Brokers")
	case c.threads < 0:
		return fmt.Errorf("stream: Threads(%d): need at least 1", c.threads)
	case c.commitInterval < 0:
		return fmt.Errorf("stream: CommitInterval(%v) is negative", c.commitInterval)
	case c.guarantee != AtLeastOnce && c.guarantee != ExactlyOnce:
		return fmt.Errorf("stream: Guarantee(%v): use stream.AtLeastOnce or stream.ExactlyOnce", c.guarantee)
	}
	for _, r := range c.instanceID {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("stream: instance id %q: use letters, digits, '.', '_' and '-'", c.instanceID)
		}
	}
	for _, r := range c.appID {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("stream: app id %q: use letters, digits, '.', '_' and '-' (it prefixes topic names)", c.appID)
		}
	}
	return nil
}
