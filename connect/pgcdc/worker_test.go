package pgcdc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker/brokertest"
	"github.com/sluicehq/sluice/connect"
	"github.com/sluicehq/sluice/connect/pgcdc"
)

// worker runs a connect worker with the postgres-cdc plugin.
type worker struct {
	*connect.Worker
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func startWorker(t testing.TB, addr string, opts ...connect.Opt) *worker {
	t.Helper()
	opts = append([]connect.Opt{connect.Brokers(kgo.SeedBrokers(addr)), connect.Plugins(pgcdc.Plugin()), connect.WorkerID("test-worker")}, opts...)
	w, err := connect.NewWorker(opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wk := &worker{Worker: w, cancel: cancel, done: make(chan error, 1)}
	go func() { wk.done <- w.Run(ctx) }()
	t.Cleanup(func() { wk.stop(t) })
	return wk
}

// stop cancels the worker's context (its tasks stop wherever they are),
// waits for it and closes it.
func (w *worker) stop(t testing.TB) {
	w.halt(t)
	w.Close()
}

// halt cancels the worker's context and waits for Run to return.
func (w *worker) halt(t testing.TB) {
	w.once.Do(func() {
		w.cancel()
		if err := <-w.done; err != nil {
			t.Errorf("worker run: %v", err)
		}
	})
}

// consumer reads a topic from the start.
type consumer struct {
	t  *testing.T
	cl *kgo.Client
}

func newConsumer(t *testing.T, addr, topic string) *consumer {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &consumer{t, cl}
}

// next returns the next n records.
func (c *consumer) next(n int) []*kgo.Record {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), waitTimeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := c.cl.PollRecords(ctx, n-len(out))
		if ctx.Err() != nil {
			c.t.Fatalf("consumed %d of %d records", len(out), n)
		}
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				c.t.Logf("fetch: %v", err)
			}
		})
		out = append(out, fs.Records()...)
	}
	return out
}

func kv(recs []*kgo.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Key)+" "+string(r.Value))
	}
	return out
}

