package broker_test

import (
	"crypto/rand"
	"errors"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/brokertest"
	"github.com/sluicehq/sluice/broker/internal/vfs"
)

// TestFullDiskFailsProducesWithoutCorruption fills the "disk" (ENOSPC on
// write), checks that produces fail with KAFKA_STORAGE_ERROR instead of
// being acknowledged, then frees space and checks that the log continues
// right after the last acknowledged record, also after a restart.
func TestFullDiskFailsProducesWithoutCorruption(t *testing.T) {
	ffs := vfs.NewFaultFS(vfs.Default)
	withFS := brokertest.WithConfig(func(c *broker.Config) { c.FS = ffs })
	b := brokertest.Start(t, withFS)
	r := dialRaw(t, b.Addr())
	createTopicRaw(t, r, "disk", 1)
	produce := func() kmsg.ProduceResponseTopicPartition {
		t.Helper()
		r.send(produceReq("disk", 0, -1, makeBatch(-1, -1, -1, 10, 1000)), 7)
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(7)
		r.recv(resp)
		return resp.Topics[0].Partitions[0]
	}
	for i := range 3 {
		if p := produce(); p.ErrorCode != 0 || p.BaseOffset != int64(10*i) {
			t.Fatalf("produce %d: %v at %d", i, kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
		}
	}
	ffs.FailWritesAfter(50, syscall.ENOSPC) // a torn write, then nothing
	for range 3 {
		if p := produce(); p.ErrorCode != kerr.KafkaStorageError.Code {
			t.Fatalf("produce on a full disk: %v, want KAFKA_STORAGE_ERROR", kerr.ErrorForCode(p.ErrorCode))
		}
	}
	ffs.Reset()
	if p := produce(); p.ErrorCode != 0 || p.BaseOffset != 30 {
		t.Fatalf("produce after space came back: %v at %d, want offset 30", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	dir := b.Config.DataDir
	b.Stop(t)
	b2 := brokertest.Start(t, brokertest.DataDir(dir))
	ctx := testCtx(t)
	c := newClient(t, b2.Addr(), kgo.ConsumeTopics("disk"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	n := 0
	for n < 40 {
		fs := c.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != int64(n) {
				t.Fatalf("offset %d at position %d", r.Offset, n)
			}
			n++
		})
	}
	end, _ := kadm.NewClient(c).ListEndOffsets(ctx, "disk")
	if o, _ := end.Lookup("disk", 0); o.Offset != 40 {
		t.Fatalf("end offset %d after restart, want 40", o.Offset)
	}
}

func TestMaxMessageBytes(t *testing.T) {
	b := brokertest.Start(t)
	ctx := testCtx(t)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("small"), kgo.RecordRetries(1))
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": kadm.StringPtr("1000")}, "small"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: make([]byte, 100)}).FirstErr(); err != nil {
		t.Fatalf("small record: %v", err)
	}
	big := make([]byte, 5000)
	_, _ = rand.Read(big) // incompressible: franz-go compresses with snappy by default
	err := cl.ProduceSync(ctx, &kgo.Record{Value: big}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("oversized record: %v, want MESSAGE_TOO_LARGE", err)
	}
}

func TestLogAppendTime(t *testing.T) {
	var now atomic.Int64
	now.Store(1_800_000_000_000)
	clock := brokertest.WithConfig(func(c *broker.Config) { c.Now = func() time.Time { return time.UnixMilli(now.Load()) } })
	b := brokertest.Start(t, clock)
	ctx := testCtx(t)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("lat"), kgo.ConsumeTopics("lat"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	cfg := map[string]*string{"message.timestamp.type": kadm.StringPtr("LogAppendTime")}
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, cfg, "lat"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x"), Timestamp: time.UnixMilli(1000)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fs := cl.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		t.Fatal(err)
	}
	// The consumer sees the broker's time, not the producer's.
	got := fs.Records()[0]
	if got.Timestamp.UnixMilli() != now.Load() || got.Attrs.TimestampType() != 1 {
		t.Fatalf("consumed timestamp %d type %d, want %d LogAppendTime", got.Timestamp.UnixMilli(), got.Attrs.TimestampType(), now.Load())
	}
}

func TestRetentionDeletesOldSegments(t *testing.T) {
	var now atomic.Int64
	now.Store(1_800_000_000_000)
	clock := brokertest.WithConfig(func(c *broker.Config) { c.Now = func() time.Time { return time.UnixMilli(now.Load()) } })
	b := brokertest.Start(t, clock)
	ctx := testCtx(t)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("ret"))
	adm := kadm.NewClient(cl)
	cfg := map[string]*string{"retention.ms": kadm.StringPtr("60000"), "segment.bytes": kadm.StringPtr("1024")}
	if _, err := adm.CreateTopic(ctx, 1, 1, cfg, "ret"); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		ts := time.UnixMilli(now.Load())
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i) + "-padding-padding-padding"), Timestamp: ts}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	b.EnforceRetention()
	if o, _ := mustStart(t, adm, "ret"); o != 0 {
		t.Fatalf("fresh data deleted: start offset %d", o)
	}
	now.Add(10 * 60 * 1000) // ten minutes later everything is past retention.ms
	b.EnforceRetention()
	if o, _ := mustStart(t, adm, "ret"); o != 40 {
		t.Fatalf("start offset %d after retention, want 40 (everything expired)", o)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("new")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func mustStart(t *testing.T, adm *kadm.Client, topic string) (int64, error) {
	t.Helper()
	offs, err := adm.ListStartOffsets(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := offs.Lookup(topic, 0)
	return o.Offset, o.Err
}
