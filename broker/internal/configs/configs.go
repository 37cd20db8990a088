// Package configs defines the topic configs the broker understands, with
// Kafka's names, types, defaults and validation, and resolves a topic's
// effective value from its own overrides, the broker's defaults and Kafka's
// defaults.
package configs

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by every validation error; the broker answers it
// with INVALID_CONFIG.
var ErrInvalid = errors.New("broker/configs: invalid config")

// Type is a config's value type, as reported by DescribeConfigs v3+.
type Type int8

// Config types, numbered as in Kafka's DescribeConfigs ConfigType.
const (
	TypeBoolean  Type = 1
	TypeString   Type = 2
	TypeInt      Type = 3
	TypeShort    Type = 4
	TypeLong     Type = 5
	TypeDouble   Type = 6
	TypeList     Type = 7
	TypeClass    Type = 8
	TypePassword Type = 9
)

// Def describes one topic config.
type Def struct {
	Name    string
	Type    Type
	Default string
	Doc     string
	// Check validates a value that already parsed as Type; nil accepts all.
	Check func(string) error
}

const maxLong = "9223372036854775807"

func atLeast(min int64) func(string) error {
	return func(v string) error {
		n, _ := strconv.ParseInt(v, 10, 64)
		if n < min {
			return fmt.Errorf("must be at least %d", min)
		}
		return nil
	}
}

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		if !slices.Contains(vals, v) {
			return fmt.Errorf("must be one of %s", strings.Join(vals, ", "))
		}
		return nil
	}
}

// Topic config names used by the broker.
const (
	CleanupPolicy        = "cleanup.policy"
	CompressionType      = "compression.type"
	DeleteRetentionMs    = "delete.retention.ms"
	IndexIntervalBytes   = "index.interval.bytes"
	MaxCompactionLagMs   = "max.compaction.lag.ms"
	MaxMessageBytes      = "max.message.bytes"
	MessageTimestampType = "message.timestamp.type"
	MinCleanableRatio    = "min.cleanable.dirty.ratio"
	MinCompactionLagMs   = "min.compaction.lag.ms"
	RetentionBytes       = "retention.bytes"
	RetentionMs          = "retention.ms"
	SegmentBytes         = "segment.bytes"
	SegmentMs            = "segment.ms"
)

var defs = []Def{
	{Name: CleanupPolicy, Type: TypeList, Default: "delete", Doc: "delete, compact, or compact,delete", Check: func(v string) error {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "delete" && p != "compact" {
				return fmt.Errorf("%q is not delete or compact", p)
			}
		}
		return nil
	}},
	// Sluice stores batches exactly as producers compressed them; recompressing
	// on the broker is not implemented, so only "producer" is accepted.
	{Name: CompressionType, Type: TypeString, Default: "producer", Doc: "only producer: batches are stored as the producer compressed them", Check: func(v string) error {
		if v != "producer" {
			return fmt.Errorf("only \"producer\" is supported: Sluice stores batches as producers compressed them")
		}
		return nil
	}},
	{Name: DeleteRetentionMs, Type: TypeLong, Default: "86400000", Check: atLeast(0)},
	{Name: "file.delete.delay.ms", Type: TypeLong, Default: "60000", Check: atLeast(0)},
	{Name: "flush.messages", Type: TypeLong, Default: maxLong, Check: atLeast(1)},
	{Name: "flush.ms", Type: TypeLong, Default: maxLong, Check: atLeast(0)},
	{Name: IndexIntervalBytes, Type: TypeInt, Default: "4096", Check: atLeast(0)},
	{Name: MaxCompactionLagMs, Type: TypeLong, Default: maxLong, Check: atLeast(1)},
	{Name: MaxMessageBytes, Type: TypeInt, Default: "1048588", Check: atLeast(0)},
	{Name: "message.timestamp.after.max.ms", Type: TypeLong, Default: maxLong, Check: atLeast(0)},
	{Name: "message.timestamp.before.max.ms", Type: TypeLong, Default: maxLong, Check: atLeast(0)},
	{Name: "message.timestamp.difference.max.ms", Type: TypeLong, Default: maxLong, Check: atLeast(0)},
	{Name: MessageTimestampType, Type: TypeString, Default: "CreateTime", Check: oneOf("CreateTime", "LogAppendTime")},
	{Name: MinCleanableRatio, Type: TypeDouble, Default: "0.5", Check: func(v string) error {
		f, _ := strconv.ParseFloat(v, 64)
		if f < 0 || f > 1 {
			return errors.New("must be between 0 and 1")
		}
		return nil
	}},
	{Name: MinCompactionLagMs, Type: TypeLong, Default: "0", Check: atLeast(0)},
	{Name: "min.insync.replicas", Type: TypeInt, Default: "1", Check: atLeast(1)},
	{Name: "preallocate", Type: TypeBoolean, Default: "false"},
	{Name: RetentionBytes, Type: TypeLong, Default: "-1"},
	{Name: RetentionMs, Type: TypeLong, Default: "604800000", Check: atLeast(-1)},
	{Name: SegmentBytes, Type: TypeInt, Default: "1073741824", Check: atLeast(14)},
	{Name: "segment.index.bytes", Type: TypeInt, Default: "10485760", Check: atLeast(4)},
	{Name: "segment.jitter.ms", Type: TypeLong, Default: "0", Check: atLeast(0)},
	{Name: SegmentMs, Type: TypeLong, Default: "604800000", Check: atLeast(1)},
	{Name: "unclean.leader.election.enable", Type: TypeBoolean, Default: "false"},
}

