package connect_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker/brokertest"
	"github.com/sluicehq/sluice/connect"
	"github.com/sluicehq/sluice/connect/file"
)

// TestDeadLetterQueue: with errors.tolerance=none a record that does not
// convert fails the task; with all it goes to the dead letter topic with
// __connect.errors.* headers and the others reach the sink.
func TestDeadLetterQueue(t *testing.T) {
	b := brokertest.Start(t)
	out := filepath.Join(t.TempDir(), "out.txt")
	createTopic(t, b.Addr(), "events", 1)
	produce(t, b.Addr(), "events", `"ok-1"`, `{not json`, `"ok-2"`)
	w, _ := startWorker(t, b.Addr())
	ctx := t.Context()
	cfg := map[string]string{"connector.class": "file-sink", "file": out, "topics": "events"}
	if _, err := w.Create(ctx, "sink", cfg); err != nil {
		t.Fatal(err)
	}
	eventually(t, "task FAILED", func() bool { return taskStates(status(t, w, "sink")) == "RUNNING/FAILED" })
	if tr := status(t, w, "sink").Tasks[0].Trace; !strings.Contains(tr, "VALUE_CONVERTER") || !strings.Contains(tr, "events-0@1") {
		t.Fatalf("trace %q: want the stage and the record", tr)
	}

	cfg["errors.tolerance"] = "all"
	cfg["errors.deadletterqueue.topic.name"] = "dlq"
	cfg["errors.deadletterqueue.context.headers.enable"] = "true"
	if created, _, err := w.PutConfig(ctx, "sink", cfg); err != nil || created {
		t.Fatalf("put config: created=%v err=%v", created, err)
	}
	eventually(t, "2 lines", func() bool { return len(readLines(t, out)) == 2 })
	if got := readLines(t, out); !slices.Equal(got, []string{"ok-1", "ok-2"}) {
		t.Fatalf("lines %q", got)
	}
	dead := consumeN(t, b.Addr(), "dlq", 1)[0]
	if string(dead.Value) != "{not json" {
		t.Fatalf("dead letter value %q", dead.Value)
	}
	h := map[string]string{}
	for _, kh := range dead.Headers {
		h[kh.Key] = string(kh.Value)
	}
	for k, want := range map[string]string{
		"__connect.errors.topic": "events", "__connect.errors.partition": "0", "__connect.errors.offset": "1",
		"__connect.errors.connector.name": "sink", "__connect.errors.task.id": "0", "__connect.errors.stage": "VALUE_CONVERTER",
	} {
		if h[k] != want {
			t.Errorf("header %s = %q, want %q", k, h[k], want)
		}
	}
	if !strings.Contains(h["__connect.errors.exception.message"], "json") {
		t.Errorf("exception message %q", h["__connect.errors.exception.message"])
	}
	if s := taskStates(status(t, w, "sink")); s != "RUNNING/RUNNING" {
		t.Fatalf("status %s", s)
	}
}

// flakySink fails its first Put once per failures count, then records
// what it is given.
type flakySink struct {
	failures  atomic.Int32
	retriable bool // fail with connect.Retriable
	mu        sync.Mutex
	got       []string
}

func (s *flakySink) Validate(map[string]string) []connect.ConfigError { return nil }
func (s *flakySink) TaskConfigs(_ map[string]string, max int) ([]map[string]string, error) {
	out := make([]map[string]string, max)
	for i := range out {
		out[i] = map[string]string{}
	}
	return out, nil
}
func (s *flakySink) NewTask() connect.SinkTask { return flakyTask{s} }

type flakyTask struct{ s *flakySink }

func (flakyTask) Start(context.Context, map[string]string) error { return nil }
func (flakyTask) Stop() error                                    { return nil }
func (t flakyTask) Put(_ context.Context, recs []connect.SinkRecord) error {
	if t.s.failures.Add(-1) >= 0 {
		if t.s.retriable {
			return connect.Retriable(errors.New("database restarting"))
		}
		return errors.New("database unavailable")
	}
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	for _, r := range recs {
		t.s.got = append(t.s.got, r.Value.(string))
	}
	return nil
}

