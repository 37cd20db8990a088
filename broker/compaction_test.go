package broker_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker/brokertest"
)

// TestCompactedTopicEndToEnd writes random updates and tombstones with
// franz-go (compressed and not), lets the broker's cleaner run, and checks
// that a consumer reads exactly the latest value of every live key at its
// original offset, in offset order.
func TestCompactedTopicEndToEnd(t *testing.T) {
	for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.ZstdCompression(), kgo.Lz4Compression()} {
		t.Run(fmt.Sprint(codec), func(t *testing.T) {
			b := brokertest.Start(t)
			ctx := testCtx(t)
			cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("compacted"), kgo.ProducerBatchCompression(codec),
				kgo.ProducerLinger(0))
			cfg := map[string]*string{
				"cleanup.policy":            kadm.StringPtr("compact"),
				"segment.bytes":             kadm.StringPtr("4096"),
				"min.cleanable.dirty.ratio": kadm.StringPtr("0.01"),
				"delete.retention.ms":       kadm.StringPtr("0"),
			}
			if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, cfg, "compacted"); err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			type entry struct {
				offset int64
				value  string
				live   bool
			}
			latest := map[string]entry{}
			for i := range 600 {
				key := fmt.Sprintf("key-%02d", rng.IntN(40))
				r := &kgo.Record{Key: []byte(key), Value: []byte(fmt.Sprintf("value-%d", i))}
				if rng.IntN(8) == 0 {
					r.Value = nil // tombstone
				}
				got, err := cl.ProduceSync(ctx, r).First()
				if err != nil {
					t.Fatal(err)
				}
				latest[key] = entry{offset: got.Offset, value: string(r.Value), live: r.Value != nil}
			}
			// One more record so that the last updates sit in closed segments.
			for range 60 {
				if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("filler"), Value: []byte("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			// Twice: the first clean stamps tombstones with their delete
			// horizon (0 ms here), the second removes them.
			if n := b.CleanLogs(ctx); n == 0 {
				t.Fatal("the cleaner cleaned nothing")
			}
			b.CleanLogs(ctx)

			end, _ := kadm.NewClient(cl).ListEndOffsets(ctx, "compacted")
			o, _ := end.Lookup("compacted", 0)
			c := newClient(t, b.Addr(), kgo.ConsumeTopics("compacted"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			seen := map[string]int64{}
			total, last := 0, int64(-1)
			for last < o.Offset-1 {
				fs := c.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					t.Fatal(err)
				}
				fs.EachRecord(func(r *kgo.Record) {
					total++
					if r.Offset <= last {
						t.Fatalf("offset %d after %d", r.Offset, last)
					}
					last = r.Offset
					k := string(r.Key)
					if k == "filler" {
						return
					}
					if prev, dup := seen[k]; dup {
						t.Errorf("key %s at %d and again at %d after cleaning", k, prev, r.Offset)
					}
					seen[k] = r.Offset
					e := latest[k]
					if !e.live {
						t.Errorf("deleted key %s still there at %d", k, r.Offset)
					} else if r.Offset != e.offset || string(r.Value) != e.value {
						t.Errorf("key %s: %q at %d, want %q at %d", k, r.Value, r.Offset, e.value, e.offset)
					}
				})
			}
			for k, e := range latest {
				if _, ok := seen[k]; e.live && !ok {
					t.Errorf("live key %s (%q at %d) lost", k, e.value, e.offset)
				}
			}
			if total >= 660 {
				t.Fatalf("read %d records: nothing was compacted", total)
			}
		})
	}
}

func TestCompactedTopicRejectsNullKeys(t *testing.T) {
	b := brokertest.Start(t)
	ctx := testCtx(t)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("keyed"), kgo.RecordRetries(1))
	cfg := map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, cfg, "keyed"); err != nil {
		t.Fatal(err)
	}
	err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("no key")}).FirstErr()
	if !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("null key into a compacted topic: %v, want INVALID_RECORD", err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}
