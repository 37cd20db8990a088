package pgcdc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker/brokertest"
	"github.com/sluicehq/sluice/connect"
	"github.com/sluicehq/sluice/internal/pgserver"
)

// captureGoroutines counts the capture goroutines of slot (they carry the
// pprof label slot=<slot>): the most seen in a few goroutine profiles, as
// a profile now and then misses a goroutine that is running.
func captureGoroutines(t testing.TB, slot string) int {
	t.Helper()
	n := 0
	for range 5 {
		n = max(n, countLabelled(t, slot))
	}
	return n
}

func countLabelled(t testing.TB, slot string) int {
	var b bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range strings.Split(b.String(), "\n\n") {
		if !strings.Contains(g, `"slot":"`+slot+`"`) {
			continue
		}
		// "<count> @ 0x..." heads each group of identical stacks.
		if i := strings.Index(g, " @ "); i > 0 {
			c, _ := strconv.Atoi(strings.TrimSpace(g[:i]))
			n += c
		}
	}
	return n
}

// pollRetrying polls as the worker does, retrying retriable errors after a
// short backoff, until ids holds want distinct ids; it returns how many
// Polls failed with a retriable error. Each failure is followed by a
// Commit, as if the worker committed a batch during the outage.
func (r *runner) pollRetrying(ids map[int64]int, order *[]int64, want int) (retried int) {
	r.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	backoff := 10 * time.Millisecond
	for len(ids) < want {
		if time.Now().After(deadline) {
			r.t.Fatalf("got %d of %d distinct ids after %d retried polls", len(ids), want, retried)
		}
		recs, err := r.task.Poll(r.t.Context())
		if err != nil {
			if !errors.Is(err, connect.ErrRetriable) {
				r.t.Fatalf("poll: %v (not retriable)", err)
			}
			r.t.Logf("poll: %v", err)
			retried++
			if err := r.task.(connect.Committer).Commit(r.t.Context()); err != nil {
				r.t.Fatalf("commit during the outage: %v", err)
			}
			time.Sleep(backoff) // the worker's backoff, not synchronisation
			backoff = min(2*backoff, 500*time.Millisecond)
			continue
		}
		backoff = 10 * time.Millisecond
		for _, rec := range recs {
			id := field(rec.Value, "after", "id").(int64)
			ids[id]++
			*order = append(*order, id)
		}
		if len(recs) > 0 {
			r.off.store(r.t, recs[len(recs)-1].SourceOffset)
			if err := r.task.(connect.Committer).Commit(r.t.Context()); err != nil {
				r.t.Fatalf("commit: %v", err)
			}
		}
	}
	return retried
}

