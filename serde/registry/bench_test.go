package registry

import (
	"context"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/sluicehq/sluice/serde/registry/internal/avro"
)

// BenchmarkCompatibility measures one BACKWARD check of a 20-field record
// with a nested record, an enum and a union (fresh memo each time, as the
// server does).
func BenchmarkCompatibility(b *testing.B) {
	mk := func(extra string) string {
		f := `{"name":"f%d","type":"int"}`
		s := `{"type":"record","name":"Big","namespace":"ex","fields":[`
		for i := range 20 {
			s += fmt.Sprintf(f, i) + ","
		}
		s += `{"name":"n","type":{"type":"record","name":"N","fields":[{"name":"a","type":["null","string"],"default":null}]}},`
		s += `{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"]}}` + extra + `]}`
		return s
	}
	old, err := avro.Parse(mk(""), nil)
	if err != nil {
		b.Fatal(err)
	}
	nw, err := avro.Parse(mk(`,{"name":"x","type":"long","default":0}`), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if errs := avro.Check(nw, old); len(errs) != 0 {
			b.Fatal(errs)
		}
	}
}

// BenchmarkSerde measures registry-aware encode and decode once ids and
// schemas are cached (no registry round trip), and, for comparison, an
// uncached schema lookup by id over HTTP.
func BenchmarkSerde(b *testing.B) {
	s := startServer(b, brokerAddr(b))
	cl := newSRClient(b, s.URL())
	a, err := NewAvro[userV2Go](cl, userV2Long, Subject("bench-value"))
	if err != nil {
		b.Fatal(err)
	}
	v := userV2Go{ID: 12345, Name: "a name of some length"}
	rec, err := a.AppendEncode(nil, v)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := a.Decode(rec); err != nil {
		b.Fatal(err)
	}
	b.Run("op=encode-cached", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 64)
		for b.Loop() {
			buf, _ = a.AppendEncode(buf[:0], v)
		}
	})
	b.Run("op=decode-cached", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(rec)))
		for b.Loop() {
			if _, err := a.Decode(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=lookup-cached", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		for b.Loop() {
			if _, err := a.decoder(ctx, 1); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	})
	b.Run("op=lookup-http", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		for b.Loop() {
			if _, err := cl.SchemaByID(ctx, 1); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	})
}

// BenchmarkRegister measures a registration of a new schema through the
// REST API: BACKWARD compatibility check against the latest, produce to _schemas, wait for
// read-back.
func BenchmarkRegister(b *testing.B) {
	s := startServer(b, brokerAddr(b))
	cl := newSRClient(b, s.URL())
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		schema := fmt.Sprintf(`{"type":"record","name":"R","fields":[{"name":"f%d","type":"int","default":0}]}`, i)
		if _, err := cl.RegisterSchema(ctx, "bench", sr.Schema{Schema: schema}, -1, -1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "registrations/s")
}
