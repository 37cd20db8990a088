package table

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// Tiny local serdes (package serde's are written elsewhere).

type strSerde struct{}

func (strSerde) AppendEncode(dst []byte, v string) ([]byte, error) { return append(dst, v...), nil }
func (strSerde) Decode(b []byte) (string, error)                   { return string(b), nil }

var errMalformed = errors.New("test: malformed")

// i64Serde is big-endian int64, like Kafka's LongSerializer.
type i64Serde struct{}

func (i64Serde) AppendEncode(dst []byte, v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(dst, uint64(v)), nil
}

func (i64Serde) Decode(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: %d bytes", errMalformed, len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

func TestKV(t *testing.T) {
	forEachKind(t, append(storeKinds(), cachedKinds()...), func(t *testing.T, s Store) {
		kv := NewKV[int64, string](s, i64Serde{}, strSerde{})
		for _, k := range []int64{5, 1, 300, 2, 1 << 40, 0} {
			if err := kv.Put(k, fmt.Sprint("v", k)); err != nil {
				t.Fatal(err)
			}
		}
		if v, ok, err := kv.Get(300); err != nil || !ok || v != "v300" {
			t.Fatalf("Get(300) = %q, %v, %v", v, ok, err)
		}
		if _, ok, err := kv.Get(7); err != nil || ok {
			t.Fatalf("Get(7): ok=%v err=%v", ok, err)
		}
		if err := kv.Delete(5); err != nil {
			t.Fatal(err)
		}
		var keys []int64
		it := kv.Range(1, 300)
		for k, v := range it.All() {
			if v != fmt.Sprint("v", k) {
				t.Fatalf("value of %d is %q", k, v)
			}
			keys = append(keys, k)
		}
		if it.Err() != nil || !slices.Equal(keys, []int64{1, 2}) {
			t.Fatalf("Range(1, 300) = %v, %v", keys, it.Err())
		}
		keys = keys[:0]
		for k := range kv.All().All() {
			keys = append(keys, k)
		}
		if !slices.Equal(keys, []int64{0, 1, 2, 300, 1 << 40}) {
			t.Fatalf("All = %v", keys)
		}
		// Negative numbers sort after the non-negative ones (documented).
		if err := kv.Put(-1, "neg"); err != nil {
			t.Fatal(err)
		}
		keys = keys[:0]
		for k := range kv.All().All() {
			keys = append(keys, k)
		}
		if keys[len(keys)-1] != -1 {
			t.Fatalf("big-endian -1 should sort last: %v", keys)
		}
		// The typed query view sees what reached the store below the cache.
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		q, _ := QueryView(s)
		view := NewView[int64, string](q, i64Serde{}, strSerde{})
		if v, ok, err := view.Get(2); err != nil || !ok || v != "v2" {
			t.Fatalf("view Get(2) = %q, %v, %v", v, ok, err)
		}
		n := 0
		for range view.Range(0, 3).All() {
			n++
		}
		if n != 3 {
			t.Fatalf("view Range(0, 3) yielded %d", n)
		}
	})
}

func TestKVDecodeErrors(t *testing.T) {
	s := NewMemory()
	mustPut(t, s, "short", "x") // not an int64
	kv := NewKV[string, int64](s, strSerde{}, i64Serde{})
	if _, _, err := kv.Get("short"); !errors.Is(err, errMalformed) {
		t.Fatalf("Get = %v, want errMalformed", err)
	}
	it := kv.All()
	for range it.All() {
		t.Fatal("yielded an undecodable entry")
	}
	if !errors.Is(it.Err(), errMalformed) {
		t.Fatalf("scan Err = %v, want errMalformed", it.Err())
	}
}