// TestWalsenderTerminated: the walsender of the task's slot is terminated
// (pg_terminate_backend) in the middle of the stream; Poll reports a
// retriable error, the task reconnects by itself, and every change arrives,
// a change twice only if it lies after the offset stored before the
// termination. One capture goroutine runs after the reconnection.
func TestWalsenderTerminated(t *testing.T) {
	p := startPG(t)
	p.exec(t, "CREATE TABLE a (id int PRIMARY KEY)", "INSERT INTO a SELECT generate_series(1, 20)")
	off := &memOffsets{}
	r := mustStartTask(t, p.config("srv", "s_term", "max.batch.size", "7"), off)
	ids := map[int64]int{}
	var order []int64
	if n := r.pollRetrying(ids, &order, 20); n != 0 {
		t.Fatalf("%d retried polls during the snapshot", n)
	}
	p.exec(t, "INSERT INTO a SELECT generate_series(21, 40)", "INSERT INTO a SELECT generate_series(41, 60)")
	r.pollRetrying(ids, &order, 27) // mid-transaction
	storedID := order[len(order)-1]
	pid := p.query(t, "SELECT active_pid::text FROM pg_replication_slots WHERE slot_name = 's_term'")
	if got := p.query(t, "SELECT pg_terminate_backend(active_pid)::text FROM pg_replication_slots WHERE slot_name = 's_term'"); got != "true" {
		t.Fatalf("pg_terminate_backend: %s", got)
	}
	for i := 61; i <= 100; i += 10 {
		p.exec(t, fmt.Sprintf("INSERT INTO a SELECT generate_series(%d, %d)", i, i+9))
	}
	retried := r.pollRetrying(ids, &order, 100)
	t.Logf("%d retried polls, %d records for 100 rows", retried, len(order))
	if retried == 0 {
		t.Fatal("no Poll reported the lost connection")
	}
	for id, n := range ids {
		if n > 1 && id <= storedID {
			t.Fatalf("id %d delivered %d times though the offset stored before the termination covers it (id %d)", id, n, storedID)
		}
	}
	if len(ids) != 100 {
		t.Fatalf("%d distinct ids, want 100", len(ids))
	}
	if newPid := p.query(t, "SELECT coalesce(active_pid::text, '') FROM pg_replication_slots WHERE slot_name = 's_term'"); newPid == "" || newPid == pid {
		t.Fatalf("slot active_pid %q after the reconnection (was %s)", newPid, pid)
	}
	if n := captureGoroutines(t, "s_term"); n != 1 {
		t.Fatalf("%d capture goroutines after the reconnection, want 1", n)
	}
	r.quiet()
	r.stop()
	if n := captureGoroutines(t, "s_term"); n != 0 {
		t.Fatalf("%d capture goroutines after Stop", n)
	}
}