// Defs returns every known topic config, sorted by name. The caller must not
// modify the result.
func Defs() []Def { return defs }

// Lookup returns the definition of name.
func Lookup(name string) (Def, bool) {
	i := slices.IndexFunc(defs, func(d Def) bool { return d.Name == name })
	if i < 0 {
		return Def{}, false
	}
	return defs[i], true
}

// Validate checks one name=value pair and returns the value normalised
// (trimmed; lists without spaces).
func Validate(name, value string) (string, error) {
	d, ok := Lookup(name)
	if !ok {
		return "", fmt.Errorf("%w: unknown topic config %q", ErrInvalid, name)
	}
	v := strings.TrimSpace(value)
	var err error
	switch d.Type {
	case TypeBoolean:
		v = strings.ToLower(v)
		if v != "true" && v != "false" {
			err = errors.New("must be true or false")
		}
	case TypeInt:
		_, err = strconv.ParseInt(v, 10, 32)
	case TypeShort:
		_, err = strconv.ParseInt(v, 10, 16)
	case TypeLong:
		_, err = strconv.ParseInt(v, 10, 64)
	case TypeDouble:
		var f float64
		if f, err = strconv.ParseFloat(v, 64); err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
			err = errors.New("must be a finite number")
		}
	case TypeList:
		parts := strings.Split(v, ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		v = strings.Join(parts, ",")
	}
	if err != nil {
		return "", fmt.Errorf("%w: %s=%q: %v", ErrInvalid, name, value, unwrapNum(err))
	}
	if d.Check != nil {
		if err := d.Check(v); err != nil {
			return "", fmt.Errorf("%w: %s=%q: %v", ErrInvalid, name, value, err)
		}
	}
	return v, nil
}

func unwrapNum(err error) error {
	if ne, ok := errors.AsType[*strconv.NumError](err); ok {
		return fmt.Errorf("not a valid number (%v)", ne.Err)
	}
	return err
}

// ValidateAll validates a set of configs, returning the normalised set.
func ValidateAll(m map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(m))
	for k, v := range m {
		nv, err := Validate(k, v)
		if err != nil {
			return nil, err
		}
		out[k] = nv
	}
	return out, nil
}

// Source says where an effective value comes from, numbered as in Kafka's
// DescribeConfigs ConfigSource.
type Source int8

// Config sources.
const (
	SourceDynamicTopic         Source = 1
	SourceDynamicBroker        Source = 2
	SourceDynamicDefaultBroker Source = 3
	SourceStaticBroker         Source = 4
	SourceDefault              Source = 5
)

