package serde_test

import (
	"bytes"
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/serde"
)

const userV1 = `{"type":"record","name":"User","namespace":"test","fields":[
	{"name":"name","type":"string"},
	{"name":"age","type":"int"},
	{"name":"email","type":["null","string"],"default":null},
	{"name":"tags","type":{"type":"array","items":"string"}}
]}`

// userV2 renames name to fullName (alias), promotes age to long, drops
// tags and adds country with a default.
const userV2 = `{"type":"record","name":"User","namespace":"test","fields":[
	{"name":"fullName","type":"string","aliases":["name"]},
	{"name":"age","type":"long"},
	{"name":"email","type":["null","string"],"default":null},
	{"name":"country","type":"string","default":"NL"}
]}`

type userV1T struct {
	Name  string   `avro:"name" json:"name"`
	Age   int32    `avro:"age" json:"age"`
	Email *string  `avro:"email" json:"email"`
	Tags  []string `avro:"tags" json:"tags"`
}

type userV2T struct {
	FullName string  `avro:"fullName"`
	Age      int64   `avro:"age"`
	Email    *string `avro:"email"`
	Country  string  `avro:"country"`
}

// must returns v, panicking on err: for setup and calls that cannot fail.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestAvroRoundTrip(t *testing.T) {
	s := must(serde.Avro[userV1T](userV1))
	email := "a@b.c"
	for _, u := range []userV1T{
		{Name: "ann", Age: 42, Email: &email, Tags: []string{"x", "y"}},
		{Name: "", Age: -1, Tags: []string{}},
	} {
		b := must(s.AppendEncode([]byte("prefix"), u))
		if !bytes.HasPrefix(b, []byte("prefix")) {
			t.Fatalf("AppendEncode dropped dst: %q", b)
		}
		got := must(s.Decode(b[len("prefix"):]))
		if !reflect.DeepEqual(got, u) {
			t.Errorf("round trip: got %+v, want %+v", got, u)
		}
	}
}

func TestAvroBytes(t *testing.T) {
	// The Avro spec's encoding: strings are a zigzag length then UTF-8,
	// ints zigzag varints, unions the branch index then the value.
	s := must(serde.Avro[userV1T](userV1))
	b := must(s.AppendEncode(nil, userV1T{Name: "ab", Age: -2, Tags: []string{"c"}}))
	want := []byte{4, 'a', 'b', 3, 0, 2, 2, 'c', 0}
	if !bytes.Equal(b, want) {
		t.Errorf("got % x, want % x", b, want)
	}
}

