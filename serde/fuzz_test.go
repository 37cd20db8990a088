package serde_test

import (
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/sluicehq/sluice/serde"
)

// checkDecode is the property every fuzzed decoder must have: no panic,
// failures wrap ErrMalformed, and a value that decodes re-encodes to bytes
// that decode to the same value. Decode and re-decode go through dec and
// re, which differ only when the input is written with another schema.
func checkDecode[T any](t *testing.T, dec, re serde.Serde[T], b []byte) {
	t.Helper()
	v, err := dec.Decode(b)
	if err != nil {
		if !isMalformed(err) {
			t.Fatalf("Decode(% x) failed without ErrMalformed: %v", b, err)
		}
		return
	}
	enc, err := re.AppendEncode(nil, v)
	if err != nil {
		t.Fatalf("Decode(% x) = %#v, which does not encode: %v", b, v, err)
	}
	if enc == nil {
		enc = []byte{} // not a tombstone
	}
	v2, err := re.Decode(enc)
	if err != nil {
		t.Fatalf("re-encoding of %#v, % x, does not decode: %v", v, enc, err)
	}
	if !sameValue(v, v2) {
		t.Fatalf("Decode(% x) = %#v, re-encoded % x decodes to %#v", b, v, enc, v2)
	}
}

// sameValue is reflect.DeepEqual, except that NaN equals NaN: fmt prints
// NaN as NaN, maps sorted by key and floats exactly.
func sameValue(a, b any) bool {
	return reflect.DeepEqual(a, b) || fmt.Sprintf("%#v", a) == fmt.Sprintf("%#v", b)
}

func FuzzInt64(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 42})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, serde.Int64(), serde.Int64(), b)
	})
}

// FuzzBuiltins runs the other fixed-format serdes over the same inputs.
func FuzzBuiltins(f *testing.F) {
	f.Add([]byte{1})
	f.Add([]byte{0x7f, 0xf0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte("123e4567-e89b-12d3-a456-426614174000"))
	f.Add([]byte("123E4567-E89B-12D3-A456-42661417400G"))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, serde.Int32(), serde.Int32(), b)
		checkDecode(t, serde.Float64(), serde.Float64(), b)
		checkDecode(t, serde.Bool(), serde.Bool(), b)
		checkDecode(t, serde.UUID(), serde.UUID(), b)
		checkDecode(t, serde.String(), serde.String(), b)
		checkDecode(t, serde.Bytes(), serde.Bytes(), b)
		checkDecode(t, serde.Optional(serde.Int64()), serde.Optional(serde.Int64()), b)
	})
}

func FuzzJSON(f *testing.F) {
	f.Add([]byte(`{"name":"a","age":1,"email":null,"tags":["x"]}`))
	f.Add([]byte(`{"name":"a","zip":[1,{"a":2}]}`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(`{"name":"\ud800"} `))
	typed := serde.JSON[userV1T]()
	strict := serde.JSON[userV1T](serde.DisallowUnknownFields())
	generic := serde.JSON[any]()
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, typed, typed, b)
		checkDecode(t, strict, strict, b)
		checkDecode(t, generic, generic, b)
	})
}

func FuzzAvro(f *testing.F) {
	s := must(serde.Avro[userV1T](userV1))
	email := "a@b.c"
	f.Add(must(s.AppendEncode(nil, userV1T{Name: "ann", Age: 42, Email: &email, Tags: []string{"x", "y"}})))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, s, s, b)
	})
}

// nodeSchema has every Avro type, and recursion.
const nodeSchema = `{"type":"record","name":"Node","fields":[
	{"name":"b","type":"boolean"},
	{"name":"i","type":"int"},
	{"name":"l","type":"long"},
	{"name":"f","type":"float"},
	{"name":"d","type":"double"},
	{"name":"s","type":"string"},
	{"name":"by","type":"bytes"},
	{"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"]}},
	{"name":"fx","type":{"type":"fixed","name":"F4","size":4}},
	{"name":"m","type":{"type":"map","values":"long"}},
	{"name":"a","type":{"type":"array","items":"null"}},
	{"name":"u","type":["null","string","double"]},
	{"name":"next","type":["null","Node"]}
]}`

func nodeValue(depth int) map[string]any {
	n := map[string]any{
		"b": true, "i": -7, "l": int64(math.MinInt64), "f": float32(1.5), "d": math.Inf(-1),
		"s": "ü", "by": []byte{0, 1}, "e": "GREEN", "fx": [4]byte{1, 2, 3, 4},
		"m": map[string]any{"k": int64(1), "": int64(-1)}, "a": []any{nil, nil},
		"u": map[string]any{"double": 2.5}, "next": nil,
	}
	if depth > 0 {
		n["next"] = map[string]any{"Node": nodeValue(depth - 1)}
	}
	return n
}

func FuzzAvroGeneric(f *testing.F) {
	s := must(serde.AvroGeneric(nodeSchema))
	f.Add(must(s.AppendEncode(nil, nodeValue(0))))
	f.Add(must(s.AppendEncode(nil, nodeValue(3))))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, s, s, b)
	})
}

// FuzzAvroEvolution decodes bytes as v1 data read with v2, the resolving
// path; the value must then round-trip through v2 alone.
func FuzzAvroEvolution(f *testing.F) {
	v1 := must(serde.Avro[userV1T](userV1))
	email := "a@b.c"
	f.Add(must(v1.AppendEncode(nil, userV1T{Name: "ann", Age: 42, Email: &email, Tags: []string{"x", "y"}})))
	f.Add([]byte{2, 'a', 0x80, 0x01, 0, 0})
	evolve := must(serde.Avro[userV2T](userV2, serde.WriterSchema(userV1)))
	v2 := must(serde.Avro[userV2T](userV2))
	generic := must(serde.AvroGeneric(userV2, serde.WriterSchema(userV1)))
	genericV2 := must(serde.AvroGeneric(userV2))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, evolve, v2, b)
		checkDecode(t, generic, genericV2, b)
	})
}