// Resolver resolves effective topic configs, in Kafka's order: a topic's own
// overrides, then dynamic configs of this broker, then dynamic cluster-wide
// broker defaults, then the broker's static defaults, then Kafka's
// defaults. All maps are keyed by topic config name. A Resolver is never
// modified once in use: changes make a new one.
type Resolver struct {
	BrokerDefaults map[string]string // static: set when the broker starts
	DynamicDefault map[string]string // AlterConfigs on the broker resource ""
	DynamicBroker  map[string]string // AlterConfigs on this broker's node id
}

// Value returns the effective value of name for a topic with overrides and
// where it came from.
func (r Resolver) Value(overrides map[string]string, name string) (string, Source) {
	if v, ok := overrides[name]; ok {
		return v, SourceDynamicTopic
	}
	return r.BrokerValue(name)
}

// BrokerValue returns the broker-level default of a topic config and where
// it came from.
func (r Resolver) BrokerValue(name string) (string, Source) {
	if v, ok := r.DynamicBroker[name]; ok {
		return v, SourceDynamicBroker
	}
	if v, ok := r.DynamicDefault[name]; ok {
		return v, SourceDynamicDefaultBroker
	}
	if v, ok := r.BrokerDefaults[name]; ok {
		return v, SourceStaticBroker
	}
	d, _ := Lookup(name)
	return d.Default, SourceDefault
}

// BrokerName returns the broker config that sets the default of a topic
// config (log.retention.ms for retention.ms), or "" if there is none.
func BrokerName(topicName string) string { return brokerSynonym[topicName] }

// TopicName returns the topic config whose default a broker config sets.
func TopicName(brokerName string) (string, bool) {
	for t, b := range brokerSynonym {
		if b == brokerName {
			return t, true
		}
	}
	return "", false
}

// brokerSynonym maps topic configs to the broker configs that set their
// default, as Kafka names them.
var brokerSynonym = map[string]string{
	CleanupPolicy:                    "log.cleanup.policy",
	CompressionType:                  "compression.type",
	DeleteRetentionMs:                "log.cleaner.delete.retention.ms",
	IndexIntervalBytes:               "log.index.interval.bytes",
	MaxCompactionLagMs:               "log.cleaner.max.compaction.lag.ms",
	MaxMessageBytes:                  "message.max.bytes",
	MessageTimestampType:             "log.message.timestamp.type",
	MinCleanableRatio:                "log.cleaner.min.cleanable.ratio",
	MinCompactionLagMs:               "log.cleaner.min.compaction.lag.ms",
	RetentionBytes:                   "log.retention.bytes",
	RetentionMs:                      "log.retention.ms",
	SegmentBytes:                     "log.segment.bytes",
	SegmentMs:                        "log.roll.ms",
	"preallocate":                    "log.preallocate",
	"segment.jitter.ms":              "log.roll.jitter.ms",
	"flush.messages":                 "log.flush.interval.messages",
	"flush.ms":                       "log.flush.interval.ms",
	"min.insync.replicas":            "min.insync.replicas",
	"segment.index.bytes":            "log.index.size.max.bytes",
	"unclean.leader.election.enable": "unclean.leader.election.enable",
}

// Int64 returns the effective value of a numeric config.
func (r Resolver) Int64(overrides map[string]string, name string) int64 {
	v, _ := r.Value(overrides, name)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		d, _ := Lookup(name)
		n, _ = strconv.ParseInt(d.Default, 10, 64)
	}
	return n
}

// Float64 returns the effective value of a numeric (double) config.
func (r Resolver) Float64(overrides map[string]string, name string) float64 {
	v, _ := r.Value(overrides, name)
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		d, _ := Lookup(name)
		f, _ = strconv.ParseFloat(d.Default, 64)
	}
	return f
}

// String returns the effective value of a config.
func (r Resolver) String(overrides map[string]string, name string) string {
	v, _ := r.Value(overrides, name)
	return v
}
