package table

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
)

// storeKind builds one implementation for the conformance suite (T7).
type storeKind struct {
	name string
	open func(t testing.TB) Store
}

func storeKinds() []storeKind {
	return []storeKind{
		{"memory", func(t testing.TB) Store { return NewMemory() }},
		{"pebble", func(t testing.TB) Store { return openPebble(t, t.TempDir()) }},
	}
}

// cachedKinds are the stores under a small record cache (2 KiB, so that
// entries are evicted all the time): the cache must keep the Store contract.
func cachedKinds() []storeKind {
	var out []storeKind
	for _, k := range storeKinds() {
		out = append(out, storeKind{"cached-" + k.name, func(t testing.TB) Store {
			return NewCached(k.open(t), NewCache(2<<10), nil)
		}})
	}
	return out
}

func openPebble(t testing.TB, dir string, opts ...PebbleOpt) *Pebble {
	t.Helper()
	p, err := OpenPebble(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// forEachStore runs fn once per store implementation.
func forEachStore(t *testing.T, fn func(t *testing.T, s Store)) {
	forEachKind(t, storeKinds(), fn)
}

func forEachKind(t *testing.T, kinds []storeKind, fn func(t *testing.T, s Store)) {
	for _, k := range kinds {
		t.Run("store="+k.name, func(t *testing.T) {
			s := k.open(t)
			t.Cleanup(func() { _ = s.Close() })
			fn(t, s)
		})
	}
}

func mustPut(t testing.TB, s Store, k, v string) {
	t.Helper()
	if err := s.Put([]byte(k), []byte(v)); err != nil {
		t.Fatalf("Put(%q): %v", k, err)
	}
}

func mustDelete(t testing.TB, s Store, k string) {
	t.Helper()
	if err := s.Delete([]byte(k)); err != nil {
		t.Fatalf("Delete(%q): %v", k, err)
	}
}

// collect drains a scan into "k=v" strings, failing on a scan error.
func collect(t testing.TB, it *Iter[[]byte, []byte]) []string {
	t.Helper()
	var out []string
	for k, v := range it.All() {
		out = append(out, string(k)+"="+string(v))
	}
	if err := it.Err(); err != nil {
		t.Fatalf("scan: %v", err)
	}
	return out
}

// contents returns every key and value of r.
func contents(t testing.TB, r ReadOnly) map[string]string {
	t.Helper()
	m := map[string]string{}
	it := r.All()
	for k, v := range it.All() {
		m[string(k)] = string(v)
	}
	if err := it.Err(); err != nil {
		t.Fatalf("scan: %v", err)
	}
	return m
}

func wantGet(t testing.TB, r ReadOnly, k, want string) {
	t.Helper()
	v, err := r.Get([]byte(k))
	if err != nil {
		t.Fatalf("Get(%q): %v", k, err)
	}
	if string(v) != want {
		t.Fatalf("Get(%q) = %q, want %q", k, v, want)
	}
}

func wantMissing(t testing.TB, r ReadOnly, k string) {
	t.Helper()
	if v, err := r.Get([]byte(k)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", k, v, err)
	}
}

func TestStoreConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s Store)
	}{
		{"get-missing", func(t *testing.T, s Store) { wantMissing(t, s, "a") }},
		{"put-get-overwrite", func(t *testing.T, s Store) {
			mustPut(t, s, "a", "1")
			wantGet(t, s, "a", "1")
			mustPut(t, s, "a", "22")
			wantGet(t, s, "a", "22")
			mustPut(t, s, "a", "3")
			wantGet(t, s, "a", "3")
		}},
		{"delete", func(t *testing.T, s Store) {
			mustPut(t, s, "a", "1")
			mustPut(t, s, "b", "2")
			mustDelete(t, s, "a")
			mustDelete(t, s, "never-there")
			wantMissing(t, s, "a")
			wantGet(t, s, "b", "2")
			if got := collect(t, s.All()); !slices.Equal(got, []string{"b=2"}) {
				t.Fatalf("All = %q", got)
			}
			mustPut(t, s, "a", "again")
			wantGet(t, s, "a", "again")
		}},
		{"empty-key-and-values", func(t *testing.T, s Store) {
			mustPut(t, s, "", "empty-key")
			if err := s.Put([]byte("nil"), nil); err != nil {
				t.Fatal(err)
			}
			mustPut(t, s, "empty", "")
			wantGet(t, s, "", "empty-key")
			if v, err := s.Get(nil); err != nil || string(v) != "empty-key" {
				t.Fatalf("Get(nil) = %q, %v", v, err)
			}
			for _, k := range []string{"nil", "empty"} {
				v, err := s.Get([]byte(k))
				if err != nil || v == nil || len(v) != 0 {
					t.Fatalf("Get(%q) = %#v, %v; want a non-nil empty value", k, v, err)
				}
			}
			if got := collect(t, s.All()); !slices.Equal(got, []string{"=empty-key", "empty=", "nil="}) {
				t.Fatalf("All = %q", got)
			}
			mustDelete(t, s, "")
			wantMissing(t, s, "")
		}},
		{"large-value", func(t *testing.T, s Store) {
			big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
			if err := s.Put([]byte("big"), big); err != nil {
				t.Fatal(err)
			}
			v, err := s.Get([]byte("big"))
			if err != nil || !bytes.Equal(v, big) {
				t.Fatalf("Get(big): len %d, %v", len(v), err)
			}
		}},
		{"put-copies-arguments", func(t *testing.T, s Store) {
			k, v := []byte("key"), []byte("val")
			if err := s.Put(k, v); err != nil {
				t.Fatal(err)
			}
			copy(k, "XXX")
			copy(v, "YYY")
			wantGet(t, s, "key", "val")
			wantMissing(t, s, "XXX")
		}},
		{"ordered-scan", func(t *testing.T, s Store) {
			want := map[string]string{}
			for i := range 500 {
				k := fmt.Sprintf("k%05d", (i*7919)%500) // scrambled insertion order
				want[k] = fmt.Sprint(i)
				mustPut(t, s, k, fmt.Sprint(i))
			}
			var keys []string
			it := s.All()
			for k := range it.All() {
				keys = append(keys, string(k))
			}
			if it.Err() != nil {
				t.Fatal(it.Err())
			}
			if !slices.IsSorted(keys) || len(keys) != 500 {
				t.Fatalf("All yielded %d keys, sorted=%v", len(keys), slices.IsSorted(keys))
			}
			if got := contents(t, s); !maps.Equal(got, want) {
				t.Fatal("contents differ")
			}
		}},
		{"byte-order-not-string-order", func(t *testing.T, s Store) {
			for _, k := range []string{"\xff", "a", "\x00", "ab", "a\x00", "B"} {
				mustPut(t, s, k, "")
			}
			want := []string{"\x00=", "B=", "a=", "a\x00=", "ab=", "\xff="}
			if got := collect(t, s.All()); !slices.Equal(got, want) {
				t.Fatalf("All = %q, want %q", got, want)
			}
		}},
		{"range-bounds", func(t *testing.T, s Store) {
			for _, k := range []string{"a", "b", "c", "d", "e"} {
				mustPut(t, s, k, k)
			}
			for _, rc := range []struct {
				name     string
				from, to []byte
				want     []string
			}{
				{"from-inclusive-to-exclusive", []byte("b"), []byte("d"), []string{"b=b", "c=c"}},
				{"between-keys", []byte("bb"), []byte("dd"), []string{"c=c", "d=d"}},
				{"nil-from", nil, []byte("c"), []string{"a=a", "b=b"}},
				{"nil-to", []byte("d"), nil, []string{"d=d", "e=e"}},
				{"both-nil", nil, nil, []string{"a=a", "b=b", "c=c", "d=d", "e=e"}},
				{"empty-from", []byte{}, []byte("b"), []string{"a=a"}},
				{"empty-to-is-empty-range", nil, []byte{}, nil},
				{"from-equals-to", []byte("c"), []byte("c"), nil},
				{"from-after-to", []byte("d"), []byte("b"), nil},
				{"past-end", []byte("f"), nil, nil},
			} {
				t.Run(rc.name, func(t *testing.T) {
					if got := collect(t, s.Range(rc.from, rc.to)); !slices.Equal(got, rc.want) {
						t.Fatalf("Range(%q, %q) = %q, want %q", rc.from, rc.to, got, rc.want)
					}
				})
			}
		}},
		{"prefix", func(t *testing.T, s Store) {
			for _, k := range []string{"a", "ab", "abc", "abd", "ac", "b", "\xff", "\xff\xff", "\xff\xff\x01", "a\xff", "a\xff\xff", "b\x00"} {
				mustPut(t, s, k, "")
			}
			for _, pc := range []struct {
				p    string
				want []string
			}{
				{"ab", []string{"ab=", "abc=", "abd="}},
				{"a", []string{"a=", "ab=", "abc=", "abd=", "ac=", "a\xff=", "a\xff\xff="}},
				{"a\xff", []string{"a\xff=", "a\xff\xff="}},
				{"\xff\xff", []string{"\xff\xff=", "\xff\xff\x01="}},
				{"b", []string{"b=", "b\x00="}},
				{"zz", nil},
			} {
				t.Run(fmt.Sprintf("%q", pc.p), func(t *testing.T) {
					if got := collect(t, s.Prefix([]byte(pc.p))); !slices.Equal(got, pc.want) {
						t.Fatalf("Prefix(%q) = %q, want %q", pc.p, got, pc.want)
					}
				})
			}
			if got := collect(t, s.Prefix(nil)); len(got) != 12 {
				t.Fatalf("Prefix(nil) yielded %d keys, want 12", len(got))
			}
		}},
		{"break-and-rescan", func(t *testing.T, s Store) {
			for i := range 300 {
				mustPut(t, s, fmt.Sprintf("%03d", i), "v")
			}
			it := s.All()
			n := 0
			for range it.All() {
				n++
				if n == 150 {
					break
				}
			}
			if it.Err() != nil || n != 150 {
				t.Fatalf("n=%d err=%v", n, it.Err())
			}
			n = 0
			for range it.All() {
				n++
			}
			if n != 300 {
				t.Fatalf("rescan yielded %d, want 300", n)
			}
		}},
		{"writes-during-scan", func(t *testing.T, s Store) {
			for i := range 400 {
				mustPut(t, s, fmt.Sprintf("%03d", i*2), "old")
			}
			var keys []string
			it := s.All()
			for k := range it.All() {
				keys = append(keys, string(k))
				var i int
				fmt.Sscan(string(k), &i)
				// Delete the next key, insert one in between, overwrite ourselves.
				mustDelete(t, s, fmt.Sprintf("%03d", i+2))
				mustPut(t, s, fmt.Sprintf("%03d", i+1), "new")
				mustPut(t, s, string(k), "new")
			}
			if it.Err() != nil {
				t.Fatal(it.Err())
			}
			if !slices.IsSorted(keys) || len(slices.Compact(slices.Clone(keys))) != len(keys) {
				t.Fatalf("scan during writes yielded keys out of order or twice: %q", keys)
			}
		}},
		{"write-batch", func(t *testing.T, s Store) {
			mustPut(t, s, "gone", "x")
			bw, ok := s.(BatchWriter)
			if !ok {
				t.Skip("no BatchWriter")
			}
			recs := [][2][]byte{{[]byte("a"), []byte("1")}, {[]byte("gone"), nil}, {[]byte("a"), []byte("2")}, {[]byte("e"), []byte{}}}
			n, err := bw.WriteBatch(func(yield func(k, v []byte) bool) {
				for _, r := range recs {
					if !yield(r[0], r[1]) {
						return
					}
				}
			})
			if err != nil || n != 4 {
				t.Fatalf("WriteBatch = %d, %v", n, err)
			}
			if got := collect(t, s.All()); !slices.Equal(got, []string{"a=2", "e="}) {
				t.Fatalf("All = %q", got)
			}
		}},
		{"flush-keeps-contents", func(t *testing.T, s Store) {
			mustPut(t, s, "a", "1")
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			mustPut(t, s, "b", "2")
			wantGet(t, s, "a", "1")
			wantGet(t, s, "b", "2")
		}},
		{"close", func(t *testing.T, s Store) {
			mustPut(t, s, "a", "1")
			q, _ := QueryView(s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if _, err := s.Get([]byte("a")); !errors.Is(err, ErrClosed) {
				t.Fatalf("Get after Close: %v", err)
			}
			if err := s.Put([]byte("a"), nil); !errors.Is(err, ErrClosed) {
				t.Fatalf("Put after Close: %v", err)
			}
			if _, err := q.Get([]byte("a")); !errors.Is(err, ErrClosed) {
				t.Fatalf("query Get after Close: %v", err)
			}
			it := q.All()
			for range it.All() {
				t.Fatal("scan after Close yielded")
			}
			if !errors.Is(it.Err(), ErrClosed) {
				t.Fatalf("scan after Close: %v", it.Err())
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { forEachKind(t, append(storeKinds(), cachedKinds()...), tc.run) })
	}
}

// TestQueryConcurrentWithWrites reads through the query view from other
// goroutines while the owner writes; run it with -race.
func TestQueryConcurrentWithWrites(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		q, ok := QueryView(s)
		if !ok {
			t.Fatal("no query view")
		}
		const n = 2000
		for i := range n {
			mustPut(t, s, fmt.Sprintf("k%05d", i), "0")
		}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		errs := make(chan error, 4)
		for range 2 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					var prev []byte
					cnt := 0
					it := q.All()
					for k, v := range it.All() {
						if prev != nil && bytes.Compare(prev, k) >= 0 {
							errs <- fmt.Errorf("out of order: %q after %q", k, prev)
							return
						}
						prev = append(prev[:0], k...)
						if len(v) == 0 {
							errs <- fmt.Errorf("empty value for %q", k)
							return
						}
						cnt++
					}
					if err := it.Err(); err != nil {
						errs <- err
						return
					}
					// Keys k00000..k01999 are never deleted.
					if cnt < n {
						errs <- fmt.Errorf("scan saw %d keys, want >= %d", cnt, n)
						return
					}
					if _, err := q.Get([]byte("k00007")); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		for round := range 20 {
			for i := range n {
				mustPut(t, s, fmt.Sprintf("k%05d", i), fmt.Sprint(round))
				if i%10 == 0 {
					mustPut(t, s, fmt.Sprintf("x%05d", i), "tmp")
					mustDelete(t, s, fmt.Sprintf("x%05d", i-10))
				}
			}
		}
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}
