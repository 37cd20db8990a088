package stream

import (
	"bytes"
	"testing"
)

// FuzzForeignKeyJoinRecords feeds arbitrary bytes to the decoders of the
// foreign-key join's internal records: they never panic, and what they
// accept re-encodes to the same bytes (one encoding per record).
func FuzzForeignKeyJoinRecords(f *testing.F) {
	h := hashValue([]byte("p1:2"))
	f.Add(appendSubscription(nil, subscription{instr: fkSubscribeAnswered, partition: 2, hash: h, leftKey: []byte("o1")}))
	f.Add(appendSubscription(nil, subscription{instr: fkUnsubscribe, partition: 0, leftKey: nil}))
	f.Add(appendStoredSub(nil, storedSub{partition: 1, hash: h, ts: 42}))
	f.Add(appendResponse(nil, response{hash: h, found: true, right: []byte("Kettle")}))
	f.Add(appendResponse(nil, response{hash: h}))
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := decodeSubscription(b); err == nil {
			if got := appendSubscription(nil, s); !bytes.Equal(got, b) {
				t.Fatalf("subscription %x re-encodes to %x", b, got)
			}
		}
		if s, err := decodeStoredSub(b); err == nil {
			if got := appendStoredSub(nil, s); !bytes.Equal(got, b) {
				t.Fatalf("stored subscription %x re-encodes to %x", b, got)
			}
		}
		if r, err := decodeResponse(b); err == nil {
			if got := appendResponse(nil, r); !bytes.Equal(got, b) {
				t.Fatalf("response %x re-encodes to %x", b, got)
			}
		}
	})
}

func TestForeignKeyJoinCombinedKey(t *testing.T) {
	// The prefix of one foreign key never covers the keys of another
	// that starts with it: the length comes first.
	a := append(appendFKPrefix(nil, []byte("p1")), "o1"...)
	b := append(appendFKPrefix(nil, []byte("p10")), "o1"...)
	prefix := appendFKPrefix(nil, []byte("p1"))
	if !bytes.HasPrefix(a, prefix) || bytes.HasPrefix(b, prefix) {
		t.Fatalf("prefix %x: %x, %x", prefix, a, b)
	}
	pk, err := splitCombinedKey(a, len(prefix))
	if err != nil || string(pk) != "o1" {
		t.Fatalf("left key %q, %v", pk, err)
	}
	if hashValue([]byte("a")) == hashValue([]byte("b")) || hashValue(nil) != hashValue([]byte{}) {
		t.Fatal("hash")
	}
}