// TestPostgresRestartMidStream: PostgreSQL is restarted twice (fast
// shutdown) while a writer commits transactions and the connector streams
// them through the worker. The task retries (it never is FAILED, and is
// RUNNING at the end), every change is in the topic, and a change appears
// twice only if it lies after the offset stored before the first restart.
func TestPostgresRestartMidStream(t *testing.T) {
	p := startPG(t)
	b := brokertest.Start(t)
	p.exec(t, "CREATE TABLE t (id int PRIMARY KEY, v int)")
	var logs syncBuffer
	w := startWorker(t, b.Addr(), connect.Logger(slog.New(slog.NewTextHandler(&logs, nil))))
	if _, err := w.Create(t.Context(), "pg", p.config("srv", "s_pgrestart", "max.batch.size", "50")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	for p.query(t, "SELECT count(*)::text FROM pg_replication_slots WHERE slot_name = 's_pgrestart'") != "1" {
		if time.Now().After(deadline) {
			t.Fatal("no replication slot")
		}
		time.Sleep(20 * time.Millisecond)
	}

	pid := p.query(t, "SELECT active_pid::text FROM pg_replication_slots WHERE slot_name = 's_pgrestart'")

	// The task's state, sampled until the end: FAILED must never show.
	monitorDone := make(chan struct{})
	var failed atomic.Value // string: the trace
	stopMonitor := make(chan struct{})
	go func() {
		defer close(monitorDone)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopMonitor:
				return
			case <-tick.C:
			}
			st, err := w.Status(context.Background(), "pg")
			if err != nil {
				continue
			}
			for _, ts := range st.Tasks {
				if ts.State == connect.StateFailed {
					failed.CompareAndSwap(nil, ts.Trace)
				}
			}
		}
	}()
	defer func() { close(stopMonitor); <-monitorDone }()

	const txns = 400 // of 10 inserts and one update each
	const want = txns * 11
	// reached[k] is closed once the consumer has seen thresholds[k] records.
	thresholds := []int{300, 1500}
	reached := []chan struct{}{make(chan struct{}), make(chan struct{})}
	var storedBefore atomic.Value // map[string]any: the offset stored before the first restart
	restarts := make(chan error, len(thresholds))
	writerDone := make(chan struct{})
	t.Cleanup(func() { <-writerDone })
	go func() {
		defer close(writerDone)
		restartAt := map[int]int{100: 0, 250: 1}
		var restarting chan struct{}
		for i := range txns {
			if k, ok := restartAt[i]; ok {
				if restarting != nil {
					<-restarting
				}
				select {
				case <-reached[k]:
				case <-time.After(waitTimeout):
					t.Errorf("the consumer did not reach %d records", thresholds[k])
					return
				}
				if k == 0 {
					if offs, err := w.Offsets(context.Background(), "pg"); err == nil && len(offs) == 1 {
						storedBefore.Store(offs[0].Offset)
					}
				}
				// Restart while writing: the writer's transactions fail and
				// are retried while the server is down.
				restarting = make(chan struct{})
				go func(done chan struct{}) {
					defer close(done)
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					restarts <- p.s.Restart(ctx)
				}(restarting)
			}
			if err := writeRetrying(p, i); err != nil {
				t.Error(err)
				return
			}
		}
		if restarting != nil {
			<-restarting
		}
	}()

	c := newConsumer(t, b.Addr(), "srv.public.t")
	seen := map[string]int{}
	var all []*kgo.Record
	next := 0
	for len(seen) < want {
		recs := c.next(1)
		all = append(all, recs...)
		for _, r := range recs {
			seen[eventID(t, r)]++
		}
		for next < len(thresholds) && len(all) >= thresholds[next] {
			close(reached[next])
			next++
		}
		if len(all) > 3*want {
			t.Fatalf("%d records but only %d distinct changes", len(all), len(seen))
		}
		if tr := failed.Load(); tr != nil {
			t.Fatalf("task FAILED: %s", tr)
		}
	}
	<-writerDone
	close(restarts)
	n := 0
	for err := range restarts {
		if err != nil {
			t.Fatalf("restart: %v", err)
		}
		n++
	}
	if n != len(thresholds) {
		t.Fatalf("%d restarts, want %d", n, len(thresholds))
	}
	if tr := failed.Load(); tr != nil {
		t.Fatalf("task FAILED: %s", tr)
	}
	st, err := w.Status(t.Context(), "pg")
	if err != nil || len(st.Tasks) != 1 || st.Tasks[0].State != connect.StateRunning {
		t.Fatalf("status after the restarts: %+v, %v", st, err)
	}
	if got := p.query(t, "SELECT coalesce(active_pid::text, '') FROM pg_replication_slots WHERE slot_name = 's_pgrestart'"); got == "" || got == pid {
		t.Fatalf("slot active_pid %q after the restarts (was %s): the task is not streaming from a new connection", got, pid)
	}
	if n := captureGoroutines(t, "s_pgrestart"); n != 1 {
		t.Fatalf("%d capture goroutines after the restarts, want 1", n)
	}

	var retried []string
	for l := range strings.Lines(logs.String()) {
		if strings.Contains(l, "poll failed; retrying") {
			retried = append(retried, strings.TrimSpace(l))
		}
	}
	t.Logf("retried polls:\n%s", strings.Join(retried, "\n"))
	if len(retried) < len(thresholds) {
		t.Fatalf("%d retried polls for %d restarts", len(retried), len(thresholds))
	}

	stored, _ := storedBefore.Load().(map[string]any)
	storedCommit := asInt64(stored["lsn_commit"])
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
			t.Fatalf("change %s duplicated though its transaction (commit LSN %d) precedes the offset %v stored before the restarts", id, commit, stored)
		}
	}
	t.Logf("%d records for %d changes (%d duplicated records); offset before the first restart %v", len(all), want, dups, stored)
	if len(seen) != want {
		t.Fatalf("%d distinct changes, want %d", len(seen), want)
	}
}

