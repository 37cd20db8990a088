package connect

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// store writes the worker's state to the three compacted topics and reads
// it back on start. Each topic has one partition, so replaying it in order
// gives the latest value of each key.
type store struct {
	cl                            *kgo.Client
	configs, offsets, statusTopic string
}

func newStore(brokers []kgo.Opt, configs, offsets, status string) (*store, error) {
	opts := append([]kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}, brokers...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("connect: kafka client: %w", err)
	}
	return &store{cl: cl, configs: configs, offsets: offsets, statusTopic: status}, nil
}

// ensureTopics creates the compacted topics if missing.
func (s *store) ensureTopics(ctx context.Context) error {
	adm := kadm.NewClient(s.cl)
	for _, t := range []string{s.configs, s.offsets, s.statusTopic} {
		resp, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": new("compact")}, t)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("connect: create topic %s: %w", t, err)
		}
	}
	return nil
}

// replay calls fn for each record of topic, in order, up to the end offset
// it has when replay starts. A nil value is a tombstone.
func (s *store) replay(ctx context.Context, topic string, fn func(key, value []byte)) (end int64, err error) {
	adm := kadm.NewClient(s.cl)
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			if o, ok := ends.Lookup(topic, 0); ok && o.Err == nil {
				end = o.Offset
				break
			}
		}
		// A topic just created may not be in metadata yet.
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("connect: end offset of %s: %w", topic, ctx.Err())
		case <-t.C:
		}
	}
	if end == 0 {
		return 0, nil
	}
	// read_committed skips records of aborted transactions (exactly-once
	// sources write connect-offsets in transactions); control records are
	// kept only to see that the end was reached, since the last offset
	// may be a transaction marker.
	cl, err := kgo.NewClient(append(s.cl.Opts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords())...)
	if err != nil {
		return 0, fmt.Errorf("connect: kafka client: %w", err)
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("connect: read %s: %w", topic, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return 0, fmt.Errorf("connect: read %s: %w", topic, ferr)
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < end && !r.Attrs.IsControl() {
				fn(r.Key, r.Value)
			}
			if r.Offset >= end-1 {
				done = true
			}
		})
		if done {
			return end, nil
		}
	}
}

// write produces records to topic and waits for their acknowledgement. It
// returns the offset of the last one.
func (s *store) write(ctx context.Context, topic string, kvs ...[2][]byte) (int64, error) {
	recs := make([]*kgo.Record, len(kvs))
	for i, kv := range kvs {
		recs[i] = &kgo.Record{Topic: topic, Partition: 0, Key: kv[0], Value: kv[1]}
	}
	if err := s.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return 0, fmt.Errorf("connect: write to %s: %w", topic, err)
	}
	return recs[len(recs)-1].Offset, nil
}

// tail calls fn for each record of topic from offset from on, with the
// record's offset, until ctx is done.
func (s *store) tail(ctx context.Context, topic string, from int64, fn func(key, value []byte, offset int64)) {
	cl, err := kgo.NewClient(append(s.cl.Opts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords())...)
	if err != nil {
		return
	}
	defer cl.Close()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			if r.Attrs.IsControl() {
				fn(nil, nil, r.Offset) // progress only
				return
			}
			fn(r.Key, r.Value, r.Offset)
		})
	}
}

func (s *store) close() { s.cl.Close() }
