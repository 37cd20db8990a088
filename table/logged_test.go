package table

import (
	"errors"
	"fmt"
	"iter"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// rec is one changelog record; a nil value is a tombstone.
type rec struct{ key, value []byte }

// memLog is a Changelog that keeps copies of what it is given, like a
// changelog partition whose offsets are the slice indexes.
type memLog struct {
	recs []rec
	err  error
}

func (l *memLog) Append(k, v []byte) error {
	if l.err != nil {
		return l.err
	}
	r := rec{key: append([]byte{}, k...)}
	if v != nil {
		r.value = append([]byte{}, v...)
	}
	l.recs = append(l.recs, r)
	return nil
}

// from returns the records at offsets >= off as a restore sequence.
func (l *memLog) from(off int64) iter.Seq2[[]byte, []byte] {
	return func(yield func(k, v []byte) bool) {
		for _, r := range l.recs[off:] {
			if !yield(r.key, r.value) {
				return
			}
		}
	}
}

// workload applies n random writes over a small key space to s.
func workload(t testing.TB, s Store, rng *rand.Rand, n int) {
	t.Helper()
	for range n {
		k := fmt.Sprintf("k%03d", rng.IntN(200))
		switch r := rng.IntN(10); {
		case r < 2:
			mustDelete(t, s, k)
		case r < 3:
			mustPut(t, s, k, "")
		default:
			mustPut(t, s, k, fmt.Sprintf("v%d", rng.Int()))
		}
	}
}

func TestLoggedRecordsExactlyTheWrites(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		log := &memLog{}
		l := NewLogged(s, log)
		mustPut(t, l, "a", "1")
		mustPut(t, l, "a", "2")
		if err := l.Put([]byte("nilval"), nil); err != nil {
			t.Fatal(err)
		}
		mustPut(t, l, "empty", "")
		mustDelete(t, l, "a")
		mustDelete(t, l, "absent")
		wantGet(t, l, "empty", "")
		if _, err := l.Get([]byte("a")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(a) = %v", err)
		}
		want := []rec{
			{[]byte("a"), []byte("1")},
			{[]byte("a"), []byte("2")},
			{[]byte("nilval"), []byte{}},
			{[]byte("empty"), []byte{}},
			{[]byte("a"), nil},
			{[]byte("absent"), nil},
		}
		if !slices.EqualFunc(log.recs, want, func(a, b rec) bool {
			return string(a.key) == string(b.key) && string(a.value) == string(b.value) && (a.value == nil) == (b.value == nil)
		}) {
			t.Fatalf("changelog = %q, want %q", log.recs, want)
		}
		if q, ok := QueryView(l); !ok {
			t.Fatal("no query view through Logged")
		} else {
			wantGet(t, q, "empty", "")
		}
	})
}

func TestLoggedAppendError(t *testing.T) {
	boom := errors.New("boom")
	l := NewLogged(NewMemory(), &memLog{err: boom})
	if err := l.Put([]byte("a"), []byte("1")); !errors.Is(err, boom) {
		t.Fatalf("Put = %v, want boom", err)
	}
	if err := l.Delete([]byte("a")); !errors.Is(err, boom) {
		t.Fatalf("Delete = %v, want boom", err)
	}
}

func TestRestoreFull(t *testing.T) {
	for _, src := range storeKinds() {
		for _, dst := range storeKinds() {
			t.Run("from="+src.name+"/to="+dst.name, func(t *testing.T) {
				log := &memLog{}
				orig := NewLogged(src.open(t), log)
				workload(t, orig, rand.New(rand.NewPCG(1, 2)), 3000)
				// Restoring through wrappers must not log again.
				restored := NewLogged(dst.open(t), &memLog{err: errors.New("restore must not log")})
				n, err := Restore(restored, log.from(0))
				if err != nil || n != len(log.recs) {
					t.Fatalf("Restore = %d, %v; want %d", n, err, len(log.recs))
				}
				if got, want := contents(t, restored), contents(t, orig); !maps.Equal(got, want) {
					t.Fatalf("restored %d keys, original has %d", len(got), len(want))
				}
			})
		}
	}
}

// plainStore hides the BatchWriter of a Memory to test Restore's fallback.
type plainStore struct{ Store }

func TestRestoreWithoutBatchWriter(t *testing.T) {
	log := &memLog{}
	orig := NewLogged(NewMemory(), log)
	workload(t, orig, rand.New(rand.NewPCG(3, 4)), 1000)
	dst := plainStore{NewMemory()}
	if n, err := Restore(dst, log.from(0)); err != nil || n != len(log.recs) {
		t.Fatalf("Restore = %d, %v", n, err)
	}
	if !maps.Equal(contents(t, dst), contents(t, orig)) {
		t.Fatal("contents differ")
	}
}

