package stream

import (
	"encoding/json"
	"fmt"
	"iter"
	"math"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/table"
	"github.com/sluicehq/sluice/window"
)

// nopEmitter drops a task's output.
type nopEmitter struct{}

func (nopEmitter) send(outRecord)                       {}
func (nopEmitter) changelog(*taskStore, []byte, []byte) {}

func storeBases() []struct {
	name string
	open func(t *testing.T) table.Store
} {
	return []struct {
		name string
		open func(t *testing.T) table.Store
	}{
		{"memory", func(*testing.T) table.Store { return table.NewMemory() }},
		{"pebble", func(t *testing.T) table.Store {
			p, err := table.OpenPebble(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return p
		}},
	}
}

func winKey(k string, start int64) []byte { return table.WindowLayout.External(nil, []byte(k), start) }

func sessKey(k string, end, start int64) []byte {
	return table.SessionLayout.External(nil, []byte(k), end, start)
}

// TestFetchWindowsThroughCache checks that fetchWindows sees the dirty
// entries of the record cache over the segmented store: newer values,
// new windows and deletes, and no window of a key that has the fetched
// key as a prefix.
func TestFetchWindowsThroughCache(t *testing.T) {
	for _, b := range storeBases() {
		t.Run("store="+b.name, func(t *testing.T) {
			def := &storeDef{name: "w", windowed: true, cached: true, changelog: true, retentionMs: 1000, windowSizeMs: 100}
			st, err := newTaskStore(def, b.open(t), 0, nopEmitter{}, table.NewCache(1<<20))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.kv.Close() })
			put := func(k []byte, v string) {
				t.Helper()
				if err := st.put(k, []byte(v)); err != nil {
					t.Fatal(err)
				}
			}
			put(winKey("a", 0), "a0")
			put(winKey("a", 100), "a100")
			put(winKey("a", 400), "a400")
			if err := st.kv.Flush(); err != nil {
				t.Fatal(err)
			}
			put(winKey("a", 100), "a100'") // shadows the stored one
			put(winKey("a", 200), "a200")  // only in the cache
			put(winKey("ab", 100), "ab100")
			put(winKey("a\x00", 100), "a0-100") // "a" + 0x00: between "a"'s keys in byte order
			if err := st.delete(winKey("a", 0)); err != nil {
				t.Fatal(err)
			}
			fetch := func(from, to int64, limit int) []string {
				var out []string
				err := st.fetchWindows([]byte("a"), from, to, func(start int64, v []byte) bool {
					out = append(out, fmt.Sprintf("%d=%s", start, v))
					return len(out) < limit
				})
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
			for _, tc := range []struct {
				from, to int64
				limit    int
				want     []string
			}{
				{0, math.MaxInt64, 10, []string{"100=a100'", "200=a200", "400=a400"}},
				{150, 400, 10, []string{"200=a200", "400=a400"}},
				{100, 100, 10, []string{"100=a100'"}},
				{0, 99, 10, nil},
				{0, math.MaxInt64, 2, []string{"100=a100'", "200=a200"}},
			} {
				if got := fetch(tc.from, tc.to, tc.limit); !slices.Equal(got, tc.want) {
					t.Errorf("fetchWindows(a, %d, %d) = %q, want %q", tc.from, tc.to, got, tc.want)
				}
			}
			if err := st.fetchSessions([]byte("a"), 0, 0, nil); err == nil {
				t.Error("fetchSessions on a window store: no error")
			}
		})
	}
}

func TestFetchSessionsThroughCache(t *testing.T) {
	for _, b := range storeBases() {
		t.Run("store="+b.name, func(t *testing.T) {
			def := &storeDef{name: "s", session: true, cached: true, changelog: true, retentionMs: 1000}
			st, err := newTaskStore(def, b.open(t), 0, nopEmitter{}, table.NewCache(1<<20))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.kv.Close() })
			put := func(k []byte, v string) {
				t.Helper()
				if err := st.put(k, []byte(v)); err != nil {
					t.Fatal(err)
				}
			}
			put(sessKey("u", 50, 10), "s1")
			put(sessKey("u", 150, 100), "s2")
			put(sessKey("u", 300, 250), "s3")
			if err := st.kv.Flush(); err != nil {
				t.Fatal(err)
			}
			put(sessKey("u", 150, 120), "s4") // same end, later start
			put(sessKey("uu", 150, 100), "x")
			if err := st.delete(sessKey("u", 50, 10)); err != nil {
				t.Fatal(err)
			}
			var got []string
			err = st.fetchSessions([]byte("u"), 40, 200, func(w window.Window, v []byte) bool {
				got = append(got, fmt.Sprintf("[%d,%d]=%s", w.Start, w.End, v))
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"[100,150]=s2", "[120,150]=s4"}; !slices.Equal(got, want) {
				t.Errorf("fetchSessions(u, 40, 200) = %q, want %q", got, want)
			}
		})
	}
}