// writeRetrying commits transaction i of TestPostgresRestartMidStream,
// retrying while PostgreSQL restarts; a transaction whose commit went
// through before its connection was lost is not written again.
func writeRetrying(p pg, i int) error {
	q := fmt.Sprintf("BEGIN; INSERT INTO t SELECT g, 0 FROM generate_series(%d, %d) g; UPDATE t SET v = 1 WHERE id = %d; COMMIT",
		i*10+1, i*10+10, i*10+1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		err := p.s.Exec(ctx, p.db, q)
		if err == nil {
			return nil
		}
		var n int
		c, cerr := p.s.Connect(ctx, p.db)
		if cerr == nil {
			cerr = c.QueryRow(ctx, "SELECT count(*) FROM t WHERE id = $1", i*10+1).Scan(&n)
			c.Close(context.Background())
		}
		if cerr == nil && n == 1 {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("transaction %d: %w", i, err)
		}
		time.Sleep(20 * time.Millisecond) // backoff while the server restarts
	}
}

func asInt64(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	case json.Number:
		i, _ := n.Int64()
		return i
	}
	return 0
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestStartUnreachable: a task whose server cannot be reached starts, and
// its Polls return retriable errors until it can.
func TestStartUnreachable(t *testing.T) {
	cfg := pg{s: &pgserver.Server{Host: t.TempDir(), Port: 5432, User: "postgres"}, db: "nodb"}.config("srv", "s_unreach")
	r, err := startTask(t, cfg, nil)
	if err != nil {
		t.Fatalf("start: %v, want the connection retried by Poll", err)
	}
	for range 2 {
		_, err := r.task.Poll(t.Context())
		if !errors.Is(err, connect.ErrRetriable) || !strings.Contains(err.Error(), "reconnect") {
			t.Fatalf("poll: %v, want a retriable error", err)
		}
	}
}

// TestConnectionLostMidSnapshot: the snapshot connection is terminated
// while the snapshot is being read (the capture goroutine is blocked on a
// full queue); the task reconnects, redoes the snapshot from a new slot
// (rows already delivered come again as op r), and then streams.
func TestConnectionLostMidSnapshot(t *testing.T) {
	p := startPG(t)
	p.exec(t, "CREATE TABLE a (id int PRIMARY KEY, pad text)", "INSERT INTO a SELECT g, repeat('x', 500) FROM generate_series(1, 20000) g")
	off := &memOffsets{}
	r := mustStartTask(t, p.config("srv", "s_midsnaplost", "max.batch.size", "100", "max.queue.size", "256"), off)
	ids := map[int64]int{}
	var order []int64
	r.pollRetrying(ids, &order, 300)
	if off.off["snapshot"] != true || off.off["last_snapshot_record"] != false {
		t.Fatalf("offset %v: not in the middle of the snapshot", off.off)
	}
	q := "SELECT count(pg_terminate_backend(pid))::text FROM pg_stat_activity WHERE application_name = 'sluice-pgcdc' AND backend_type = 'client backend' AND datname = current_database()"
	if got := p.query(t, q); got != "1" {
		t.Fatalf("terminated %s snapshot connections, want 1", got)
	}
	retried := r.pollRetrying(ids, &order, 20000)
	if retried == 0 {
		t.Fatal("no Poll reported the lost connection")
	}
	redone := 0
	for _, n := range ids {
		if n > 1 {
			redone++
		}
	}
	t.Logf("%d retried polls, %d records for 20000 rows, %d rows delivered twice", retried, len(order), redone)
	if redone < 300 {
		t.Fatalf("%d rows delivered twice: the snapshot was not redone", redone)
	}
	// The redone snapshot reads the table in the same order: its last row
	// is the last record.
	if off.off["last_snapshot_record"] != true {
		t.Fatalf("offset %v after the redone snapshot", off.off)
	}
	p.exec(t, "INSERT INTO a VALUES (20001, 'y')")
	recs := r.next(1)
	if field(recs[0].Value, "op") != "c" || field(recs[0].Value, "after", "id") != int64(20001) {
		t.Fatalf("after the snapshot: %s", describe(recs))
	}
	if n := captureGoroutines(t, "s_midsnaplost"); n != 1 {
		t.Fatalf("%d capture goroutines, want 1", n)
	}
}
