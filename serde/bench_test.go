package serde_test

import (
	"testing"

	"github.com/sluicehq/sluice/serde"
)

// benchSerde measures encoding into a reused buffer and decoding.
func benchSerde[T any](b *testing.B, s serde.Serde[T], v T) {
	enc, err := s.AppendEncode(nil, v)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("op=encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		buf := make([]byte, 0, 256)
		for b.Loop() {
			buf, err = s.AppendEncode(buf[:0], v)
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := s.Decode(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchUser() userV1T {
	email := "ann@example.com"
	return userV1T{Name: "Ann Example", Age: 42, Email: &email, Tags: []string{"admin", "ops"}}
}

func BenchmarkSerde(b *testing.B) {
	b.Run("serde=String", func(b *testing.B) { benchSerde(b, serde.String(), "a typical key of some length") })
	b.Run("serde=Int64", func(b *testing.B) { benchSerde(b, serde.Int64(), 1234567890) })
	b.Run("serde=JSON", func(b *testing.B) { benchSerde(b, serde.JSON[userV1T](), benchUser()) })
	b.Run("serde=Avro", func(b *testing.B) { benchSerde(b, must(serde.Avro[userV1T](userV1)), benchUser()) })
	b.Run("serde=AvroGeneric", func(b *testing.B) {
		s := must(serde.AvroGeneric(userV1))
		benchSerde(b, s, must(s.Decode(must(s.AppendEncode(nil, any(map[string]any{
			"name": "Ann Example", "age": 42, "email": map[string]any{"string": "ann@example.com"},
			"tags": []any{"admin", "ops"},
		}))))))
	})
}