// TestPebbleRestoreFromCheckpoint runs the commit/restart protocol: writes,
// flush, checkpoint, more writes that are never flushed, an unclean close,
// then a reopen that restores only the tail.
func TestPebbleRestoreFromCheckpoint(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 6))
	log := &memLog{}
	p := openPebble(t, dir)
	if p.RestoreFrom() != 0 {
		t.Fatalf("fresh store RestoreFrom = %d", p.RestoreFrom())
	}
	s := NewLogged(p, log)
	workload(t, s, rng, 2000)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	committed := int64(len(log.recs))
	if err := p.Checkpoint(committed); err != nil {
		t.Fatal(err)
	}
	workload(t, s, rng, 500) // after the checkpoint: the tail
	want := contents(t, s)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	p2 := openPebble(t, dir)
	if p2.RestoreFrom() != committed {
		t.Fatalf("RestoreFrom = %d, want %d", p2.RestoreFrom(), committed)
	}
	n, err := Restore(p2, log.from(p2.RestoreFrom()))
	if err != nil || n != len(log.recs)-int(committed) {
		t.Fatalf("Restore = %d, %v", n, err)
	}
	if got := contents(t, p2); !maps.Equal(got, want) {
		t.Fatalf("after tail restore: %d keys, want %d", len(got), len(want))
	}
}

// TestPebbleInvalidCheckpointWipes checks that a store without a valid
// checkpoint starts empty, so a full restore gives exactly the changelog's
// state (no stale keys from the old disk contents).
func TestPebbleInvalidCheckpointWipes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, path string)
	}{
		{"missing", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", func(t *testing.T, path string) {
			if err := os.Truncate(path, 10); err != nil {
				t.Fatal(err)
			}
		}},
		{"empty", func(t *testing.T, path string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"bit-flip", func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[12] ^= 0x10
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"garbage", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("offset=12\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := openPebble(t, dir)
			mustPut(t, p, "stale", "x")
			if err := p.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := p.Checkpoint(7); err != nil {
				t.Fatal(err)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			tc.spoil(t, filepath.Join(dir, checkpointFile))
			p2 := openPebble(t, dir)
			if p2.RestoreFrom() != 0 {
				t.Fatalf("RestoreFrom = %d, want 0", p2.RestoreFrom())
			}
			if got := contents(t, p2); len(got) != 0 {
				t.Fatalf("store not wiped: %q", got)
			}
		})
	}
}

func TestPebbleExactlyOnceConsumesCheckpoint(t *testing.T) {
	dir := t.TempDir()
	p := openPebble(t, dir, ExactlyOnce(true))
	mustPut(t, p, "a", "1")
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := p.Checkpoint(1); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// Clean restart: the checkpoint is used, then removed.
	p = openPebble(t, dir, ExactlyOnce(true))
	if p.RestoreFrom() != 1 {
		t.Fatalf("RestoreFrom = %d, want 1", p.RestoreFrom())
	}
	wantGet(t, p, "a", "1")
	if _, err := os.Stat(filepath.Join(dir, checkpointFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("checkpoint still there after open under exactly-once: %v", err)
	}
	mustPut(t, p, "b", "uncommitted")
	if err := p.Flush(); err != nil { // e.g. a memtable flush before a crash
		t.Fatal(err)
	}
	if err := p.Close(); err != nil { // crash: no commit, no checkpoint
		t.Fatal(err)
	}
	p = openPebble(t, dir, ExactlyOnce(true))
	if p.RestoreFrom() != 0 || len(contents(t, p)) != 0 {
		t.Fatalf("after a crash under exactly-once: RestoreFrom=%d, contents=%q", p.RestoreFrom(), contents(t, p))
	}
}

func TestCheckpointFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cp")
	if _, ok, err := ReadCheckpoint(path); ok || err != nil {
		t.Fatalf("missing checkpoint: ok=%v err=%v", ok, err)
	}
	for _, off := range []int64{0, 1, 1 << 40} {
		if err := WriteCheckpoint(path, off); err != nil {
			t.Fatal(err)
		}
		got, ok, err := ReadCheckpoint(path)
		if err != nil || !ok || got != off {
			t.Fatalf("ReadCheckpoint = %d, %v, %v; want %d", got, ok, err, off)
		}
	}
	if err := WriteCheckpoint(path, -1); err == nil {
		t.Fatal("negative offset accepted")
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v %v", entries, err)
	}
	if err := os.WriteFile(path, []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := ReadCheckpoint(path); ok || !errors.Is(err, ErrCorruption) {
		t.Fatalf("junk checkpoint: ok=%v err=%v", ok, err)
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add(AppendCheckpoint(nil, 42))
	f.Add([]byte("SLCP"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		off, err := ParseCheckpoint(b)
		if err != nil {
			if !errors.Is(err, ErrCorruption) {
				t.Fatalf("error %v does not wrap ErrCorruption", err)
			}
			return
		}
		if off < 0 || string(AppendCheckpoint(nil, off)) != string(b) {
			t.Fatalf("accepted %x as %d, which does not re-encode to it", b, off)
		}
	})
}
