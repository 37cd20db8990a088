package serde_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/serde"
)

// kafkaCase is a value and the bytes Kafka's serializer writes for it.
type kafkaCase[T any] struct {
	name string
	v    T
	hex  string
}

// checkKafka checks that s encodes each case to Kafka's bytes, appending to
// a non-empty dst, and decodes them back.
func checkKafka[T comparable](t *testing.T, s serde.Serde[T], cases []kafkaCase[T]) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, err := hex.DecodeString(strings.ReplaceAll(c.hex, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			b, err := s.AppendEncode([]byte{0xee}, c.v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, append([]byte{0xee}, want...)) {
				t.Fatalf("AppendEncode(%v) = % x, want ee % x", c.v, b, want)
			}
			got, err := s.Decode(want)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.v && !(isNaN(got) && isNaN(c.v)) {
				t.Errorf("Decode(% x) = %v, want %v", want, got, c.v)
			}
		})
	}
}

func isNaN(v any) bool { f, ok := v.(float64); return ok && f != f }

func TestKafkaBytes(t *testing.T) {
	t.Run("Int64", func(t *testing.T) {
		checkKafka(t, serde.Int64(), []kafkaCase[int64]{
			{"42", 42, "00 00 00 00 00 00 00 2a"},
			{"-1", -1, "ff ff ff ff ff ff ff ff"},
			{"min", math.MinInt64, "80 00 00 00 00 00 00 00"},
			{"0", 0, "00 00 00 00 00 00 00 00"},
		})
	})
	t.Run("Int32", func(t *testing.T) {
		checkKafka(t, serde.Int32(), []kafkaCase[int32]{
			{"42", 42, "00 00 00 2a"},
			{"-2", -2, "ff ff ff fe"},
			{"max", math.MaxInt32, "7f ff ff ff"},
		})
	})
	t.Run("Float64", func(t *testing.T) {
		checkKafka(t, serde.Float64(), []kafkaCase[float64]{
			{"1.5", 1.5, "3f f8 00 00 00 00 00 00"},
			{"-0", math.Copysign(0, -1), "80 00 00 00 00 00 00 00"},
			{"+inf", math.Inf(1), "7f f0 00 00 00 00 00 00"},
			// Java's doubleToLongBits turns every NaN into this one.
			{"NaN", math.Float64frombits(0x7ff0000000000001), "7f f8 00 00 00 00 00 00"},
		})
	})
	t.Run("Bool", func(t *testing.T) {
		checkKafka(t, serde.Bool(), []kafkaCase[bool]{{"true", true, "01"}, {"false", false, "00"}})
	})
	t.Run("String", func(t *testing.T) {
		checkKafka(t, serde.String(), []kafkaCase[string]{
			{"ascii", "hi", "68 69"},
			{"utf8", "né€", "6e c3 a9 e2 82 ac"},
			{"empty", "", ""},
		})
	})
	t.Run("UUID", func(t *testing.T) {
		u := [16]byte{0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0x00}
		checkKafka(t, serde.UUID(), []kafkaCase[[16]byte]{
			{"lower-case string", u, hex.EncodeToString([]byte("123e4567-e89b-12d3-a456-426614174000"))},
		})
	})
}

func TestUUIDDecode(t *testing.T) {
	s := serde.UUID()
	upper, err := s.Decode([]byte("123E4567-E89B-12D3-A456-426614174000"))
	if err != nil {
		t.Fatal(err)
	}
	lower, _ := s.Decode([]byte("123e4567-e89b-12d3-a456-426614174000"))
	if upper != lower {
		t.Errorf("upper case decodes to %x, lower to %x", upper, lower)
	}
	for _, in := range []string{
		"123e4567e89b12d3a456426614174000",
		"123e4567-e89b-12d3-a456-42661417400g",
		"123e4567+e89b-12d3-a456-426614174000",
		"{123e4567-e89b-12d3-a456-42661417400}",
	} {
		if _, err := s.Decode([]byte(in)); !errors.Is(err, serde.ErrMalformed) {
			t.Errorf("Decode(%q): got %v, want ErrMalformed", in, err)
		}
	}
}

