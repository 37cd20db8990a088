package pgcdc_test

import (
	"bytes"
	"errors"
	"fmt"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/connect"
)

// captureGoroutines counts the capture goroutines of slot (they carry the
// pprof label slot=<slot>).
func captureGoroutines(t testing.TB, slot string) int {
	t.Helper()
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
