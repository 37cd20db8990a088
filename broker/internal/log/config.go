package log

import (
	"log/slog"
	"math"
	"time"

	"github.com/sluicehq/sluice/broker/internal/vfs"
)

// Config holds the topic configs that govern a partition's log. Field docs
// name the Kafka topic config and its default. Non-positive SegmentBytes,
// SegmentMs, IndexIntervalBytes and MaxMessageBytes take the default; a
// negative RetentionBytes or RetentionMs means unlimited.
type Config struct {
	// SegmentBytes is segment.bytes: a segment is rolled before a batch
	// would take it past this size. Default 1 GiB, at most 2 GiB - 1.
	SegmentBytes int64
	// SegmentMs is segment.ms: a non-empty segment is rolled once its first
	// batch is this much older than the batch being appended (or than now,
	// in EnforceRetention). Default 7 days.
	SegmentMs int64
	// RetentionBytes is retention.bytes: the oldest segments are deleted
	// while the log stays at least this large without them. Default -1.
	RetentionBytes int64
	// RetentionMs is retention.ms: segments whose newest timestamp is older
	// than this are deleted. Default 7 days.
	RetentionMs int64
	// IndexIntervalBytes is index.interval.bytes: the sparse indexes get
	// an entry each time this many bytes were appended. Default 4096.
	IndexIntervalBytes int
	// MaxMessageBytes is max.message.bytes: larger batches are rejected
	// with ErrRecordTooLarge. Default 1048588.
	MaxMessageBytes int
	// LogAppendTime is message.timestamp.type=LogAppendTime: Append stamps
	// each batch with the time it was appended. Default false (CreateTime).
	LogAppendTime bool

	// Compact is true when cleanup.policy contains "compact": Append
	// rejects records with a null key (ErrInvalidRecord), and Clean keeps
	// only the latest record of each key. Default false.
	Compact bool
	// NoDelete is true when cleanup.policy does not contain "delete"
	// ("compact" alone): RetentionMs and RetentionBytes are then ignored,
	// as in Kafka. The zero value keeps time and size retention.
	NoDelete bool
	// DeleteRetentionMs is delete.retention.ms: how long Clean keeps a
	// tombstone (a record with a null value) after it first cleaned the
	// batch holding it. Default 86400000 (1 day); 0 is valid (tombstones
	// go at the second clean that sees them); negative takes the default.
	// Start from DefaultConfig when building a Config by hand.
	DeleteRetentionMs int64
	// MinCompactionLagMs is min.compaction.lag.ms: Clean leaves alone
	// batches whose max timestamp is less than this old. Default 0.
	MinCompactionLagMs int64
	// MaxCompactionLagMs is max.compaction.lag.ms: a dirty record this old
	// makes CleanableRatio report mustClean, and caps segment.ms so that
	// the active segment gets rolled and becomes cleanable. Non-positive
	// takes the default, math.MaxInt64 (never).
	MaxCompactionLagMs int64
	// MinCleanableDirtyRatio is min.cleanable.dirty.ratio: MaybeClean
	// cleans once the dirty share of the cleanable bytes is above it.
	// Default 0.5; negative takes the default; at most 1.
	MinCleanableDirtyRatio float64
}

const (
	day                = 24 * 60 * 60 * 1000
	maxSegmentBytes    = math.MaxInt32
	minDecompressBound = 64 << 20
)

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:       1 << 30,
		SegmentMs:          7 * day,
		RetentionBytes:     -1,
		RetentionMs:        7 * day,
		IndexIntervalBytes: 4096,
		MaxMessageBytes:    1048588,

		DeleteRetentionMs:      day,
		MaxCompactionLagMs:     math.MaxInt64,
		MinCleanableDirtyRatio: 0.5,
	}
}

// withDefaults fills non-positive sizes with the defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = d.SegmentBytes
	}
	c.SegmentBytes = min(c.SegmentBytes, maxSegmentBytes)
	if c.SegmentMs <= 0 {
		c.SegmentMs = d.SegmentMs
	}
	if c.IndexIntervalBytes <= 0 {
		c.IndexIntervalBytes = d.IndexIntervalBytes
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = d.MaxMessageBytes
	}
	if c.DeleteRetentionMs < 0 {
		c.DeleteRetentionMs = d.DeleteRetentionMs
	}
	c.MinCompactionLagMs = max(c.MinCompactionLagMs, 0)
	if c.MaxCompactionLagMs <= 0 {
		c.MaxCompactionLagMs = d.MaxCompactionLagMs
	}
	if c.MinCleanableDirtyRatio < 0 {
		c.MinCleanableDirtyRatio = d.MinCleanableDirtyRatio
	}
	c.MinCleanableDirtyRatio = min(c.MinCleanableDirtyRatio, 1)
	return c
}

// rollMs is how old the active segment may get before it is rolled:
// segment.ms, capped by max.compaction.lag.ms for compacted topics (as
// Kafka does), so that an idle compacted partition's records do become
// cleanable.
func (c *Config) rollMs() int64 {
	if c.Compact {
		return min(c.SegmentMs, c.MaxCompactionLagMs)
	}
	return c.SegmentMs
}

// retentionMs and retentionBytes are the limits EnforceRetention applies:
// -1 (none) when the policy lacks "delete".
func (c *Config) retentionMs() int64 {
	if c.NoDelete {
		return -1
	}
	return c.RetentionMs
}

func (c *Config) retentionBytes() int64 {
	if c.NoDelete {
		return -1
	}
	return c.RetentionBytes
}

// decompressBound is how large a compressed batch may decompress to.
func (c *Config) decompressBound() int {
	return max(minDecompressBound, 64*c.MaxMessageBytes)
}

// Options configures Open.
type Options struct {
	// Dir is the partition directory; it is created if missing.
	Dir string
	// Config is the partition's topic config.
	Config Config
	// Logger receives recovery warnings. Default: discard.
	Logger *slog.Logger
	// Now is the clock used for LogAppendTime, segment.ms, retention.ms and
	// the cleaner's lags and delete horizons.
	// Default time.Now.
	Now func() time.Time
	// FS is the filesystem. Default vfs.Default.
	FS vfs.FS
}