func TestFixedWidthMalformed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		decode func([]byte) error
		in     []byte
	}{
		{"Int64 empty", decodeErr(serde.Int64()), []byte{}},
		{"Int64 short", decodeErr(serde.Int64()), make([]byte, 7)},
		{"Int64 long", decodeErr(serde.Int64()), make([]byte, 9)},
		{"Int32 short", decodeErr(serde.Int32()), make([]byte, 3)},
		{"Float64 short", decodeErr(serde.Float64()), make([]byte, 4)},
		{"Bool 2", decodeErr(serde.Bool()), []byte{2}},
		{"Bool long", decodeErr(serde.Bool()), []byte{1, 0}},
		{"UUID short", decodeErr(serde.UUID()), []byte("123e4567")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.decode(tc.in)
			if !errors.Is(err, serde.ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
			if !strings.HasPrefix(err.Error(), "serde/") {
				t.Errorf("%q lacks the package prefix", err)
			}
		})
	}
}

// TestTombstones pins what each serde makes of a nil input (a Kafka
// tombstone): the zero value, as Kafka's deserializers return null.
func TestTombstones(t *testing.T) {
	zero := func(name string, decode func([]byte) (any, error), want any) {
		t.Run(name, func(t *testing.T) {
			got, err := decode(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !equalAny(got, want) {
				t.Errorf("Decode(nil) = %#v, want %#v", got, want)
			}
		})
	}
	zero("String", anyDecode(serde.String()), "")
	zero("Bytes", anyDecode(serde.Bytes()), []byte(nil))
	zero("Int32", anyDecode(serde.Int32()), int32(0))
	zero("Int64", anyDecode(serde.Int64()), int64(0))
	zero("Float64", anyDecode(serde.Float64()), float64(0))
	zero("Bool", anyDecode(serde.Bool()), false)
	zero("UUID", anyDecode(serde.UUID()), [16]byte{})
	zero("JSON", anyDecode(serde.JSON[userV1T]()), userV1T{})
}

func anyDecode[T any](s serde.Serde[T]) func([]byte) (any, error) {
	return func(b []byte) (any, error) { return s.Decode(b) }
}

func equalAny(a, b any) bool {
	if ab, ok := a.([]byte); ok {
		bb, _ := b.([]byte)
		return (ab == nil) == (bb == nil) && bytes.Equal(ab, bb)
	}
	if au, ok := a.(userV1T); ok {
		bu := b.(userV1T)
		return au.Name == bu.Name && au.Age == bu.Age && au.Email == bu.Email && au.Tags == nil && bu.Tags == nil
	}
	return a == b
}

func TestBytesCopies(t *testing.T) {
	s := serde.Bytes()
	in := []byte("abc")
	got, _ := s.Decode(in)
	in[0] = 'x'
	if string(got) != "abc" {
		t.Errorf("Decode aliases its input: %q", got)
	}
	if got, _ := s.Decode([]byte{}); got == nil {
		t.Error("Decode of an empty non-nil input returned nil")
	}
}

func TestOptional(t *testing.T) {
	s := serde.Optional(serde.String())
	if b, _ := s.AppendEncode(nil, nil); b != nil {
		t.Errorf("AppendEncode(nil, nil) = %q, want nil (a tombstone)", b)
	}
	empty := ""
	if b, _ := s.AppendEncode(nil, &empty); b == nil {
		t.Error(`AppendEncode(nil, &"") = nil, which reads as a tombstone`)
	}
	if v, _ := s.Decode([]byte{}); v == nil || *v != "" {
		t.Errorf(`Decode(empty) = %v, want &""`, v)
	}
	i := serde.Optional(serde.Int64())
	if _, err := i.Decode([]byte{1}); !errors.Is(err, serde.ErrMalformed) {
		t.Errorf("Optional passes errors through: got %v", err)
	}
	v := int64(42)
	b, _ := i.AppendEncode([]byte{}, &v)
	if got, _ := i.Decode(b); got == nil || *got != 42 {
		t.Errorf("round trip: got %v", got)
	}
}

func isMalformed(err error) bool { return errors.Is(err, serde.ErrMalformed) }
