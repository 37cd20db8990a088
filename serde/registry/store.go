package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// store reads the _schemas topic into a state and writes records to it.
// Every instance reads; only the elected writer writes.
type store struct {
	topic  string
	logger *slog.Logger
	cl     *kgo.Client // reads partition 0 and produces

	mu struct {
		sync.Mutex
		st      *state
		next    int64         // offset of the next record to apply
		changed chan struct{} // closed and replaced when next advances
	}
}

func newStore(brokers []kgo.Opt, topic string, logger *slog.Logger) (*store, error) {
	s := &store{topic: topic, logger: logger}
	s.mu.st = newState()
	s.mu.changed = make(chan struct{})
	opts := append([]kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.FetchMaxWait(500e6),
	}, brokers...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("serde/registry: kafka client: %w", err)
	}
	s.cl = cl
	return s, nil
}

// ensureTopic creates the single-partition compacted topic if missing.
func (s *store) ensureTopic(ctx context.Context) error {
	adm := kadm.NewClient(s.cl)
	resp, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": new("compact")}, s.topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("serde/registry: create topic %s: %w", s.topic, err)
	}
	if err == nil {
		return nil
	}
	// An existing topic must have one partition: the order of its records
	// is the registry's history.
	tds, err := adm.ListTopics(ctx, s.topic)
	if err != nil {
		return fmt.Errorf("serde/registry: describe topic %s: %w", s.topic, err)
	}
	if td, ok := tds[s.topic]; ok && td.Err == nil && len(td.Partitions) != 1 {
		return fmt.Errorf("serde/registry: topic %s has %d partitions; the schemas topic must have exactly 1", s.topic, len(td.Partitions))
	}
	return nil
}

// endOffset returns the topic's current end offset (high watermark),
// retrying while a just-created topic is not yet visible in metadata.
func (s *store) endOffset(ctx context.Context) (int64, error) {
	for {
		o, err := s.endOffsetOnce(ctx)
		if err == nil {
			return o, nil
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
}

func (s *store) endOffsetOnce(ctx context.Context) (int64, error) {
	adm := kadm.NewClient(s.cl)
	ends, err := adm.ListEndOffsets(ctx, s.topic)
	if err != nil {
		return 0, fmt.Errorf("serde/registry: list end offsets: %w", err)
	}
	o, ok := ends.Lookup(s.topic, 0)
	if !ok {
		return 0, fmt.Errorf("serde/registry: topic %s has no partition 0", s.topic)
	}
	if o.Err != nil {
		return 0, fmt.Errorf("serde/registry: end offset: %w", o.Err)
	}
	return o.Offset, nil
}

// run applies records until ctx ends.
func (s *store) run(ctx context.Context) {
	for ctx.Err() == nil {
		fs := s.cl.PollFetches(ctx)
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				s.logger.Warn("registry: fetch", "topic", t, "partition", p, "err", err)
			}
		})
		var last int64 = -1
		s.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			if err := s.mu.st.apply(r.Key, r.Value); err != nil {
				s.logger.Warn("registry: skipping record", "offset", r.Offset, "err", err)
			}
			last = r.Offset
		})
		if last >= 0 {
			s.mu.next = last + 1
			close(s.mu.changed)
			s.mu.changed = make(chan struct{})
		}
		s.mu.Unlock()
	}
}

// waitFor blocks until the record at offset has been applied.
func (s *store) waitFor(ctx context.Context, offset int64) error {
	for {
		s.mu.Lock()
		next, ch := s.mu.next, s.mu.changed
		s.mu.Unlock()
		if next > offset {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("serde/registry: waiting for offset %d: %w", offset, ctx.Err())
		}
	}
}

// catchUp waits until everything in the topic when it is called has been
// applied. The writer calls it before deciding a write: a newly elected
// writer may not yet have read its predecessor's last records, and ids and
// versions are allocated from what it has read.
func (s *store) catchUp(ctx context.Context) error {
	end, err := s.endOffsetOnce(ctx)
	if err != nil {
		return err
	}
	if end == 0 {
		return nil
	}
	return s.waitFor(ctx, end-1)
}

// applied returns the offset of the next record to apply.
func (s *store) applied() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.next
}

// rec is one record to write; a nil value is a tombstone.
type rec struct {
	key   storeKey
	value []byte
}

// write produces records in order and waits until this instance has applied
// them (read-your-writes). It returns the offset of the last record.
func (s *store) write(ctx context.Context, recs ...rec) (int64, error) {
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krs[i] = &kgo.Record{Topic: s.topic, Partition: 0, Key: marshalKey(r.key), Value: r.value}
	}
	res := s.cl.ProduceSync(ctx, krs...)
	if err := res.FirstErr(); err != nil {
		return 0, fmt.Errorf("serde/registry: write to %s: %w", s.topic, err)
	}
	last := krs[len(krs)-1].Offset
	if err := s.waitFor(ctx, last); err != nil {
		return 0, err
	}
	return last, nil
}

// view runs fn with the state locked for reading. fn must not block.
func (s *store) view(fn func(st *state)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s.mu.st)
}

func (s *store) close() { s.cl.Close() }
