package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/sluicehq/sluice/broker/internal/vfs"
)

// FsyncPolicy decides when appended bytes are forced to stable storage.
// Whatever the policy, a produce is acknowledged only after its bytes have
// been written to the segment file (so a killed process loses nothing that was
// acknowledged); the policy decides what survives a machine crash.
type FsyncPolicy int

const (
	// FsyncInterval (the default) fsyncs every partition with unsynced data
	// every Config.FsyncInterval. A power loss may lose up to that much
	// acknowledged data; a killed broker process loses none.
	FsyncInterval FsyncPolicy = iota
	// FsyncAlways fsyncs before acknowledging a produce with acks=1 or
	// acks=all. Concurrent produces share one fsync (group commit).
	FsyncAlways
	// FsyncNever leaves flushing to the operating system.
	FsyncNever
)

// String returns the flag spelling of p: "interval", "always" or "never".
func (p FsyncPolicy) String() string {
	switch p {
	case FsyncInterval:
		return "interval"
	case FsyncAlways:
		return "always"
	case FsyncNever:
		return "never"
	}
	return fmt.Sprintf("FsyncPolicy(%d)", int(p))
}

// ParseFsyncPolicy parses "always", "interval" or "never".
func ParseFsyncPolicy(s string) (FsyncPolicy, error) {
	switch strings.ToLower(s) {
	case "interval", "":
		return FsyncInterval, nil
	case "always":
		return FsyncAlways, nil
	case "never":
		return FsyncNever, nil
	}
	return 0, fmt.Errorf("broker: unknown fsync policy %q (want always, interval or never)", s)
}

// Config configures a broker. The zero value plus a DataDir is a working
// single-node broker listening on 127.0.0.1:9092; EnsureDefaults fills the
// rest with the defaults documented on each field.
type Config struct {
	// DataDir holds the topic metadata and one directory per partition.
	// Required. It is created if it does not exist.
	DataDir string

	// Listen is the TCP address to listen on. Default "127.0.0.1:9092".
	// Use "127.0.0.1:0" for an ephemeral port (see Broker.Addr). Ignored
	// when Listener is set.
	Listen string

	// Listener, if non-nil, is used instead of listening on Listen. The
	// broker closes it on Close.
	Listener net.Listener

	// Advertise is the host:port clients are told to connect to in
	// Metadata responses. Default: the address actually listened on.
	// Set it when clients reach the broker through another name.
	Advertise string

	// NodeID is this broker's node id. Default 0.
	NodeID int32

	// ClusterID is reported in Metadata. Default: a random id generated on
	// first start and kept in DataDir.
	ClusterID string

	// Fsync is the flush policy (default FsyncInterval).
	Fsync FsyncPolicy

	// FsyncInterval is the period of FsyncInterval. Default 200ms.
	FsyncInterval time.Duration

	// DisableAutoCreateTopics turns off Kafka's auto.create.topics.enable
	// (on by default): when false, Metadata requests that ask for it and
	// produce requests to unknown topics create the topic with
	// DefaultPartitions partitions.
	DisableAutoCreateTopics bool

	// DefaultPartitions is num.partitions, the partition count of
	// auto-created topics. Default 1.
	DefaultPartitions int32

	// MaxRequestBytes is socket.request.max.bytes: larger request frames are
	// refused before anything is allocated and the connection is closed.
	// Default 100 MiB.
	MaxRequestBytes int32

	// TopicDefaults holds broker-level defaults for topic configs, by Kafka
	// topic config name ("retention.ms", "segment.bytes", ...). Values are
	// validated like topic configs. Unset names take Kafka's defaults.
	TopicDefaults map[string]string

	// RetentionCheckInterval is log.retention.check.interval.ms. Default 30s.
	RetentionCheckInterval time.Duration

	// CleanerInterval is how often the log cleaner looks for compacted
	// partitions to clean (Kafka's log.cleaner.backoff.ms). Default 15s.
	CleanerInterval time.Duration

	// GroupMinSessionTimeout and GroupMaxSessionTimeout are
	// group.min.session.timeout.ms (default 6s) and
	// group.max.session.timeout.ms (default 30m): JoinGroup requests with a
	// session timeout outside them are refused.
	GroupMinSessionTimeout, GroupMaxSessionTimeout time.Duration

	// OffsetsRetention is offsets.retention.minutes: the committed offsets
	// of a group that has had no members for this long are deleted.
	// Default 7 days.
	OffsetsRetention time.Duration

	// OffsetsTopicPartitions is offsets.topic.num.partitions, the partition
	// count of __consumer_offsets when it is created. Default 50.
	OffsetsTopicPartitions int32

	// TransactionTopicPartitions is transaction.state.log.num.partitions,
	// the partition count of __transaction_state when it is created.
	// Default 50, as in Kafka.
	TransactionTopicPartitions int32

	// TransactionMaxTimeout is transaction.max.timeout.ms: producers asking
	// for a longer transaction.timeout.ms are refused
	// (INVALID_TRANSACTION_TIMEOUT). Default 15 minutes.
	TransactionMaxTimeout time.Duration

	// TransactionAbortInterval is
	// transaction.abort.timed.out.transaction.cleanup.interval.ms: how
	// often transactions open longer than their timeout are looked for and
	// aborted. Default 10s.
	TransactionAbortInterval time.Duration

	// Logger receives the broker's logs. Default: discard.
	Logger *slog.Logger

	// Now returns the current time; tests inject a clock. Default time.Now.
	Now func() time.Time

	// FS is the filesystem partition logs live on. Nil means the operating
	// system's; Sluice's own tests set a fault-injecting one (full disk,
	// failing fsync).
	FS vfs.FS
}

