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
	return c
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
	// Now is the clock used for LogAppendTime, segment.ms and retention.ms.
	// Default time.Now.
	Now func() time.Time
	// FS is the filesystem. Default vfs.Default.
	FS vfs.FS
}