func TestAvroEvolution(t *testing.T) {
	w := must(serde.Avro[userV1T](userV1))
	email := "a@b.c"
	b := must(w.AppendEncode(nil, userV1T{Name: "ann", Age: 42, Email: &email, Tags: []string{"x"}}))

	t.Run("struct", func(t *testing.T) {
		r := must(serde.Avro[userV2T](userV2, serde.WriterSchema(userV1)))
		got := must(r.Decode(b))
		want := userV2T{FullName: "ann", Age: 42, Email: &email, Country: "NL"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
	t.Run("generic", func(t *testing.T) {
		r := must(serde.AvroGeneric(userV2, serde.WriterSchema(userV1)))
		got := must(r.Decode(b))
		want := map[string]any{"fullName": "ann", "age": int64(42), "email": "a@b.c", "country": "NL"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %#v, want %#v", got, want)
		}
	})
	t.Run("incompatible", func(t *testing.T) {
		// v1 cannot read v2 data: name has no default and v2 has no field of that name.
		_, err := serde.AvroGeneric(userV1, serde.WriterSchema(userV2))
		if !errors.Is(err, serde.ErrSchema) {
			t.Errorf("got %v, want ErrSchema", err)
		}
	})
}

func TestAvroConstruction(t *testing.T) {
	type wrongType struct {
		Name int     `avro:"name"`
		Age  int32   `avro:"age"`
		Mail *string `avro:"email"`
	}
	type notNullable struct {
		Name  string `avro:"name"`
		Age   int32  `avro:"age"`
		Email string `avro:"email"`
	}
	for name, fn := range map[string]func() error{
		"bad json":       func() error { _, err := serde.AvroGeneric(`{"type":`); return err },
		"unknown type":   func() error { _, err := serde.AvroGeneric(`"nope"`); return err },
		"wrong Go type":  func() error { _, err := serde.Avro[wrongType](userV1); return err },
		"not nullable":   func() error { _, err := serde.Avro[notNullable](userV1); return err },
		"not a struct":   func() error { _, err := serde.Avro[int64](userV1); return err },
		"bad writer":     func() error { _, err := serde.AvroGeneric(userV1, serde.WriterSchema(`[`)); return err },
		"unreadable old": func() error { _, err := serde.AvroGeneric(`"int"`, serde.WriterSchema(`"string"`)); return err },
	} {
		t.Run(name, func(t *testing.T) {
			err := fn()
			if !errors.Is(err, serde.ErrSchema) {
				t.Fatalf("got %v, want ErrSchema", err)
			}
			if !strings.HasPrefix(err.Error(), "serde: invalid schema") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestAvroMalformed(t *testing.T) {
	s := must(serde.Avro[userV1T](userV1))
	g := must(serde.AvroGeneric(`{"type":"array","items":"null"}`))
	for _, tc := range []struct {
		name string
		s    func([]byte) error
		in   []byte
	}{
		{"empty", decodeErr(s), []byte{}},
		{"truncated string", decodeErr(s), []byte{10, 'a'}},
		{"huge string length", decodeErr(s), []byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"negative length", decodeErr(s), []byte{1}},
		{"int overflow", decodeErr(s), []byte{0, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0}},
		{"union index", decodeErr(s), []byte{0, 0, 4, 0}},
		{"huge array", decodeErr(s), []byte{0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0x0f}},
		{"trailing bytes", decodeErr(s), []byte{0, 0, 0, 0, 0}},
		{"many nulls", decodeErr(g), []byte{0xfe, 0xff, 0xff, 0xff, 0x0f, 0}},
		{"min block count", decodeErr(g), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s(tc.in)
			if !errors.Is(err, serde.ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
			if _, ok := errors.AsType[*serde.DecodeError](err); !ok {
				t.Errorf("%v is not a *DecodeError", err)
			}
		})
	}
	// Zero-width items are fine up to the input's length.
	if v, err := g.Decode([]byte{4, 0}); err != nil || len(v.([]any)) != 2 {
		t.Errorf("two nulls: got %v, %v", v, err)
	}
}

func decodeErr[T any](s serde.Serde[T]) func([]byte) error {
	return func(b []byte) error { _, err := s.Decode(b); return err }
}

func TestAvroTombstone(t *testing.T) {
	s := must(serde.Avro[userV1T](userV1))
	if v, err := s.Decode(nil); err != nil || !reflect.DeepEqual(v, userV1T{}) {
		t.Errorf("Decode(nil) = %+v, %v; want zero", v, err)
	}
	o := serde.Optional(s)
	if v, err := o.Decode(nil); err != nil || v != nil {
		t.Errorf("Optional Decode(nil) = %v, %v; want nil", v, err)
	}
	n := must(serde.AvroGeneric(`"null"`))
	if v, err := n.Decode([]byte{}); err != nil || v != nil {
		t.Errorf("null schema Decode(empty) = %v, %v", v, err)
	}
}

// TestAvroDecodeAllocBound guards against trusting length prefixes: inputs
// of a few bytes that claim huge strings, arrays or maps must fail without
// allocating for the claimed size.
func TestAvroDecodeAllocBound(t *testing.T) {
	typed := must(serde.Avro[userV1T](userV1))
	generic := must(serde.AvroGeneric(nodeSchema))
	nulls := must(serde.AvroGeneric(`{"type":"array","items":"null"}`))
	maps := must(serde.AvroGeneric(`{"type":"map","values":"null"}`))
	huge := []byte{0xfe, 0xff, 0xff, 0xff, 0x0f} // zigzag 2^31-1
	for _, tc := range []struct {
		name   string
		decode func([]byte) error
		in     []byte
	}{
		{"string 1 GiB", decodeErr(typed), huge},
		{"array 1G strings", decodeErr(typed), append([]byte{0, 0, 0}, huge...)},
		{"array 1G nulls", decodeErr(nulls), huge},
		{"map 1G entries", decodeErr(maps), append(huge, 0, 0)},
		{"bytes 1 GiB", decodeErr(generic), append(make([]byte, 16), huge...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			allocated := allocatedBytes(func() { err = tc.decode(tc.in) })
			if !isMalformed(err) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
			if allocated > 64<<10 {
				t.Errorf("decoding %d bytes allocated %d bytes", len(tc.in), allocated)
			}
		})
	}
}

func allocatedBytes(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestAvroDepthLimit(t *testing.T) {
	s := must(serde.AvroGeneric(`{"type":"record","name":"L","fields":[{"name":"n","type":["null","L"]}]}`))
	list := func(n int) []byte { return append(bytes.Repeat([]byte{2}, n), 0) }
	if _, err := s.Decode(list(400)); err != nil {
		t.Errorf("400 deep: %v", err)
	}
	// Each level is a record and a union: 1000 levels of nesting is 500 of these.
	if _, err := s.Decode(list(600)); !isMalformed(err) {
		t.Errorf("600 deep: got %v, want ErrMalformed", err)
	}
}