// EnsureDefaults fills unset fields with their documented defaults.
func (c *Config) EnsureDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:9092"
	}
	if c.FsyncInterval <= 0 {
		c.FsyncInterval = 200 * time.Millisecond
	}
	if c.DefaultPartitions <= 0 {
		c.DefaultPartitions = 1
	}
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = 100 << 20
	}
	if c.OffsetsTopicPartitions <= 0 {
		c.OffsetsTopicPartitions = 50
	}
	if c.TransactionTopicPartitions <= 0 {
		c.TransactionTopicPartitions = 50
	}
	if c.TransactionMaxTimeout <= 0 {
		c.TransactionMaxTimeout = 15 * time.Minute
	}
	if c.TransactionAbortInterval <= 0 {
		c.TransactionAbortInterval = 10 * time.Second
	}
	if c.CleanerInterval <= 0 {
		c.CleanerInterval = 15 * time.Second
	}
	if c.RetentionCheckInterval <= 0 {
		c.RetentionCheckInterval = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports whether c is usable, naming the first bad field.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("broker: Config.DataDir is required")
	}
	switch c.Fsync {
	case FsyncInterval, FsyncAlways, FsyncNever:
	default:
		return fmt.Errorf("broker: invalid Config.Fsync %d", int(c.Fsync))
	}
	if c.Advertise != "" {
		if _, _, err := net.SplitHostPort(c.Advertise); err != nil {
			return fmt.Errorf("broker: invalid Config.Advertise %q: %w", c.Advertise, err)
		}
	}
	if c.NodeID < 0 {
		return fmt.Errorf("broker: invalid Config.NodeID %d: must be >= 0", c.NodeID)
	}
	if c.MaxRequestBytes < 0 {
		return fmt.Errorf("broker: invalid Config.MaxRequestBytes %d", c.MaxRequestBytes)
	}
	return nil
}

// String describes c for logs.
func (c *Config) String() string {
	return fmt.Sprintf("data-dir=%s listen=%s advertise=%s node=%d fsync=%s fsync-interval=%s auto-create=%t",
		c.DataDir, c.Listen, c.Advertise, c.NodeID, c.Fsync, c.FsyncInterval, !c.DisableAutoCreateTopics)
}