// queryApp runs a topology in a Harness and returns an App whose
// interactive queries read the harness's stores.
func queryApp(t *testing.T, topo *Topology) (*Harness, *App) {
	t.Helper()
	h, err := NewHarness(topo, HarnessConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	a := &App{topo: topo}
	for id, tk := range h.tasks {
		for name, st := range tk.stores {
			a.registerStore(name, id.partition, st)
		}
	}
	return h, a
}

func pipeAt(t *testing.T, h *Harness, topic, key string, at time.Duration) {
	t.Helper()
	if err := h.Pipe(topic, []byte(key), []byte("x"), time.UnixMilli(0).Add(at), nil); err != nil {
		t.Fatal(err)
	}
}

func seqStrings[K, V any](seq iter.Seq2[K, V], f func(K, V) string) []string {
	var out []string
	for k, v := range seq {
		out = append(out, f(k, v))
	}
	return out
}

func winStr(w window.Window, v int64) string {
	return fmt.Sprintf("[%d,%d)=%d", w.Start/1000, w.End/1000, v)
}

func windowedStr(w window.Windowed[string], v int64) string {
	return fmt.Sprintf("%s@%d=%d", w.Key, w.Window.Start/1000, v)
}

func wantSeq(t *testing.T, what string, got []string, err error, want ...string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func TestQueryWindows(t *testing.T) {
	str, i64 := serde.String(), serde.Int64()
	b := NewBuilder()
	s := Stream(b, []string{"clicks"}, str, str)
	WindowedCount(WindowedBy(GroupByKey(s), window.Tumbling(10*time.Second).Retention(time.Minute)), Materialized("counts"))
	SessionCount(SessionWindowedBy(GroupByKey(s), window.Session(10*time.Second).Grace(time.Minute)), Materialized("sessions"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	h, a := queryApp(t, topo)
	for _, r := range []struct {
		key string
		at  time.Duration
	}{{"a", 0}, {"a", time.Second}, {"ab", 5 * time.Second}, {"b", 12 * time.Second}, {"a", 15 * time.Second}, {"a", 25 * time.Second}} {
		pipeAt(t, h, "clicks", r.key, r.at)
	}
	q := QueryWindows(a, "counts", str, i64)
	sec := func(n int64) time.Time { return time.UnixMilli(n * 1000) }
	wantSeq(t, "Fetch(a, 0, 10s)", seqStrings(q.Fetch("a", sec(0), sec(10)), winStr), q.Err(), "[0,10)=2", "[10,20)=1")
	wantSeq(t, "Fetch(a, 1ms, 20s)", seqStrings(q.Fetch("a", time.UnixMilli(1), sec(20)), winStr), q.Err(), "[10,20)=1", "[20,30)=1")
	wantSeq(t, "Fetch(ab)", seqStrings(q.Fetch("ab", sec(0), sec(100)), winStr), q.Err(), "[0,10)=1")
	wantSeq(t, "Fetch(c)", seqStrings(q.Fetch("c", sec(0), sec(100)), winStr), q.Err())
	wantSeq(t, "FetchAll(10s, 20s)", seqStrings(q.FetchAll(sec(10), sec(20)), windowedStr), q.Err(), "a@10=1", "a@20=1", "b@10=1")
	wantSeq(t, "All", seqStrings(q.All(), windowedStr), q.Err(), "a@0=2", "a@10=1", "a@20=1", "b@10=1", "ab@0=1")

	qs := QuerySessions(a, "sessions", str, i64)
	sessStr := func(w window.Window, v int64) string { return fmt.Sprintf("[%d,%d]=%d", w.Start/1000, w.End/1000, v) }
	// Sessions (gap 10 s, kept 70 s): a [0,1] and [15,25], ab [5,5], b [12,12].
	wantSeq(t, "sessions Fetch(a)", seqStrings(qs.Fetch("a"), sessStr), qs.Err(), "[0,1]=2", "[15,25]=2")
	wantSeq(t, "FindSessions(a, 26s, 30s)", seqStrings(qs.FindSessions("a", sec(26), sec(30)), sessStr), qs.Err())
	wantSeq(t, "FindSessions(a, 1s, 15s)", seqStrings(qs.FindSessions("a", sec(1), sec(15)), sessStr), qs.Err(), "[0,1]=2", "[15,25]=2")
	wantSeq(t, "FindSessions(a, 2s, 15s)", seqStrings(qs.FindSessions("a", sec(2), sec(15)), sessStr), qs.Err(), "[15,25]=2")
	wantSeq(t, "FindSessions(a, 1s, 14s)", seqStrings(qs.FindSessions("a", sec(1), sec(14)), sessStr), qs.Err(), "[0,1]=2")
	wantSeq(t, "FindSessions(b, 0, 12s)", seqStrings(qs.FindSessions("b", sec(0), sec(12)), sessStr), qs.Err(), "[12,12]=1")
	wantSeq(t, "FindSessions(b, 0, 11s)", seqStrings(qs.FindSessions("b", sec(0), sec(11)), sessStr), qs.Err())
	wantSeq(t, "sessions All", seqStrings(qs.All(), func(w window.Windowed[string], v int64) string {
		return fmt.Sprintf("%s[%d,%d]=%d", w.Key, w.Window.Start/1000, w.Window.End/1000, v)
	}), qs.Err(), "a[0,1]=2", "a[15,25]=2", "b[12,12]=1", "ab[5,5]=1")

	// Stream time 75 s: windows starting before 15 s have expired (though
	// their segment, 0-60 s, is still on disk); sessions ending before
	// 5 s too.
	pipeAt(t, h, "clicks", "c", 75*time.Second)
	wantSeq(t, "All at 75s", seqStrings(q.All(), windowedStr), q.Err(), "a@20=1", "c@70=1")
	wantSeq(t, "Fetch(a) at 75s", seqStrings(q.Fetch("a", sec(0), sec(100)), winStr), q.Err(), "[20,30)=1")
	wantSeq(t, "sessions Fetch(a) at 75s", seqStrings(qs.Fetch("a"), sessStr), qs.Err(), "[15,25]=2")
	// Stream time 125 s: segment 0 is dropped.
	pipeAt(t, h, "clicks", "c", 125*time.Second)
	wantSeq(t, "All at 125s", seqStrings(q.All(), windowedStr), q.Err(), "c@70=1", "c@120=1")
	for _, tk := range h.tasks {
		if got := tk.stores["counts"].seg.Segments(); !slices.Equal(got, []int64{1, 2}) {
			t.Errorf("segments at 125s %v, want [1 2]", got)
		}
	}

	// Errors.
	if q := QueryWindows(a, "sessions", str, i64); seqStrings(q.Fetch("a", sec(0), sec(1)), winStr) != nil || q.Err() == nil {
		t.Error("QueryWindows of a session store: no error")
	}
	if q := QuerySessions(a, "counts", str, i64); seqStrings(q.Fetch("a"), sessStr) != nil || q.Err() == nil {
		t.Error("QuerySessions of a window store: no error")
	}
	if q := QueryWindows(a, "nope", str, i64); seqStrings(q.All(), windowedStr) != nil || q.Err() == nil {
		t.Error("QueryWindows of a missing store: no error")
	}
}

func TestWindowStoreHandler(t *testing.T) {
	str, i64 := serde.String(), serde.Int64()
	b := NewBuilder()
	s := Stream(b, []string{"clicks"}, str, str)
	WindowedCount(WindowedBy(GroupByKey(s), window.Tumbling(10*time.Second).Retention(time.Minute)), Materialized("counts"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	h, a := queryApp(t, topo)
	pipeAt(t, h, "clicks", "a", 0)
	pipeAt(t, h, "clicks", "a", 12*time.Second)
	pipeAt(t, h, "clicks", "b", 13*time.Second)
	srv := httptest.NewServer(WindowStoreHandler(a, "counts", str, i64, StringKey))
	t.Cleanup(srv.Close)
	get := func(query string) (int, string) {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL + "?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v any
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatal(err)
		}
		out, _ := json.Marshal(v)
		return resp.StatusCode, string(out)
	}
	for _, tc := range []struct {
		query string
		code  int
		body  string
	}{
		{"key=a", 200, `[{"end":10000,"start":0,"value":1},{"end":20000,"start":10000,"value":1}]`},
		{"key=a&from=1970-01-01T00:00:05Z&to=20000", 200, `[{"end":20000,"start":10000,"value":1}]`},
		{"from=10000", 200, `[{"end":20000,"key":"a","start":10000,"value":1},{"end":20000,"key":"b","start":10000,"value":1}]`},
		{"key=zz", 200, `[]`},
		{"key=a&from=yesterday", 400, `{"error":"stream: time \"yesterday\" is neither RFC 3339 nor milliseconds"}`},
	} {
		if code, body := get(tc.query); code != tc.code || body != tc.body {
			t.Errorf("GET ?%s = %d %s, want %d %s", tc.query, code, body, tc.code, tc.body)
		}
	}
}