// TestWorkerEndToEnd: snapshot and changes reach Kafka through the worker
// as Debezium's JSON (keys, envelopes, tombstones), a second connector with
// ExtractNewRecordState gets flat rows, and the slot's confirmed_flush_lsn
// advances once the worker stored the records.
func TestWorkerEndToEnd(t *testing.T) {
	p := startPG(t)
	b := brokertest.Start(t)
	p.exec(t, "CREATE TABLE items (id int PRIMARY KEY, name text)", "INSERT INTO items VALUES (1, 'a'), (2, 'b')")
	w := startWorker(t, b.Addr())
	if _, err := w.Create(t.Context(), "pg", p.config("srv", "s_e2e")); err != nil {
		t.Fatal(err)
	}
	flat := p.config("flat", "s_flat", "transforms", "unwrap",
		"transforms.unwrap.type", "io.debezium.transforms.ExtractNewRecordState")
	if _, err := w.Create(t.Context(), "pg-flat", flat); err != nil {
		t.Fatal(err)
	}
	c := newConsumer(t, b.Addr(), "srv.public.items")
	snap := c.next(2)
	for i, r := range snap {
		var v map[string]any
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf(`{"id":%d}`, i+1); string(r.Key) != want || v["op"] != "r" {
			t.Fatalf("snapshot record %d: %s %s", i, r.Key, r.Value)
		}
	}
	before := p.query(t, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 's_e2e'")
	walBefore := p.query(t, "SELECT pg_current_wal_lsn()::text")
	p.exec(t, "INSERT INTO items VALUES (3, 'c')", "UPDATE items SET name = 'A' WHERE id = 1", "DELETE FROM items WHERE id = 2")
	recs := c.next(4)
	var ops []string
	for _, r := range recs {
		if r.Value == nil {
			ops = append(ops, "tombstone:"+string(r.Key))
			continue
		}
		var v struct {
			Op     string
			After  map[string]any
			Source map[string]any
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		ops = append(ops, v.Op+":"+string(r.Key))
	}
	if got := strings.Join(ops, " "); got != `c:{"id":3} u:{"id":1} d:{"id":2} tombstone:{"id":2}` {
		t.Fatalf("changes: %s", got)
	}
	// The worker stores offsets and commits just after Kafka acknowledged
	// the records, and the task reports the position within about 100ms.
	deadline := time.Now().Add(waitTimeout)
	for {
		q := fmt.Sprintf("SELECT (confirmed_flush_lsn > '%s'::pg_lsn)::text FROM pg_replication_slots WHERE slot_name = 's_e2e'", walBefore)
		if p.query(t, q) == "true" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("confirmed_flush_lsn stayed at %s (before the changes: %s, WAL at %s)", p.query(t, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 's_e2e'"), before, walBefore)
		}
		time.Sleep(50 * time.Millisecond)
	}

	got := kv(newConsumer(t, b.Addr(), "flat.public.items").next(5))
	want := []string{`{"id":1} {"id":1,"name":"a"}`, `{"id":2} {"id":2,"name":"b"}`, `{"id":3} {"id":3,"name":"c"}`,
		`{"id":1} {"id":1,"name":"A"}`, `{"id":2} `}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("flat records:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestWorkerRestartMidStream: the worker is stopped while a writer is
// committing transactions, then a new worker resumes from the stored offset
// and the slot. Every change is in the topic, and a change appears twice
// only if it lies after the offset stored when the first worker stopped.
func TestWorkerRestartMidStream(t *testing.T) {
	p := startPG(t)
	b := brokertest.Start(t)
	p.exec(t, "CREATE TABLE t (id int PRIMARY KEY, v int)")
	cfg := p.config("srv", "s_restart", "max.batch.size", "50")
	w := startWorker(t, b.Addr())
	if _, err := w.Create(t.Context(), "pg", cfg); err != nil {
		t.Fatal(err)
	}
	// Wait for the slot, so that the writer's changes are all captured.
	deadline := time.Now().Add(waitTimeout)
	for p.query(t, "SELECT count(*)::text FROM pg_replication_slots WHERE slot_name = 's_restart'") != "1" {
		if time.Now().After(deadline) {
			t.Fatal("no replication slot")
		}
		time.Sleep(20 * time.Millisecond)
	}

	const txns = 300 // of 10 inserts and one update each
	writerDone := make(chan struct{})
	t.Cleanup(func() { <-writerDone })
	go func() {
		defer close(writerDone)
		for i := range txns {
			q := fmt.Sprintf("BEGIN; INSERT INTO t SELECT g, 0 FROM generate_series(%d, %d) g; UPDATE t SET v = 1 WHERE id = %d; COMMIT",
				i*10+1, i*10+10, i*10+1)
			if err := p.s.Exec(context.Background(), p.db, q); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	c := newConsumer(t, b.Addr(), "srv.public.t")
	first := c.next(800)
	w.stop(t)
	stored := storedOffset(t, b.Addr())
	t.Logf("stopped after %d+ records; stored offset %v", len(first), stored)

	startWorker(t, b.Addr())
	<-writerDone
	const want = txns * 11
	seen := map[string]int{}
	var all []*kgo.Record
	all = append(all, first...)
	for _, r := range first {
		seen[eventID(t, r)]++
	}
	for len(seen) < want {
		recs := c.next(1)
		all = append(all, recs...)
		for _, r := range recs {
			seen[eventID(t, r)]++
		}
		if len(all) > 3*want {
			t.Fatalf("%d records but only %d distinct changes", len(all), len(seen))
		}
	}
	clear(seen)
	for _, r := range all {
		seen[eventID(t, r)]++
	}
	storedCommit := stored["lsn_commit"].(int64)
	dups := 0
	for _, r := range all {
		id := eventID(t, r)
		if seen[id] < 2 {
			continue
		}
		dups++
		var v struct{ Source struct{ Sequence string } }
		json.Unmarshal(r.Value, &v)
		var seq []string
		json.Unmarshal([]byte(v.Source.Sequence), &seq)
		commit, _ := strconv.ParseInt(seq[0], 10, 64)
		if commit < storedCommit {
			t.Fatalf("change %s duplicated though its transaction (commit LSN %d) precedes the stored offset %v", id, commit, stored)
		}
	}
	t.Logf("%d records for %d changes (%d duplicated records)", len(all), want, dups)
	if len(seen) != want {
		t.Fatalf("%d distinct changes, want %d", len(seen), want)
	}
}

// storedOffset reads the last source offset stored in connect-offsets.
func storedOffset(t *testing.T, addr string) map[string]any {
	t.Helper()
	ends, err := kadm.NewClient(newConsumer(t, addr, "connect-offsets").cl).ListEndOffsets(t.Context(), "connect-offsets")
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup("connect-offsets", 0)
	c := newConsumer(t, addr, "connect-offsets")
	var last []byte
	for _, r := range c.next(int(end.Offset)) {
		if string(r.Key) == `["pg",{"server":"srv"}]` {
			last = r.Value
		}
	}
	var off map[string]any
	d := json.NewDecoder(bytes.NewReader(last))
	d.UseNumber()
	if err := d.Decode(&off); err != nil {
		t.Fatalf("stored offset %q: %v", last, err)
	}
	for k, v := range off {
		if n, ok := v.(json.Number); ok {
			off[k], _ = n.Int64()
		}
	}
	return off
}

// eventID names the change a record carries: op, key and the row's v.
func eventID(t *testing.T, r *kgo.Record) string {
	var v struct {
		Op    string
		After map[string]any
	}
	if err := json.Unmarshal(r.Value, &v); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s %s %v", v.Op, r.Key, v.After["v"])
}
