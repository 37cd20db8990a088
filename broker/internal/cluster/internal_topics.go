package cluster

import (
	"errors"
	"fmt"

	"github.com/sluicehq/sluice/broker/internal/log"
	"github.com/sluicehq/sluice/broker/internal/records"
)

// Internal topic names, as Kafka names them.
const (
	OffsetsTopic = "__consumer_offsets"
)

// IsInternal reports whether a topic is one of the broker's internal topics.
func IsInternal(name string) bool { return name == OffsetsTopic }

// OffsetsStore keeps the group coordinator's records in __consumer_offsets
// (implementing group.Store).
type OffsetsStore struct {
	C         *Cluster
	NumParts  int32 // offsets.topic.num.partitions
	SyncOnAck bool  // fsync before returning from Append (fsync=always)
}

// Partitions returns the partition count of the offsets topic: the
// existing topic's if it exists, else the configured one.
func (s *OffsetsStore) Partitions() int32 {
	if t, ok := s.C.Topic(OffsetsTopic); ok {
		return int32(len(t.Partitions))
	}
	return s.NumParts
}

// Ensure creates __consumer_offsets if it does not exist: compacted,
// 100 MiB segments, as Kafka creates it.
func (s *OffsetsStore) Ensure() error {
	if _, ok := s.C.Topic(OffsetsTopic); ok {
		return nil
	}
	_, err := s.C.CreateTopic(OffsetsTopic, s.NumParts, map[string]string{
		"cleanup.policy": "compact",
		"segment.bytes":  "104857600",
	}, false)
	if errors.Is(err, ErrTopicExists) {
		err = nil
	}
	return err
}

// Append appends a batch to partition p of the offsets topic.
func (s *OffsetsStore) Append(p int32, batch []byte) error {
	if err := s.Ensure(); err != nil {
		return err
	}
	part, ok := s.C.Partition(OffsetsTopic, p)
	if !ok {
		return fmt.Errorf("%w: %s-%d", ErrUnknownTopic, OffsetsTopic, p)
	}
	r, err := part.Append(batch)
	if err != nil {
		return err
	}
	if s.SyncOnAck {
		return part.Log().Sync(r.LastOffset + 1)
	}
	return nil
}

// Load replays every record of the offsets topic, if it exists.
func (s *OffsetsStore) Load(fn func(key, value []byte)) error {
	t, ok := s.C.Topic(OffsetsTopic)
	if !ok {
		return nil
	}
	for _, p := range t.Partitions {
		if err := ReadAll(p.Log(), func(r records.Record) {
			var k, v []byte
			if !r.KeyNull {
				k = r.Key
			}
			if !r.ValueNull {
				v = r.Value
			}
			fn(k, v)
		}); err != nil {
			return fmt.Errorf("%s-%d: %w", OffsetsTopic, p.Index, err)
		}
	}
	return nil
}

// ReadAll calls fn for every record of a log, in offset order, skipping
// control batches.
func ReadAll(l *log.Log, fn func(records.Record)) error {
	d := records.NewDecompressor()
	var buf []byte
	for off := l.StartOffset(); off < l.EndOffset(); {
		var err error
		buf, err = l.Read(buf[:0], off, 1<<20, l.EndOffset(), true)
		if err != nil {
			return err
		}
		if len(buf) == 0 {
			return nil
		}
		for b := buf; len(b) > 0; {
			h, err := records.ParseHeader(b)
			if err != nil || h.TotalSize() > len(b) {
				return fmt.Errorf("%w: at offset %d", records.ErrCorrupt, off)
			}
			batch := b[:h.TotalSize()]
			b = b[h.TotalSize():]
			if h.LastOffset() < off {
				continue
			}
			if !h.IsControl() {
				if err := records.Records(batch, d, 64<<20, func(r records.Record) bool {
					if h.BaseOffset+int64(r.OffsetDelta) >= off {
						fn(r)
					}
					return true
				}); err != nil {
					return err
				}
			}
			off = h.LastOffset() + 1
		}
	}
	return nil
}
