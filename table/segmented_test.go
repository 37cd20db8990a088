package table

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// wk is the external key of key's window starting at start.
func wk(key string, start int64) []byte { return WindowLayout.External(nil, []byte(key), start) }

// sk is the external key of key's session [start, end].
func sk(key string, end, start int64) []byte {
	return SessionLayout.External(nil, []byte(key), end, start)
}

// extString renders an external key as key@t (windows) or key@end/start.
func extString(l Layout, ext []byte) string {
	key, times, ok := l.split(ext)
	if !ok {
		return fmt.Sprintf("bad(%x)", ext)
	}
	if l == SessionLayout {
		return fmt.Sprintf("%s@%d/%d", key, int64(binary.BigEndian.Uint64(times)), int64(binary.BigEndian.Uint64(times[8:])))
	}
	return fmt.Sprintf("%s@%d", key, int64(binary.BigEndian.Uint64(times)))
}

func fetched(t testing.TB, l Layout, it *Iter[[]byte, []byte]) []string {
	t.Helper()
	var out []string
	for k, v := range it.All() {
		out = append(out, extString(l, k)+"="+string(v))
	}
	if err := it.Err(); err != nil {
		t.Fatalf("scan: %v", err)
	}
	return out
}

func wantList(t testing.TB, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func newSegmented(t testing.TB, base Store, l Layout, retention, interval int64) *Segmented {
	t.Helper()
	s, err := NewSegmented(base, l, retention, SegmentInterval(interval))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// segmentedKinds puts a Segmented store (segments of 100 ms, retention 250
// ms) over each base store kind.
func forEachSegmented(t *testing.T, l Layout, fn func(t *testing.T, s *Segmented)) {
	for _, k := range storeKinds() {
		t.Run("store="+k.name, func(t *testing.T) {
			s := newSegmented(t, k.open(t), l, 250, 100)
			t.Cleanup(func() { _ = s.Close() })
			fn(t, s)
		})
	}
}

func TestSegmentedWindowFetch(t *testing.T) {
	forEachSegmented(t, WindowLayout, func(t *testing.T, s *Segmented) {
		put := func(k string, ts int64) {
			t.Helper()
			if err := s.Put(wk(k, ts), fmt.Appendf(nil, "%s%d", k, ts)); err != nil {
				t.Fatal(err)
			}
		}
		// Segment boundaries at 100 and 200; "a" is a prefix of "ab" and
		// "" of everything.
		put("a", 0)
		put("a", 99)
		put("a", 100)
		put("a", 199)
		put("a", 200)
		put("ab", 100)
		put("", 150)
		put("b", 150)
		for _, r := range []ReadOnly{s, s.Query()} {
			f := func(k string, from, to int64) []string {
				if sv, ok := r.(*SegmentedView); ok {
					return fetched(t, WindowLayout, sv.Fetch([]byte(k), from, to))
				}
				return fetched(t, WindowLayout, s.Fetch([]byte(k), from, to))
			}
			wantList(t, "fetch a [0,99]", f("a", 0, 99), "a@0=a0", "a@99=a99")
			wantList(t, "fetch a [99,100]", f("a", 99, 100), "a@99=a99", "a@100=a100")
			wantList(t, "fetch a [100,200]", f("a", 100, 200), "a@100=a100", "a@199=a199", "a@200=a200")
			wantList(t, "fetch a [101,198]", f("a", 101, 198))
			wantList(t, "fetch a all", f("a", math.MinInt64, math.MaxInt64), "a@0=a0", "a@99=a99", "a@100=a100", "a@199=a199", "a@200=a200")
			wantList(t, "fetch ab", f("ab", 0, math.MaxInt64), "ab@100=ab100")
			wantList(t, "fetch empty key", f("", 0, math.MaxInt64), "@150=150")
			wantList(t, "fetch c", f("c", 0, math.MaxInt64))
			wantList(t, "fetch a [200,100]", f("a", 200, 100))
			wantGet(t, r, string(wk("a", 100)), "a100")
			wantMissing(t, r, string(wk("a", 101)))
			wantMissing(t, r, string(wk("ab", 0)))
			// Sorted by external key, as ReadOnly promises.
			wantList(t, "all", fetched(t, WindowLayout, r.All()),
				"@150=150", "a@0=a0", "a@99=a99", "a@100=a100", "a@199=a199", "a@200=a200", "ab@100=ab100", "b@150=b150")
			wantList(t, "prefix a", fetched(t, WindowLayout, r.Prefix([]byte("a"))),
				"a@0=a0", "a@99=a99", "a@100=a100", "a@199=a199", "a@200=a200", "ab@100=ab100")
		}
		// FetchAll: by segment, then key length, key, time.
		wantList(t, "fetch all [100,199]", fetched(t, WindowLayout, s.FetchAll(100, 199)),
			"@150=150", "a@100=a100", "a@199=a199", "b@150=b150", "ab@100=ab100")
		wantList(t, "fetch all [0,100]", fetched(t, WindowLayout, s.View().FetchAll(0, 100)),
			"a@0=a0", "a@99=a99", "a@100=a100", "ab@100=ab100")

		if err := s.Delete(wk("a", 100)); err != nil {
			t.Fatal(err)
		}
		wantMissing(t, s, string(wk("a", 100)))
		wantList(t, "fetch a after delete", fetched(t, WindowLayout, s.Fetch([]byte("a"), 99, 199)), "a@99=a99", "a@199=a199")
		if err := s.Put([]byte("short"), nil); !errors.Is(err, ErrBadKey) {
			t.Errorf("Put(short key) = %v, want ErrBadKey", err)
		}
		if got := fmt.Sprint(s.Segments()); got != "[0 1 2]" {
			t.Errorf("segments %s, want [0 1 2]", got)
		}
	})
}

func TestSegmentedSessionFetch(t *testing.T) {
	forEachSegmented(t, SessionLayout, func(t *testing.T, s *Segmented) {
		put := func(k string, end, start int64) {
			t.Helper()
			if err := s.Put(sk(k, end, start), []byte(k)); err != nil {
				t.Fatal(err)
			}
		}
		put("a", 50, 10)
		put("a", 150, 120)
		put("a", 150, 100) // same end, earlier start
		put("a", 230, 160)
		put("ab", 150, 150)
		put("", 99, 0)
		wantList(t, "a from end 50", fetched(t, SessionLayout, s.Fetch([]byte("a"), 50, math.MaxInt64)),
			"a@50/10=a", "a@150/100=a", "a@150/120=a", "a@230/160=a")
		wantList(t, "a from end 51", fetched(t, SessionLayout, s.Fetch([]byte("a"), 51, 150)),
			"a@150/100=a", "a@150/120=a")
		wantList(t, "ab", fetched(t, SessionLayout, s.View().Fetch([]byte("ab"), 0, math.MaxInt64)), "ab@150/150=ab")
		wantList(t, "all", fetched(t, SessionLayout, s.All()),
			"@99/0=", "a@50/10=a", "a@150/100=a", "a@150/120=a", "a@230/160=a", "ab@150/150=ab")
		wantGet(t, s, string(sk("a", 150, 100)), "a")
		if err := s.Put(append(binary.BigEndian.AppendUint32(nil, 9), "a0123456789abcdef"...), nil); !errors.Is(err, ErrBadKey) {
			t.Errorf("Put(wrong length prefix) = %v, want ErrBadKey", err)
		}
	})
}

// baseKeys returns the internal keys of the store below s, rendered as
// seg:key@t (the meta key as "meta").
func baseKeys(t testing.TB, s *Segmented) []string {
	t.Helper()
	var out []string
	it := s.Base().All()
	for k := range it.All() {
		if bytes.Equal(k, segMetaKey) {
			out = append(out, "meta")
			continue
		}
		ext, _, ok := s.layout.parseInternal(nil, k)
		if !ok {
			t.Fatalf("bad internal key %x", k)
		}
		out = append(out, fmt.Sprintf("%d:%s", decodeSeg(k), extString(s.layout, ext)))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSegmentedExpiry(t *testing.T) {
	forEachSegmented(t, WindowLayout, func(t *testing.T, s *Segmented) {
		for ts := int64(0); ts < 1000; ts += 10 {
			if err := s.Put(wk("k", ts), []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		// Observed 990, low water 740: segments 0-6 are gone, 7 stays
		// (it holds 740-790, live) with its expired 700-730.
		if got := fmt.Sprint(s.Segments()); got != "[7 8 9]" {
			t.Fatalf("segments %s, want [7 8 9]", got)
		}
		if n := len(baseKeys(t, s)); n != 30 {
			t.Fatalf("base holds %d records, want 30", n)
		}
		wantMissing(t, s, string(wk("k", 730)))
		wantGet(t, s, string(wk("k", 740)), "v")
		got := fetched(t, WindowLayout, s.Fetch([]byte("k"), 0, 760))
		wantList(t, "fetch after expiry", got, "k@740=v", "k@750=v", "k@760=v")
		if n := len(fetched(t, WindowLayout, s.All())); n != 26 {
			t.Errorf("All yields %d records, want 26 (740-990)", n)
		}
		// Stream time moves on without puts: segment 7 goes once all of
		// it is older than now - retention.
		if err := s.Expire(1049); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(s.Segments()); got != "[7 8 9]" {
			t.Fatalf("segments after Expire(1049) %s, want [7 8 9]", got)
		}
		if err := s.Expire(1050); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(s.Segments()); got != "[8 9]" {
			t.Fatalf("segments after Expire(1050) %s, want [8 9]", got)
		}
		if n := len(baseKeys(t, s)); n != 20 {
			t.Fatalf("base holds %d records, want 20", n)
		}
		// A put of an expired record is dropped.
		if err := s.Put(wk("k", 700), []byte("late")); err != nil {
			t.Fatal(err)
		}
		wantMissing(t, s, string(wk("k", 700)))
		if n := len(baseKeys(t, s)); n != 20 {
			t.Fatalf("base holds %d records after an expired put, want 20", n)
		}
	})
}

// TestSegmentedExpiryNeverDropsLive checks the expiry invariants against a
// model under random puts, deletes and expiry: every live record (time >=
// low water) stays readable, nothing below the low water mark's segment
// stays on disk, and at most retention/interval + 2 segments are live.
func TestSegmentedExpiryNeverDropsLive(t *testing.T) {
	for _, l := range []Layout{WindowLayout, SessionLayout} {
		t.Run("layout="+l.String(), func(t *testing.T) {
			forEachSegmented(t, l, func(t *testing.T, s *Segmented) {
				rng := rand.New(rand.NewPCG(1, 2))
				model := map[string]string{} // external key -> value
				times := map[string]int64{}
				now := int64(0)
				keys := []string{"", "a", "ab", "b", "abc"}
				for i := range 3000 {
					now += int64(rng.IntN(7))
					ts := now - int64(rng.IntN(300))
					k := keys[rng.IntN(len(keys))]
					var ext []byte
					if l == SessionLayout {
						ext = sk(k, ts, ts-int64(rng.IntN(50)))
					} else {
						ext = wk(k, ts)
					}
					switch r := rng.IntN(20); {
					case r == 0:
						if err := s.Expire(now); err != nil {
							t.Fatal(err)
						}
					case r < 4:
						if err := s.Delete(ext); err != nil {
							t.Fatal(err)
						}
						delete(model, string(ext))
					default:
						v := fmt.Sprint(i)
						if err := s.Put(ext, []byte(v)); err != nil {
							t.Fatal(err)
						}
						if ts >= s.LowWater() {
							model[string(ext)] = v
							times[string(ext)] = ts
						}
					}
					lw := s.LowWater()
					for k, ts := range times {
						if ts < lw {
							delete(model, k)
							delete(times, k)
						}
					}
					if i%100 != 99 {
						continue
					}
					got := contents(t, s)
					if !maps.Equal(got, model) {
						t.Fatalf("step %d: store has %d records, model %d", i, len(got), len(model))
					}
					for _, k := range keys {
						var want []string
						for ext, v := range model {
							if key, _, _ := l.split([]byte(ext)); string(key) == k {
								want = append(want, ext+"="+v)
							}
						}
						var gotK []string
						it := s.Fetch([]byte(k), math.MinInt64, math.MaxInt64)
						for ext, v := range it.All() {
							gotK = append(gotK, string(ext)+"="+string(v))
						}
						slices.Sort(want)
						slices.Sort(gotK)
						if !slices.Equal(gotK, want) {
							t.Fatalf("step %d: fetch %q = %d records, want %d", i, k, len(gotK), len(want))
						}
					}
					minLive := s.segOf(lw)
					for _, bk := range baseKeys(t, s) {
						var seg int64
						if _, err := fmt.Sscanf(bk, "%d:", &seg); err == nil && seg < minLive {
							t.Fatalf("step %d: segment %d below the live segment %d is on disk (%s)", i, seg, minLive, bk)
						}
					}
					if n := len(s.Segments()); n > int(s.Retention()/s.Interval())+2 {
						t.Fatalf("step %d: %d live segments", i, n)
					}
				}
			})
		})
	}
}

// TestSegmentedRestoreSameLayout writes through a changelog, restores the
// changelog into new stores (memory and pebble) and checks that they hold
// exactly the same records, laid out the same way.
func TestSegmentedRestoreSameLayout(t *testing.T) {
	for _, l := range []Layout{WindowLayout, SessionLayout} {
		t.Run("layout="+l.String(), func(t *testing.T) {
			log := &memLog{}
			src := newSegmented(t, NewMemory(), l, 250, 100)
			w := NewLogged(src, log)
			rng := rand.New(rand.NewPCG(3, 4))
			now := int64(1_000)
			for range 2000 {
				now += int64(rng.IntN(5))
				ts := now - int64(rng.IntN(200))
				k := []string{"a", "ab", "b"}[rng.IntN(3)]
				ext := wk(k, ts)
				if l == SessionLayout {
					ext = sk(k, ts, ts-int64(rng.IntN(20)))
				}
				var err error
				if rng.IntN(5) == 0 {
					err = w.Delete(ext)
				} else {
					err = w.Put(ext, fmt.Append(nil, rng.Int()))
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := src.Flush(); err != nil {
				t.Fatal(err)
			}
			want := baseKeys(t, src)
			if len(want) < 50 || len(src.Segments()) < 2 {
				t.Fatalf("workload left %d records in %d segments: too few to compare", len(want), len(src.Segments()))
			}
			wantVals := contents(t, src.Base())
			for _, k := range storeKinds() {
				t.Run("store="+k.name, func(t *testing.T) {
					dst := newSegmented(t, k.open(t), l, 250, 100)
					if _, err := Restore(dst, log.from(0)); err != nil {
						t.Fatal(err)
					}
					if err := dst.Flush(); err != nil {
						t.Fatal(err)
					}
					wantList(t, "restored layout", baseKeys(t, dst), want...)
					if got := contents(t, dst.Base()); !maps.Equal(got, wantVals) {
						t.Errorf("restored values differ")
					}
					if dst.Observed() != src.Observed() || !slices.Equal(dst.Segments(), src.Segments()) {
						t.Errorf("restored observed %d segments %v, want %d %v", dst.Observed(), dst.Segments(), src.Observed(), src.Segments())
					}
				})
			}
		})
	}
}

// TestSegmentedReopen reopens a checkpointed pebble store: the live
// segments and the observed time come back.
func TestSegmentedReopen(t *testing.T) {
	dir := t.TempDir()
	p, err := OpenPebble(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := newSegmented(t, p, WindowLayout, 250, 100)
	for ts := int64(0); ts < 500; ts += 50 {
		if err := s.Put(wk("k", ts), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Expire(520); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := p.Checkpoint(1); err != nil {
		t.Fatal(err)
	}
	segs := s.Segments()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := newSegmented(t, openPebble(t, dir), WindowLayout, 250, 100)
	if s2.Observed() != 520 || !slices.Equal(s2.Segments(), segs) {
		t.Fatalf("reopened: observed %d segments %v, want 520 %v", s2.Observed(), s2.Segments(), segs)
	}
	wantList(t, "fetch after reopen", fetched(t, WindowLayout, s2.Fetch([]byte("k"), 0, 1000)),
		"k@300=v", "k@350=v", "k@400=v", "k@450=v")
}

func TestNewSegmentedValidates(t *testing.T) {
	for _, tc := range []struct {
		name      string
		layout    Layout
		retention int64
		opts      []SegmentedOpt
	}{
		{"no layout", 0, 100, nil},
		{"no retention", WindowLayout, 0, nil},
		{"negative interval", WindowLayout, 100, []SegmentedOpt{SegmentInterval(-1)}},
		{"too many segments", WindowLayout, 1 << 40, []SegmentedOpt{SegmentInterval(1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewSegmented(NewMemory(), tc.layout, tc.retention, tc.opts...); err == nil {
				t.Error("no error")
			}
		})
	}
	s, err := NewSegmented(NewMemory(), WindowLayout, 3_600_000)
	if err != nil || s.Interval() != 1_800_000 {
		t.Errorf("default interval %d (%v), want 1800000", s.Interval(), err)
	}
	if DefaultSegmentInterval(10_000) != 60_000 {
		t.Errorf("DefaultSegmentInterval(10s) = %d, want 60000", DefaultSegmentInterval(10_000))
	}
}

func TestDeleteRange(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		rng := rand.New(rand.NewPCG(5, 6))
		model := map[string]string{}
		for i := range 2000 {
			k := fmt.Sprintf("k%03d", rng.IntN(500))
			if rng.IntN(10) == 0 {
				a, b := fmt.Sprintf("k%03d", rng.IntN(500)), fmt.Sprintf("k%03d", rng.IntN(500))
				if err := s.(RangeDeleter).DeleteRange([]byte(a), []byte(b)); err != nil {
					t.Fatal(err)
				}
				for mk := range model {
					if mk >= a && mk < b {
						delete(model, mk)
					}
				}
				continue
			}
			v := fmt.Sprint(i)
			mustPut(t, s, k, v)
			model[k] = v
		}
		if got := contents(t, s); !maps.Equal(got, model) {
			t.Fatalf("after range deletes: %d keys, model %d", len(got), len(model))
		}
		if m, ok := s.(*Memory); ok && m.Len() != len(model) {
			t.Fatalf("Len() = %d, want %d", m.Len(), len(model))
		}
	})
}

func TestCachedDirtyRange(t *testing.T) {
	c := NewCached(NewMemory(), NewCache(1<<20), nil)
	mustPut(t, c, "b", "1")
	mustPut(t, c, "a", "2")
	mustDelete(t, c, "c")
	mustPut(t, c, "d", "")
	var got []string
	c.DirtyRange([]byte("a"), []byte("d"), func(k, v []byte, deleted bool) bool {
		got = append(got, fmt.Sprintf("%s=%s/%v", k, v, deleted))
		return true
	})
	wantList(t, "dirty [a,d)", got, "a=2/false", "b=1/false", "c=/true")
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	got = nil
	c.DirtyRange(nil, nil, func(k, v []byte, deleted bool) bool { got = append(got, string(k)); return true })
	wantList(t, "dirty after flush", got)
}

// TestSegmentedViewConcurrentWithWrites reads the query view while the
// owner writes and segments expire (run it with -race): fetches stay in
// time order and see only records of the fetched key.
func TestSegmentedViewConcurrentWithWrites(t *testing.T) {
	forEachSegmented(t, WindowLayout, func(t *testing.T, s *Segmented) {
		v := s.View()
		done := make(chan struct{})
		errc := make(chan error, 1)
		go func() {
			defer close(errc)
			for {
				select {
				case <-done:
					return
				default:
				}
				last := int64(math.MinInt64)
				it := v.Fetch([]byte("a"), 0, math.MaxInt64)
				for k := range it.All() {
					key, times, _ := WindowLayout.split(k)
					ts := int64(binary.BigEndian.Uint64(times))
					if string(key) != "a" || ts < last {
						errc <- fmt.Errorf("fetch yielded %s after time %d", extString(WindowLayout, k), last)
						return
					}
					last = ts
				}
				if err := it.Err(); err != nil {
					errc <- err
					return
				}
				for range v.FetchAll(0, math.MaxInt64).All() {
				}
			}
		}()
		for ts := int64(0); ts < 5000; ts += 3 {
			for _, k := range []string{"a", "ab", "b"} {
				if err := s.Put(wk(k, ts), []byte("v")); err != nil {
					t.Fatal(err)
				}
			}
			if ts%90 == 0 {
				if err := s.Expire(ts); err != nil {
					t.Fatal(err)
				}
			}
		}
		close(done)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	})
}

// TestSegmentedWithoutRangeDeleter drops segments by scanning and deleting
// when the store below cannot delete ranges, and restores without
// BatchWriter.
func TestSegmentedWithoutRangeDeleter(t *testing.T) {
	s := newSegmented(t, plainStore{NewMemory()}, WindowLayout, 250, 100)
	if _, err := Restore(s, func(yield func(k, v []byte) bool) {
		for ts := int64(0); ts < 1000; ts += 10 {
			if !yield(wk("k", ts), []byte("v")) {
				return
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(s.Segments()); got != "[7 8 9]" {
		t.Fatalf("segments %s, want [7 8 9]", got)
	}
	if n := len(baseKeys(t, s)); n != 30 {
		t.Fatalf("base holds %d records, want 30", n)
	}
	if err := s.Expire(1050); err != nil {
		t.Fatal(err)
	}
	if n := len(baseKeys(t, s)); n != 20 {
		t.Fatalf("base holds %d records after Expire(1050), want 20", n)
	}
}
