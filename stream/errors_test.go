package stream_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/brokertest"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/stream"
)

// The error-handling tests run end to end against brokertest: the handlers
// see real topics, partitions and offsets, and a fatal error comes out of
// App.Run.

type event struct {
	N int `json:"n"`
}

// jsonPassThrough reads in (value: JSON event) and writes the events to out.
func jsonPassThrough(t *testing.T) *stream.Topology {
	t.Helper()
	b := stream.NewBuilder()
	stream.Stream(b, []string{"in"}, str, serde.JSON[event]()).To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// runApp starts an app with a fast commit interval; the returned channel
// yields Run's result. The app is closed at cleanup.
func runApp(t *testing.T, addr string, topo *stream.Topology, opts ...stream.AppOpt) (*stream.App, <-chan error) {
	t.Helper()
	app, err := stream.NewApp(topo, append([]stream.AppOpt{stream.AppID("errs"), stream.Brokers(addr),
		stream.CommitInterval(100 * time.Millisecond), stream.StateDir(t.TempDir())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Run(context.Background()) }()
	t.Cleanup(func() { app.Close() })
	return app, done
}

// produceSync writes key/value pairs to topic and returns their offsets.
func produceSync(t *testing.T, addr, topic string, kvs ...[2]string) []int64 {
	t.Helper()
	cl := client(t, addr)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	recs := make([]*kgo.Record, len(kvs))
	for i, kv := range kvs {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(kv[0]), Value: []byte(kv[1])}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	offs := make([]int64, len(recs))
	for i, r := range recs {
		offs[i] = r.Offset
	}
	return offs
}

// consumeN reads topic from the start until it has n records, failing the
// test after 30s.
func consumeN(t *testing.T, addr, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := client(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: %d records after 30s, want %d", topic, len(got), n)
		}
		got = append(got, fs.Records()...)
	}
	return got
}

// waitErr waits (bounded) for the app's Run to return.
func waitErr(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("the app did not stop within 60s")
		return nil
	}
}

func headerMap(r *kgo.Record) map[string]string {
	m := map[string]string{}
	for _, h := range r.Headers {
		m[h.Key] = string(h.Value)
	}
	return m
}

func TestDeadLetterTopic(t *testing.T) {
	addr := brokertest.Start(t).Addr()
	createTopics(t, addr, 1, "in", "out", "dlq")
	_, done := runApp(t, addr, jsonPassThrough(t), stream.DeadLetterTopic("dlq"))

	offs := produceSync(t, addr, "in",
		[2]string{"a", `{"n":1}`},
		[2]string{"bad1", `not json`},
		[2]string{"b", `{"n":2}`},
		[2]string{"bad2", `{"n":`},
		[2]string{"c", `{"n":3}`},
	)
	bad := map[string]struct {
		value  string
		offset int64
	}{"bad1": {"not json", offs[1]}, "bad2": {`{"n":`, offs[3]}}

	dlq := consumeN(t, addr, "dlq", 2)
	for _, r := range dlq {
		want, ok := bad[string(r.Key)]
		if !ok {
			t.Fatalf("unexpected record in dlq: %q=%q", r.Key, r.Value)
		}
		if string(r.Value) != want.value {
			t.Errorf("dlq %s: value %q, want it unchanged: %q", r.Key, r.Value, want.value)
		}
		h := headerMap(r)
		if h["__sluice.error.topic"] != "in" || h["__sluice.error.partition"] != "0" ||
			h["__sluice.error.offset"] != strconv.FormatInt(want.offset, 10) || h["__sluice.error.message"] == "" {
			t.Errorf("dlq %s: headers %v, want topic in, partition 0, offset %d and a message", r.Key, h, want.offset)
		}
	}

	// The app goes on: records after the bad ones, and later ones, come through.
	produceSync(t, addr, "in", [2]string{"d", `{"n":4}`}, [2]string{"bad3", `[]x`})
	out := consumeN(t, addr, "out", 4)
	var keys []string
	for _, r := range out {
		keys = append(keys, string(r.Key))
	}
	if strings.Join(keys, ",") != "a,b,c,d" {
		t.Errorf("out keys %v, want a,b,c,d", keys)
	}
	consumeN(t, addr, "dlq", 3)
	select {
	case err := <-done:
		t.Fatalf("the app stopped: %v", err)
	default:
	}
}

func TestDeserializationErrorStopsApp(t *testing.T) {
	addr := brokertest.Start(t).Addr()
	createTopics(t, addr, 1, "in", "out")
	offs := produceSync(t, addr, "in", [2]string{"a", `{"n":1}`}, [2]string{"bad", `nope`}, [2]string{"b", `{"n":2}`})
	_, done := runApp(t, addr, jsonPassThrough(t))
	err := waitErr(t, done)
	de, ok := errors.AsType[*stream.DeserializationError](err)
	if !ok {
		t.Fatalf("Run returned %v, want a *stream.DeserializationError", err)
	}
	if de.Topic != "in" || de.Partition != 0 || de.Offset != offs[1] || de.IsKey {
		t.Errorf("error names %s-%d@%d (key %t), want in-0@%d (value)", de.Topic, de.Partition, de.Offset, de.IsKey, offs[1])
	}
	if !strings.Contains(err.Error(), "in-0@"+strconv.FormatInt(offs[1], 10)) {
		t.Errorf("message %q does not name the record", err)
	}
}

// panicky maps values to upper case and panics on "boom".
func panicky(t *testing.T) *stream.Topology {
	t.Helper()
	b := stream.NewBuilder()
	in := stream.Stream(b, []string{"in"}, str, str)
	stream.MapValues(in, func(_, v string) string {
		if v == "boom" {
			panic("boom")
		}
		return strings.ToUpper(v)
	}, stream.Named("upper")).WithSerdes(str, str).To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func TestProcessingErrorSkipped(t *testing.T) {
	addr := brokertest.Start(t).Addr()
	createTopics(t, addr, 1, "in", "out")
	var mu sync.Mutex
	var seen []*stream.ProcessingError
	_, done := runApp(t, addr, panicky(t), stream.OnProcessingError(func(e *stream.ProcessingError) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, e)
		return nil
	}))
	offs := produceSync(t, addr, "in", [2]string{"1", "a"}, [2]string{"2", "boom"}, [2]string{"3", "b"})
	produceSync(t, addr, "in", [2]string{"4", "boom"}, [2]string{"5", "c"})
	out := consumeN(t, addr, "out", 3)
	var vals []string
	for _, r := range out {
		vals = append(vals, string(r.Value))
	}
	if strings.Join(vals, ",") != "A,B,C" {
		t.Errorf("out %v, want A,B,C", vals)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 {
		t.Fatalf("handler called %d times, want 2", len(seen))
	}
	if e := seen[0]; e.Processor != "upper" || e.Topic != "in" || e.Partition != 0 || e.Offset != offs[1] || !strings.Contains(e.Err.Error(), "boom") {
		t.Errorf("first error %+v, want processor upper at in-0@%d with the panic", e, offs[1])
	}
	select {
	case err := <-done:
		t.Fatalf("the app stopped: %v", err)
	default:
	}
}

func TestProcessingErrorStopsApp(t *testing.T) {
	addr := brokertest.Start(t).Addr()
	createTopics(t, addr, 1, "in", "out")
	offs := produceSync(t, addr, "in", [2]string{"1", "a"}, [2]string{"2", "boom"})
	_, done := runApp(t, addr, panicky(t))
	err := waitErr(t, done)
	pe, ok := errors.AsType[*stream.ProcessingError](err)
	if !ok {
		t.Fatalf("Run returned %v, want a *stream.ProcessingError", err)
	}
	if pe.Processor != "upper" || pe.Offset != offs[1] {
		t.Errorf("error %+v, want processor upper at offset %d", pe, offs[1])
	}
}

func TestProductionErrorStopsApp(t *testing.T) {
	addr := brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) { c.DisableAutoCreateTopics = true })).Addr()
	createTopics(t, addr, 1, "in")
	b := stream.NewBuilder()
	stream.Stream(b, []string{"in"}, str, str).To("no-such-topic")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	produceSync(t, addr, "in", [2]string{"k", "v"})
	start := time.Now()
	_, done := runApp(t, addr, topo)
	err = waitErr(t, done)
	if err == nil || !strings.Contains(err.Error(), "no-such-topic") {
		t.Fatalf("Run returned %v, want an error naming no-such-topic", err)
	}
	t.Logf("Run returned after %v: %v", time.Since(start).Round(time.Millisecond), err)
}
