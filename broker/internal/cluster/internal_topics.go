package cluster

import (
	"errors"
	"fmt"

	"github.com/sluicehq/sluice/broker/internal/log"
	"github.com/sluicehq/sluice/broker/internal/records"
)

// Internal topic names, as Kafka names them.
const (
	OffsetsTopic     = "__consumer_offsets"
	TransactionTopic = "__transaction_state"
)

// IsInternal reports whether a topic is one of the broker's internal topics.
func IsInternal(name string) bool { return name == OffsetsTopic || name == TransactionTopic }

// OffsetsStore keeps a coordinator's records in an internal compacted topic:
// the group coordinator's in __consumer_offsets, the transaction
// coordinator's in __transaction_state (implementing group.Store and
// txn.Store).
type OffsetsStore struct {
	C         *Cluster
	Topic     string // the internal topic; empty means OffsetsTopic
	NumParts  int32  // its partition count when created (offsets.topic.num.partitions)
	SyncOnAck bool   // fsync before returning from Append (fsync=always)
}

func (s *OffsetsStore) topic() string {
	if s.Topic == "" {
		return OffsetsTopic
	}
	return s.Topic
}

// Partitions returns the partition count of the topic: the existing
// topic's if it exists, else the configured one.
func (s *OffsetsStore) Partitions() int32 {
	if t, ok := s.C.Topic(s.topic()); ok {
		return int32(len(t.Partitions))
	}
	return s.NumParts
}

// Ensure creates the topic if it does not exist: compacted, 100 MiB
// segments, as Kafka creates its internal topics.
func (s *OffsetsStore) Ensure() error {
	if _, ok := s.C.Topic(s.topic()); ok {
		return nil
	}
	_, err := s.C.CreateTopic(s.topic(), s.NumParts, map[string]string{
		"cleanup.policy": "compact",
		"segment.bytes":  "104857600",
	}, false)
	if errors.Is(err, ErrTopicExists) {
		err = nil
	}
	return err
}

// Partition returns partition p of the topic, creating the topic first.
func (s *OffsetsStore) Partition(p int32) (*Partition, error) {
	if err := s.Ensure(); err != nil {
		return nil, err
	}
	part, ok := s.C.Partition(s.topic(), p)
	if !ok {
		return nil, fmt.Errorf("%w: %s-%d", ErrUnknownTopic, s.topic(), p)
	}
	return part, nil
}

// Append appends a batch to partition p of the topic. A transactional batch
// (a transactional offset commit) opens its producer's transaction on the
// partition, closed by the marker the transaction coordinator writes.
func (s *OffsetsStore) Append(p int32, batch []byte) error {
	part, err := s.Partition(p)
	if err != nil {
		return err
	}
	r, err := part.AppendCoordinator(batch)
	if err != nil {
		return err
	}
	return s.sync(part, r.LastOffset+1)
}

func (s *OffsetsStore) sync(part *Partition, upTo int64) error {
	if s.SyncOnAck {
		return part.Log().Sync(upTo)
	}
	return nil
}

// StoredRecord is one record replayed by Load, with what its batch says
// about transactions.
type StoredRecord struct {
	Partition  int32
	Key, Value []byte // nil when null (a nil Value is a tombstone)
	// ProducerID is the batch's producer id (-1 for none).
	ProducerID int64
	// Transactional is set for records written inside a transaction.
	Transactional bool
	// Control is set for a transaction marker (Key and Value are then
	// nil); Commit tells a COMMIT from an ABORT marker.
	Control, Commit bool
}

// Load replays every record of the topic, if it exists, partition by
// partition in offset order, including transaction markers.
func (s *OffsetsStore) Load(fn func(StoredRecord)) error {
	t, ok := s.C.Topic(s.topic())
	if !ok {
		return nil
	}
	for _, p := range t.Partitions {
		err := ReadBatches(p.Log(), func(h records.BatchHeader, batch []byte, r records.Record) {
			sr := StoredRecord{Partition: p.Index, ProducerID: h.ProducerID, Transactional: h.IsTransactional()}
			if h.IsControl() {
				typ, _ := records.ControlType(batch)
				sr.Control, sr.Commit = true, typ == records.ControlCommit
				fn(sr)
				return
			}
			if !r.KeyNull {
				sr.Key = r.Key
			}
			if !r.ValueNull {
				sr.Value = r.Value
			}
			fn(sr)
		})
		if err != nil {
			return fmt.Errorf("%s-%d: %w", s.topic(), p.Index, err)
		}
	}
	return nil
}

// ReadAll calls fn for every record of a log, in offset order, skipping
// control batches.
func ReadAll(l *log.Log, fn func(records.Record)) error {
	return ReadBatches(l, func(h records.BatchHeader, _ []byte, r records.Record) {
		if !h.IsControl() {
			fn(r)
		}
	})
}

// ReadBatches calls fn for every record of a log in offset order, with its
// batch; a control batch is passed once, with a zero Record.
func ReadBatches(l *log.Log, fn func(h records.BatchHeader, batch []byte, r records.Record)) error {
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
			if h.IsControl() {
				fn(h, batch, records.Record{})
			} else if err := records.Records(batch, d, 64<<20, func(r records.Record) bool {
				if h.BaseOffset+int64(r.OffsetDelta) >= off {
					fn(h, batch, r)
				}
				return true
			}); err != nil {
				return err
			}
			off = h.LastOffset() + 1
		}
	}
	return nil
}