func (s *flakySink) values() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// TestFailedTaskRestart: a failing Put marks the task FAILED (nothing is
// committed), restarting only failed tasks brings it back, and the records
// are delivered again.
func TestFailedTaskRestart(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b.Addr(), "orders", 1)
	produce(t, b.Addr(), "orders", `"a"`, `"b"`)
	fs := &flakySink{}
	fs.failures.Store(1)
	w, err := connect.NewWorker(connect.Brokers(kgo.SeedBrokers(b.Addr())), connect.WorkerID("w"),
		connect.Plugins(file.SourcePlugin(), connect.Plugin{Class: "flaky", Sink: func() connect.Sink { return fs }}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; w.Close() })

	if _, err := w.Create(t.Context(), "flaky", map[string]string{"connector.class": "flaky", "topics": "orders"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "task FAILED", func() bool { return taskStates(status(t, w, "flaky")) == "RUNNING/FAILED" })
	if tr := status(t, w, "flaky").Tasks[0].Trace; !strings.Contains(tr, "database unavailable") {
		t.Fatalf("trace %q", tr)
	}
	// Restarting the connector alone leaves a failed task failed.
	if err := w.Restart(t.Context(), "flaky", false, false); err != nil {
		t.Fatal(err)
	}
	if s := taskStates(status(t, w, "flaky")); s != "RUNNING/FAILED" {
		t.Fatalf("after connector restart: %s", s)
	}
	if err := w.Restart(t.Context(), "flaky", true, true); err != nil {
		t.Fatal(err)
	}
	if s := taskStates(status(t, w, "flaky")); s != "RUNNING/RUNNING" {
		t.Fatalf("after restarting failed tasks: %s", s)
	}
	eventually(t, "records delivered", func() bool { return len(fs.values()) == 2 })
	if got := fs.values(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("delivered %q", got)
	}
}

// TestRetriableErrors: a sink's Put and a source's Poll failing with
// connect.Retriable are retried with a backoff, the task staying RUNNING,
// and every record arrives once.
func TestRetriableErrors(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b.Addr(), "orders", 1)
	produce(t, b.Addr(), "orders", `"a"`, `"b"`)
	fs := &flakySink{retriable: true}
	fs.failures.Store(3)
	src := &flakySource{}
	src.failures.Store(2)
	w, err := connect.NewWorker(connect.Brokers(kgo.SeedBrokers(b.Addr())), connect.WorkerID("w"),
		connect.Plugins(connect.Plugin{Class: "flaky", Sink: func() connect.Sink { return fs }},
			connect.Plugin{Class: "flaky-source", Source: func() connect.Source { return src }}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; w.Close() })

	if _, err := w.Create(t.Context(), "flaky", map[string]string{"connector.class": "flaky", "topics": "orders",
		"errors.retry.max.delay.ms": "200"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Create(t.Context(), "flaky-source", map[string]string{"connector.class": "flaky-source"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "sink records delivered", func() bool { return len(fs.values()) == 2 })
	if got := fs.values(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("delivered %q", got)
	}
	if s := taskStates(status(t, w, "flaky")); s != "RUNNING/RUNNING" {
		t.Fatalf("sink after retries: %s", s)
	}
	if n := fs.failures.Load(); n >= 0 {
		t.Fatalf("Put was not retried through its failures (%d left)", n+1)
	}
	if got := consumeN(t, b.Addr(), "flaky-out", 1); string(got[0].Value) != `"x"` {
		t.Fatalf("source record %q", got[0].Value)
	}
	if s := taskStates(status(t, w, "flaky-source")); s != "RUNNING/RUNNING" {
		t.Fatalf("source after retries: %s", s)
	}
}

// flakySource fails Poll with a retriable error failures times, then
// returns one record once.
type flakySource struct {
	failures atomic.Int32
	sent     atomic.Bool
}

func (s *flakySource) Validate(map[string]string) []connect.ConfigError { return nil }
func (s *flakySource) TaskConfigs(map[string]string, int) ([]map[string]string, error) {
	return []map[string]string{{}}, nil
}
func (s *flakySource) NewTask() connect.SourceTask { return flakySourceTask{s} }

type flakySourceTask struct{ s *flakySource }

func (flakySourceTask) Start(context.Context, map[string]string, connect.OffsetReader) error {
	return nil
}
func (flakySourceTask) Stop() error { return nil }
func (t flakySourceTask) Poll(ctx context.Context) ([]connect.SourceRecord, error) {
	if t.s.failures.Add(-1) >= 0 {
		return nil, connect.Retriable(errors.New("replication connection lost"))
	}
	if t.s.sent.Swap(true) {
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond): // an idle source's poll wait
		}
		return nil, nil
	}
	return []connect.SourceRecord{{Record: connect.Record{Topic: "flaky-out", Value: "x"},
		SourcePartition: map[string]any{"p": "0"}, SourceOffset: map[string]any{"o": 1}}}, nil
}

