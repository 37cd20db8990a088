package table

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// fwd records what a Cached store forwards downstream.
type fwd struct{ recs []string }

func (f *fwd) flush(key, value, old []byte) error {
	s := string(key) + "="
	if value == nil {
		s += "<nil>"
	} else {
		s += string(value)
	}
	if old != nil {
		s += " old=" + string(old)
	}
	f.recs = append(f.recs, s)
	return nil
}

func TestCacheDedupAndFlushOrder(t *testing.T) {
	log := &memLog{}
	below := NewLogged(NewMemory(), log)
	f := &fwd{}
	s := NewCached(below, NewCache(DefaultCacheBytes), f.flush)
	for i := range 1000 {
		mustPut(t, s, fmt.Sprintf("k%d", i%10), fmt.Sprint(i))
	}
	mustPut(t, s, "k3", "last") // k3 becomes the most recently used
	mustDelete(t, s, "k5")
	if len(f.recs) != 0 || len(log.recs) != 0 {
		t.Fatalf("forwarded before Flush: %q, changelog %d records", f.recs, len(log.recs))
	}
	if s.Dirty() != 10 {
		t.Fatalf("Dirty = %d, want 10", s.Dirty())
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	want := []string{"k0=990", "k1=991", "k2=992", "k4=994", "k6=996", "k7=997", "k8=998", "k9=999", "k3=last", "k5=<nil>"}
	if !slices.Equal(f.recs, want) {
		t.Fatalf("forwarded %q\nwant %q", f.recs, want)
	}
	if len(log.recs) != 10 {
		t.Fatalf("changelog got %d records, want 10 (one per key)", len(log.recs))
	}
	wantGet(t, below, "k3", "last")
	wantMissing(t, below, "k5")
	if s.Dirty() != 0 {
		t.Fatalf("Dirty after Flush = %d", s.Dirty())
	}
	// A second Flush has nothing to forward.
	f.recs = nil
	if err := s.Flush(); err != nil || len(f.recs) != 0 {
		t.Fatalf("second Flush forwarded %q, %v", f.recs, err)
	}
}

func TestCacheEvictionOrderAndBound(t *testing.T) {
	f := &fwd{}
	below := NewMemory()
	// Room for exactly four entries.
	per := int64(len("keyaa")+len("value-aa")) + entryOverhead
	c := NewCache(4 * per)
	s := NewCached(below, c, f.flush)
	put := func(k string) { mustPut(t, s, "key"+k, "value-"+k) }
	for _, k := range []string{"aa", "bb", "cc", "dd"} {
		put(k)
	}
	if len(f.recs) != 0 {
		t.Fatalf("evicted too early: %q", f.recs)
	}
	// Reading aa makes bb the least recently used.
	wantGet(t, s, "keyaa", "value-aa")
	put("ee")
	put("ff")
	if want := []string{"keybb=value-bb", "keycc=value-cc"}; !slices.Equal(f.recs, want) {
		t.Fatalf("evicted %q, want %q", f.recs, want)
	}
	wantGet(t, below, "keybb", "value-bb")
	if c.Size() > c.Max() {
		t.Fatalf("cache holds %d bytes, over its %d budget", c.Size(), c.Max())
	}
	// Reads of evicted keys come from below (and are cached clean: evicting
	// them later forwards nothing).
	f.recs = nil
	wantGet(t, s, "keybb", "value-bb")
	for _, k := range []string{"gg", "hh", "ii", "jj", "kk"} {
		put(k)
	}
	for _, r := range f.recs {
		if r == "keybb=value-bb" {
			t.Fatalf("clean entry forwarded: %q", f.recs)
		}
	}
}

func TestCacheSizeBoundRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	c := NewCache(8 << 10)
	a := NewCached(NewMemory(), c, nil)
	b := NewCached(NewMemory(), c, nil)
	model := map[string]string{}
	for i := range 20000 {
		s, name := a, "a"
		if rng.IntN(2) == 0 {
			s, name = b, "b"
		}
		k := fmt.Sprintf("%d", rng.IntN(500))
		switch rng.IntN(4) {
		case 0:
			mustDelete(t, s, k)
			delete(model, name+k)
		case 1:
			v, err := s.Get([]byte(k))
			want, ok := model[name+k]
			if ok != (err == nil) || string(v) != want {
				t.Fatalf("op %d: Get(%s%s) = %q, %v; want %q, %v", i, name, k, v, err, want, ok)
			}
		default:
			v := fmt.Sprint(rng.Int64N(1 << rng.IntN(60)))
			mustPut(t, s, k, v)
			model[name+k] = v
		}
		if c.Size() > c.Max() {
			t.Fatalf("op %d: cache holds %d bytes, over %d", i, c.Size(), c.Max())
		}
	}
	for _, s := range []*Cached{a, b} {
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]string{}
	for name, s := range map[string]*Cached{"a": a, "b": b} {
		for k, v := range contents(t, s.Unwrap()) {
			got[name+k] = v
		}
	}
	if !maps.Equal(got, model) {
		t.Fatalf("after Flush the stores below hold %d keys, want %d", len(got), len(model))
	}
}

