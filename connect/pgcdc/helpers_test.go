package pgcdc_test

import (
	"context"
	"encoding/json"
	"maps"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/connect"
	"github.com/sluicehq/sluice/connect/pgcdc"
	"github.com/sluicehq/sluice/internal/pgserver"
	"github.com/sluicehq/sluice/internal/pgserver/pgtest"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = 30 * time.Second

// pg is a PostgreSQL server with one database for a test.
type pg struct {
	s  *pgserver.Server
	db string
}

func startPG(t testing.TB, o ...pgserver.Options) pg {
	t.Helper()
	s := pgtest.Start(t, o...)
	return pg{s, pgtest.Database(t, s)}
}

func (p pg) exec(t testing.TB, sql ...string) {
	t.Helper()
	pgtest.Exec(t, p.s, p.db, sql...)
}

// query returns the first column of the first row of q as text.
func (p pg) query(t testing.TB, q string) string {
	t.Helper()
	c, err := p.s.Connect(t.Context(), p.db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var s *string
	if err := c.QueryRow(t.Context(), q).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if s == nil {
		return ""
	}
	return *s
}

// config is a connector configuration for p; extra pairs override.
func (p pg) config(prefix, slot string, extra ...string) map[string]string {
	cfg := map[string]string{
		"connector.class":   "postgres-cdc",
		"database.hostname": p.s.Host, "database.port": strconv.Itoa(p.s.Port),
		"database.user": p.s.User, "database.dbname": p.db,
		"topic.prefix": prefix, "slot.name": slot, "publication.name": slot + "_pub",
		"poll.interval.ms": "200",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		cfg[extra[i]] = extra[i+1]
	}
	return cfg
}

// memOffsets is an OffsetReader over the offsets a test stored, JSON
// round-tripped like the worker's (numbers as int64).
type memOffsets struct {
	mu  sync.Mutex
	off map[string]any
}

func (m *memOffsets) Offset(map[string]any) (map[string]any, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.off), nil
}

func (m *memOffsets) store(t testing.TB, off map[string]any) {
	b, err := json.Marshal(off)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for k, v := range back {
		if f, ok := v.(float64); ok {
			back[k] = int64(f)
		}
	}
	m.mu.Lock()
	m.off = back
	m.mu.Unlock()
}

// runner drives a task as the worker does: Poll, store the last offset,
// Commit.
type runner struct {
	t    testing.TB
	task connect.SourceTask
	off  *memOffsets
	stop func()
}

func startTask(t testing.TB, cfg map[string]string, off *memOffsets) (*runner, error) {
	t.Helper()
	if off == nil {
		off = &memOffsets{}
	}
	src := pgcdc.Plugin().Source()
	if errs := src.Validate(cfg); len(errs) > 0 {
		t.Fatalf("validate: %v", errs)
	}
	tcs, err := src.TaskConfigs(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	task := src.NewTask()
	r := &runner{t: t, task: task, off: off}
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			if err := task.Stop(); err != nil {
				t.Errorf("stop: %v", err)
			}
		})
	}
	t.Cleanup(r.stop)
	if err := task.Start(t.Context(), tcs[0], off); err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}

func mustStartTask(t testing.TB, cfg map[string]string, off *memOffsets) *runner {
	t.Helper()
	r, err := startTask(t, cfg, off)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return r
}

// poll runs one Poll and commits what it returned.
func (r *runner) poll() []connect.SourceRecord {
	r.t.Helper()
	recs, err := r.task.Poll(r.t.Context())
	if err != nil {
		r.t.Fatalf("poll: %v", err)
	}
	if len(recs) > 0 {
		r.off.store(r.t, recs[len(recs)-1].SourceOffset)
		if err := r.task.(connect.Committer).Commit(r.t.Context()); err != nil {
			r.t.Fatalf("commit: %v", err)
		}
	}
	return recs
}

// next returns the next n records.
func (r *runner) next(n int) []connect.SourceRecord {
	r.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	var out []connect.SourceRecord
	for len(out) < n {
		if time.Now().After(deadline) {
			r.t.Fatalf("got %d of %d records: %s", len(out), n, describe(out))
		}
		out = append(out, r.poll()...)
	}
	if len(out) > n {
		r.t.Fatalf("got %d records, want %d: %s", len(out), n, describe(out))
	}
	return out
}

// quiet checks that no record arrives for a while.
func (r *runner) quiet() {
	r.t.Helper()
	for range 2 {
		if recs := r.poll(); len(recs) > 0 {
			r.t.Fatalf("unexpected records: %s", describe(recs))
		}
	}
}

func describe(recs []connect.SourceRecord) string {
	var out []any
	for _, r := range recs {
		out = append(out, map[string]any{"topic": r.Topic, "key": r.Key, "value": r.Value})
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	return string(b)
}

func env(t testing.TB, r connect.SourceRecord) map[string]any {
	t.Helper()
	v, ok := r.Value.(map[string]any)
	if !ok {
		t.Fatalf("value %#v is not an envelope", r.Value)
	}
	return v
}

func field(m any, path ...string) any {
	for _, p := range path {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[p]
	}
	return m
}

// jsonEq compares after a JSON round trip (so int64(1) equals 1).
func jsonEq(t testing.TB, what string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	var gv, wv any
	json.Unmarshal(g, &gv)
	json.Unmarshal(w, &wv)
	gb, _ := json.Marshal(gv)
	wb, _ := json.Marshal(wv)
	if string(gb) != string(wb) {
		t.Fatalf("%s:\n got %s\nwant %s", what, gb, wb)
	}
}