// TestSourceErrorTolerance: a source record failing a transformation fails
// the task with errors.tolerance=none and is skipped with all (its offset
// still advances).
func TestSourceErrorTolerance(t *testing.T) {
	b := brokertest.Start(t)
	dir := t.TempDir()
	createTopic(t, b.Addr(), "tol", 1)
	w, _ := startWorker(t, b.Addr())
	// InsertField$Value needs a map; file-source values are strings, so
	// every record fails the transformation.
	in := filepath.Join(dir, "in.txt")
	appendLines(t, in, "a", "b")
	cfg := map[string]string{"connector.class": "file-source", "file": in, "topic": "tol",
		"transforms": "i", "transforms.i.type": "org.apache.kafka.connect.transforms.InsertField$Value", "transforms.i.topic.field": "t"}
	if _, err := w.Create(t.Context(), "src", cfg); err != nil {
		t.Fatal(err)
	}
	eventually(t, "task FAILED", func() bool { return taskStates(status(t, w, "src")) == "RUNNING/FAILED" })
	if tr := status(t, w, "src").Tasks[0].Trace; !strings.Contains(tr, "InsertField$Value") {
		t.Fatalf("trace %q", tr)
	}
	cfg["errors.tolerance"] = "all"
	if _, _, err := w.PutConfig(t.Context(), "src", cfg); err != nil {
		t.Fatal(err)
	}
	eventually(t, "offsets past the skipped lines", func() bool {
		offs, err := w.Offsets(t.Context(), "src")
		return err == nil && len(offs) == 1 && offs[0].Offset["position"] == int64(4)
	})
	if n := endOffset(t, b.Addr(), "tol"); n != 0 {
		t.Fatalf("%d records produced, want every one skipped", n)
	}
	if s := taskStates(status(t, w, "src")); s != "RUNNING/RUNNING" {
		t.Fatalf("status %s", s)
	}
}

// pickyTask takes string values except "bad", which it rejects with a
// PutError.
type pickyTask struct{ flakyTask }

func (t pickyTask) Put(ctx context.Context, recs []connect.SinkRecord) error {
	var take []connect.SinkRecord
	var rejected []connect.RejectedRecord
	for _, r := range recs {
		if r.Value == "bad" {
			rejected = append(rejected, connect.RejectedRecord{Record: r, Err: errors.New("picky: cannot store bad")})
		} else {
			take = append(take, r)
		}
	}
	if err := t.flakyTask.Put(ctx, take); err != nil {
		return err
	}
	if len(rejected) > 0 {
		return &connect.PutError{Rejected: rejected}
	}
	return nil
}

type pickySink struct{ *flakySink }

func (s pickySink) NewTask() connect.SinkTask { return pickyTask{flakyTask{s.flakySink}} }

// TestPutErrorTolerance: records a sink rejects with a PutError fail the
// task with errors.tolerance=none; with all they go to the dead letter
// queue (stage TASK_PUT) and the rest of the batch is committed.
func TestPutErrorTolerance(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b.Addr(), "orders", 1)
	produce(t, b.Addr(), "orders", `"a"`, `"bad"`, `"b"`)
	fs := &flakySink{}
	w, _ := startWorker(t, b.Addr(), connect.Plugins(connect.Plugin{Class: "picky", Sink: func() connect.Sink { return pickySink{fs} }}))
	cfg := map[string]string{"connector.class": "picky", "topics": "orders"}
	if _, err := w.Create(t.Context(), "picky", cfg); err != nil {
		t.Fatal(err)
	}
	eventually(t, "task FAILED", func() bool { return taskStates(status(t, w, "picky")) == "RUNNING/FAILED" })
	if tr := status(t, w, "picky").Tasks[0].Trace; !strings.Contains(tr, "orders-0@1: picky: cannot store bad") {
		t.Fatalf("trace %q", tr)
	}

	cfg["errors.tolerance"] = "all"
	cfg["errors.deadletterqueue.topic.name"] = "dlq"
	cfg["errors.deadletterqueue.context.headers.enable"] = "true"
	if _, _, err := w.PutConfig(t.Context(), "picky", cfg); err != nil {
		t.Fatal(err)
	}
	dead := consumeN(t, b.Addr(), "dlq", 1)[0]
	h := map[string]string{}
	for _, kh := range dead.Headers {
		h[kh.Key] = string(kh.Value)
	}
	if string(dead.Value) != `"bad"` || h["__connect.errors.stage"] != "TASK_PUT" || h["__connect.errors.offset"] != "1" ||
		h["__connect.errors.exception.message"] != "picky: cannot store bad" {
		t.Fatalf("dead letter %q, headers %v", dead.Value, h)
	}
	eventually(t, "offsets committed", func() bool {
		offs, err := w.Offsets(t.Context(), "picky")
		return err == nil && len(offs) == 1 && offs[0].Offset["kafka_offset"] == int64(3)
	})
	// The first attempt took "a" and "b" before the task failed (at-least-
	// once: they come again).
	if got := fs.values(); !slices.Equal(got, []string{"a", "b", "a", "b"}) {
		t.Fatalf("delivered %q", got)
	}
	if s := taskStates(status(t, w, "picky")); s != "RUNNING/RUNNING" {
		t.Fatalf("status %s", s)
	}
}
