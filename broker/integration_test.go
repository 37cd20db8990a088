package broker_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFranzGoRoundTrip produces many records with franz-go, for every codec
// and for 1 and 4 partitions, and consumes them back: each partition must
// hold exactly what was produced, in produce order, at offsets 0.., with the
// offsets the produce acks reported, byte-identical keys and values (null
// distinct from empty), headers (order, repeats, null and empty values),
// the producer's timestamps (CreateTime) and the batch codec asked for.
func TestFranzGoRoundTrip(t *testing.T) {
	addr := startBroker(t)
	for _, partitions := range []int32{1, 4} {
		for _, c := range codecs {
			t.Run(fmt.Sprintf("partitions=%d/codec=%s", partitions, c.name), func(t *testing.T) {
				roundTrip(t, addr, partitions, c.kgoID, c.attr)
			})
		}
	}
}

func roundTrip(t *testing.T, addr string, partitions int32, codec kgo.CompressionCodec, codecAttr uint8) {
	const n = 2000
	topic := newTopic(t, addr, "roundtrip", partitions)
	base := time.UnixMilli(1_700_000_000_000)

	want := make([]*kgo.Record, n)
	for i := range n {
		r := &kgo.Record{
			Topic: topic,
			// Uneven spread over the partitions.
			Partition: int32((i * i / 7) % int(partitions)),
			// Out of order on purpose: CreateTime is whatever the producer says.
			Timestamp: base.Add(time.Duration((i*7919)%100_000) * time.Millisecond),
		}
		switch i % 10 {
		case 0: // null key
		case 1:
			r.Key = []byte{}
		default:
			r.Key = fmt.Appendf(nil, "key-%d", i%97)
		}
		switch i % 13 {
		case 0: // null value (a tombstone)
		case 1:
			r.Value = []byte{}
		default:
			// Sizes from a few bytes to a few KB, partly incompressible.
			r.Value = fmt.Appendf(nil, "value-%d-%s-%x", i, strings.Repeat("ab", i%50*20), i*2654435761)
		}
		switch i % 4 {
		case 1:
			r.Headers = []kgo.RecordHeader{{Key: "trace", Value: fmt.Appendf(nil, "t-%d", i)}}
		case 2:
			r.Headers = []kgo.RecordHeader{{Key: "dup", Value: []byte("1")}, {Key: "other", Value: []byte("x")}, {Key: "dup", Value: []byte("2")}}
		case 3:
			r.Headers = []kgo.RecordHeader{{Key: "null", Value: nil}, {Key: "empty", Value: []byte{}}}
		}
		want[i] = r
	}

	cl := newClient(t, addr, kgo.ProducerBatchCompression(codec), kgo.ProducerBatchMaxBytes(64<<10))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	// Produce a copy so that what franz-go fills in on the records cannot
	// leak into want.
	produced := make([]*kgo.Record, n)
	for i, r := range want {
		cp := *r
		produced[i] = &cp
	}
	if err := cl.ProduceSync(ctx, produced...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	wantBy := make(map[int32][]*kgo.Record)
	for i, r := range want {
		r.Offset = int64(len(wantBy[r.Partition]))
		if produced[i].Offset != r.Offset {
			t.Fatalf("record %d: produce ack says offset %d in partition %d, want %d", i, produced[i].Offset, r.Partition, r.Offset)
		}
		wantBy[r.Partition] = append(wantBy[r.Partition], r)
	}

	consumer := newClient(t, addr,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(256<<10), kgo.FetchMaxPartitionBytes(64<<10))
	gotBy := make(map[int32][]*kgo.Record)
	for got := 0; got < n; {
		fs := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume: timed out after %d of %d records: %v", got, n, ctx.Err())
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("consume %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		for r := range fs.RecordsAll() {
			gotBy[r.Partition] = append(gotBy[r.Partition], r)
			got++
		}
	}

	for p := range partitions {
		g, w := gotBy[p], wantBy[p]
		if len(g) != len(w) {
			t.Errorf("partition %d: got %d records, want %d", p, len(g), len(w))
		}
		for i := range min(len(g), len(w)) {
			if d := recordDiff(g[i], w[i], codecAttr); d != "" {
				t.Fatalf("partition %d, record %d: %s", p, i, d)
			}
		}
	}
}

// recordDiff describes how got differs from want, or returns "".
func recordDiff(got, want *kgo.Record, codecAttr uint8) string {
	var d []string
	if got.Partition != want.Partition || got.Offset != want.Offset {
		d = append(d, fmt.Sprintf("at p%d@%d, want p%d@%d", got.Partition, got.Offset, want.Partition, want.Offset))
	}
	if !sameBytes(got.Key, want.Key) {
		d = append(d, fmt.Sprintf("key %s, want %s", showBytes(got.Key), showBytes(want.Key)))
	}
	if !sameBytes(got.Value, want.Value) {
		d = append(d, fmt.Sprintf("value %s, want %s", showBytes(got.Value), showBytes(want.Value)))
	}
	if len(got.Headers) != len(want.Headers) {
		d = append(d, fmt.Sprintf("%d headers, want %d", len(got.Headers), len(want.Headers)))
	} else {
		for i, h := range got.Headers {
			if w := want.Headers[i]; h.Key != w.Key || !sameBytes(h.Value, w.Value) {
				d = append(d, fmt.Sprintf("header %d %q=%s, want %q=%s", i, h.Key, showBytes(h.Value), w.Key, showBytes(w.Value)))
			}
		}
	}
	if !got.Timestamp.Equal(want.Timestamp) {
		d = append(d, fmt.Sprintf("timestamp %d, want %d", got.Timestamp.UnixMilli(), want.Timestamp.UnixMilli()))
	}
	if tt := got.Attrs.TimestampType(); tt != 0 {
		d = append(d, fmt.Sprintf("timestamp type %d, want 0 (CreateTime)", tt))
	}
	if cc := got.Attrs.CompressionType(); cc != codecAttr {
		d = append(d, fmt.Sprintf("batch codec %d, want %d", cc, codecAttr))
	}
	return strings.Join(d, "; ")
}

// sameBytes is bytes.Equal that tells null from empty.
func sameBytes(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
}

func showBytes(b []byte) string {
	if b == nil {
		return "null"
	}
	if len(b) > 40 {
		return fmt.Sprintf("%q...(%d bytes)", b[:40], len(b))
	}
	return fmt.Sprintf("%q", b)
}
