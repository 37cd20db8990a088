package registry

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

type userV1Go struct {
	ID int32 `avro:"id"`
}

type userV2Go struct {
	ID   int64  `avro:"id"`
	Name string `avro:"name"`
}

const userV2Long = `{"type":"record","name":"User","namespace":"ex","fields":[{"name":"id","type":"long"},{"name":"name","type":"string","default":"anon"}]}`

func newSRClient(t testing.TB, url string) *sr.Client {
	t.Helper()
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func TestAvroSerdeEvolution(t *testing.T) {
	s := startServer(t, brokerAddr(t))
	cl := newSRClient(t, s.URL())

	w1, err := NewAvro[userV1Go](cl, userV1)
	if err != nil {
		t.Fatal(err)
	}
	enc := w1.ForTopic("users", false)
	b, err := enc.AppendEncode(nil, userV1Go{ID: 7})
	if err != nil {
		t.Fatal(err)
	}
	id, body, err := ParseHeader(b)
	if err != nil || id != 1 {
		t.Fatalf("header: id %d, %v", id, err)
	}
	if !bytes.Equal(body, []byte{14}) { // zigzag 7
		t.Fatalf("body %x", body)
	}
	expectJSON(t, do(t, s.URL(), "GET", "/subjects", nil), `["users-value"]`)

	// A reader with the evolved schema decodes old data: id promoted to
	// long, name filled from its default.
	r2, err := NewAvro[userV2Go](cl, userV2Long)
	if err != nil {
		t.Fatal(err)
	}
	dec := r2.ForTopic("users", false)
	got, err := dec.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got != (userV2Go{ID: 7, Name: "anon"}) {
		t.Fatalf("decoded %+v", got)
	}
	// The v2 writer registers version 2 (backward compatible) and its
	// records decode with the same serde.
	b2, err := dec.AppendEncode(nil, userV2Go{ID: 8, Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if id, _, _ := ParseHeader(b2); id != 2 {
		t.Fatalf("v2 id %d", id)
	}
	if got, err := dec.Decode(b2); err != nil || got != (userV2Go{ID: 8, Name: "x"}) {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	// Generic records.
	g, err := NewAvro[map[string]any](cl, userV2Long, Subject("users-value"), UseLatest())
	if err != nil {
		t.Fatal(err)
	}
	m, err := g.Decode(b)
	if err != nil || m["id"] != int64(7) || m["name"] != "anon" {
		t.Fatalf("generic decode %v, %v", m, err)
	}
	b3, err := g.AppendEncode(nil, map[string]any{"id": int64(9), "name": "y"})
	if err != nil {
		t.Fatal(err)
	}
	if id, _, _ := ParseHeader(b3); id != 2 {
		t.Fatalf("use-latest id %d", id)
	}
	// Errors.
	if _, err := w1.AppendEncode(nil, userV1Go{}); !errors.Is(err, ErrNoSubject) {
		t.Fatalf("unbound: %v", err)
	}
	if _, err := dec.Decode([]byte{1, 0, 0, 0, 1, 2}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad magic: %v", err)
	}
	if _, err := dec.Decode(AppendHeader(nil, 1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated body: %v", err)
	}
	noReg, _ := NewAvro[userV1Go](cl, `{"type":"record","name":"Z","fields":[{"name":"id","type":"int"}]}`, AutoRegister(false))
	if _, err := noReg.ForTopic("users", false).AppendEncode(nil, userV1Go{}); err == nil {
		t.Fatal("unregistered schema encoded without auto-register")
	}
}

func TestSubjectStrategies(t *testing.T) {
	for _, tt := range []struct {
		s     SubjectStrategy
		isKey bool
		want  string
	}{
		{TopicName, false, "t-value"},
		{TopicName, true, "t-key"},
		{RecordName, false, "ex.User"},
		{TopicRecordName, true, "t-ex.User"},
	} {
		if got := tt.s("t", tt.isKey, "ex.User"); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 1})
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff, 1, 2})
	f.Add([]byte{1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, body, err := ParseHeader(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		if len(body) != len(b)-HeaderSize {
			t.Fatalf("body %d bytes of %d", len(body), len(b))
		}
		// Re-encoding the header gives back the input.
		if re := append(AppendHeader(nil, id), body...); !bytes.Equal(re, b) {
			t.Fatalf("round trip %x != %x", re, b)
		}
	})
}

// FuzzAvroDecode feeds untrusted bytes to a serde whose writer schema is
// cached: it must return an error or a value, never panic.
func FuzzAvroDecode(f *testing.F) {
	s := startServer(f, brokerAddr(f))
	cl := newSRClient(f, s.URL())
	a, err := NewAvro[map[string]any](cl, userV2Long, Subject("fuzz"))
	if err != nil {
		f.Fatal(err)
	}
	good, err := a.AppendEncode(nil, map[string]any{"id": int64(1), "name": "n"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(append(AppendHeader(nil, 1), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01))
	f.Add(append(AppendHeader(nil, 1), 2, 0x80))
	f.Fuzz(func(t *testing.T, b []byte) {
		if id, _, err := ParseHeader(b); err != nil || id != 1 {
			return // only the cached id: no registry round trips while fuzzing
		}
		_, _ = a.Decode(b)
	})
}

func TestRecordNameStrategies(t *testing.T) {
	s := startServer(t, brokerAddr(t))
	cl := newSRClient(t, s.URL())
	for _, tt := range []struct {
		strategy SubjectStrategy
		want     string
	}{
		{RecordName, "ex.User"},
		{TopicRecordName, "events-ex.User"},
	} {
		a, err := NewAvro[userV1Go](cl, userV1, Strategy(tt.strategy))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.ForTopic("events", false).AppendEncode(nil, userV1Go{ID: 1}); err != nil {
			t.Fatal(err)
		}
		expect(t, do(t, s.URL(), "GET", "/subjects/"+tt.want+"/versions/1", nil), 200, 0)
	}
}