func TestCacheReadsAndScansThroughCache(t *testing.T) {
	below := NewMemory()
	for _, k := range []string{"a", "b", "c", "d"} {
		mustPut(t, below, k, "below")
	}
	s := NewCached(below, NewCache(DefaultCacheBytes), nil)
	mustPut(t, s, "b", "cached")
	mustDelete(t, s, "c")
	mustPut(t, s, "bb", "new")
	mustPut(t, s, "e", "new")
	wantGet(t, s, "b", "cached")
	wantMissing(t, s, "c")
	wantGet(t, s, "a", "below")
	// The store below and its query view do not see dirty entries yet.
	wantGet(t, below, "b", "below")
	q, _ := QueryView(s)
	wantGet(t, q, "c", "below")
	if got, want := collect(t, s.All()), []string{"a=below", "b=cached", "bb=new", "d=below", "e=new"}; !slices.Equal(got, want) {
		t.Fatalf("All = %q, want %q", got, want)
	}
	if got, want := collect(t, s.Range([]byte("b"), []byte("d"))), []string{"b=cached", "bb=new"}; !slices.Equal(got, want) {
		t.Fatalf("Range = %q, want %q", got, want)
	}
	if got, want := collect(t, s.Prefix([]byte("b"))), []string{"b=cached", "bb=new"}; !slices.Equal(got, want) {
		t.Fatalf("Prefix = %q, want %q", got, want)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	wantMissing(t, q, "c")
	wantGet(t, q, "b", "cached")
}

func TestCacheDisabledWritesThrough(t *testing.T) {
	f := &fwd{}
	below := NewMemory()
	s := NewCached(below, NewCache(0), f.flush)
	mustPut(t, s, "a", "1")
	mustPut(t, s, "a", "2")
	mustDelete(t, s, "a")
	if want := []string{"a=1", "a=2", "a=<nil>"}; !slices.Equal(f.recs, want) {
		t.Fatalf("forwarded %q, want %q", f.recs, want)
	}
	wantMissing(t, below, "a")
}

func TestCacheSendOldValues(t *testing.T) {
	f := &fwd{}
	below := NewMemory()
	mustPut(t, below, "a", "0")
	s := NewCached(below, NewCache(DefaultCacheBytes), f.flush, SendOldValues())
	mustPut(t, s, "a", "1")
	mustPut(t, s, "a", "2")
	mustPut(t, s, "b", "1")
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a=2 old=0", "b=1"}; !slices.Equal(f.recs, want) {
		t.Fatalf("forwarded %q, want %q", f.recs, want)
	}
}

// TestCacheReentrantFlush forwards evicted entries of one store into
// another store sharing the same cache, as a topology a -> b does.
func TestCacheReentrantFlush(t *testing.T) {
	c := NewCache(4 << 10)
	var b *Cached
	sink := &fwd{}
	b = NewCached(NewMemory(), c, sink.flush)
	a := NewCached(NewMemory(), c, func(key, value, _ []byte) error {
		if value == nil {
			return b.Delete(key)
		}
		return b.Put(key, append([]byte("b:"), value...))
	})
	for i := range 3000 {
		mustPut(t, a, fmt.Sprintf("k%03d", i%300), fmt.Sprint(i))
		if c.Size() > c.Max() {
			t.Fatalf("cache over budget: %d > %d", c.Size(), c.Max())
		}
	}
	// Flush in topological order: a, then b.
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	got := contents(t, b.Unwrap())
	if len(got) != 300 {
		t.Fatalf("b holds %d keys, want 300", len(got))
	}
	for i := 2700; i < 3000; i++ {
		k := fmt.Sprintf("k%03d", i%300)
		if got[k] != "b:"+fmt.Sprint(i) {
			t.Fatalf("b[%s] = %q, want b:%d", k, got[k], i)
		}
	}
}

func TestCacheFlushError(t *testing.T) {
	boom := errors.New("boom")
	s := NewCached(NewMemory(), NewCache(DefaultCacheBytes), func(_, _, _ []byte) error { return boom })
	mustPut(t, s, "a", "1")
	if err := s.Flush(); !errors.Is(err, boom) {
		t.Fatalf("Flush = %v, want boom", err)
	}
}

func TestCachedCloseReleasesBudget(t *testing.T) {
	c := NewCache(DefaultCacheBytes)
	s := NewCached(NewMemory(), c, nil)
	mustPut(t, s, "a", "1")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if c.Size() != 0 {
		t.Fatalf("cache holds %d bytes after Close", c.Size())
	}
	if err := s.Put([]byte("a"), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close = %v", err)
	}
}
