package records_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/broker/internal/records"
	"github.com/sluicehq/sluice/broker/internal/records/recordstest"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the committed fuzz seed corpus")

const maxDecomp = 64 << 20

var codecs = []struct {
	name  string
	codec int
}{
	{"none", recordstest.CodecNone},
	{"gzip", recordstest.CodecGzip},
	{"snappy", recordstest.CodecSnappy},
	{"snappy-xerial", recordstest.CodecSnappyXerial},
	{"lz4", recordstest.CodecLz4},
	{"zstd", recordstest.CodecZstd},
}

func sampleBatch(codec int) recordstest.Batch {
	b := recordstest.Batch{FirstTimestamp: 1_700_000_000_000, Codec: codec, ProducerID: 7, ProducerEpoch: 1}
	for i := range 20 {
		r := recordstest.Record{TimestampDelta: int64(i * 3), Value: bytes.Repeat([]byte{byte(i)}, 50+i)}
		if i%3 != 0 {
			r.Key = fmt.Appendf(nil, "key-%d", i)
		}
		if i%4 == 0 {
			r.Headers = []recordstest.Header{{Key: []byte("h"), Value: []byte("v")}, {Key: []byte("n")}}
		}
		b.Records = append(b.Records, r)
	}
	return b
}

func TestValidate(t *testing.T) {
	for _, c := range codecs {
		t.Run("valid/"+c.name, func(t *testing.T) {
			b := sampleBatch(c.codec).Encode()
			h, err := records.Validate(b, maxDecomp)
			if err != nil {
				t.Fatal(err)
			}
			if h.NumRecords != 20 || h.LastOffset() != 19 || h.TotalSize() != len(b) || int(h.Compression()) != c.codec&7 {
				t.Fatalf("header %+v", h)
			}
			var n int
			err = records.Records(b, nil, maxDecomp, func(r records.Record) bool {
				if int(r.OffsetDelta) != n || r.KeyNull != (n%3 == 0) || len(r.Value) != 50+n || r.TimestampDelta != int64(3*n) {
					t.Errorf("record %d: %+v", n, r)
				}
				if n%4 == 0 {
					var hs []string
					r.EachHeader(func(k, v []byte, null bool) bool {
						hs = append(hs, fmt.Sprintf("%s=%s/%v", k, v, null))
						return true
					})
					if fmt.Sprint(hs) != "[h=v/false n=/true]" {
						t.Errorf("headers %v", hs)
					}
				}
				n++
				return true
			})
			if err != nil || n != 20 {
				t.Fatalf("records: %v, %d", err, n)
			}
		})
	}

	corrupt := func(f func(b []byte) []byte) func() []byte {
		return func() []byte { return f(sampleBatch(0).Encode()) }
	}
	reCRC := func(b []byte) []byte { records.UpdateCRC(b); return b }
	tests := []struct {
		name  string
		batch func() []byte
		want  error
	}{
		{"empty", func() []byte { return nil }, records.ErrCorrupt},
		{"short header", corrupt(func(b []byte) []byte { return b[:60] }), records.ErrCorrupt},
		{"torn", corrupt(func(b []byte) []byte { return b[:len(b)-1] }), records.ErrCorrupt},
		{"trailing byte", corrupt(func(b []byte) []byte { return append(b, 0) }), records.ErrCorrupt},
		{"bad crc", corrupt(func(b []byte) []byte { b[100] ^= 1; return b }), records.ErrCorrupt},
		{"magic 1", corrupt(func(b []byte) []byte { b[16] = 1; return b }), records.ErrUnsupportedMagic},
		{"length too small", corrupt(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 3); return b }), records.ErrCorrupt},
		{"codec 5", corrupt(func(b []byte) []byte { b[22] |= 5; return reCRC(b) }), records.ErrUnsupportedCompression},
		{"count too high", corrupt(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[57:], 21)
			binary.BigEndian.PutUint32(b[23:], 20)
			return reCRC(b)
		}), records.ErrInvalidRecord},
		{"count too low", corrupt(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[57:], 19)
			binary.BigEndian.PutUint32(b[23:], 18)
			return reCRC(b)
		}), records.ErrInvalidRecord},
		{"last offset delta mismatch", corrupt(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[23:], 25)
			return reCRC(b)
		}), records.ErrInvalidRecord},
		{"negative count", corrupt(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[57:], 0xffffffff)
			return reCRC(b)
		}), records.ErrInvalidRecord},
		{"bad record length", corrupt(func(b []byte) []byte { b[61] = 0x7f; return reCRC(b) }), records.ErrInvalidRecord},
		{"gzip garbage", func() []byte {
			b := sampleBatch(recordstest.CodecGzip).Encode()
			b[len(b)-6] ^= 0xff
			return reCRC(b)
		}, records.ErrCorrupt},
		{"offset delta gap", func() []byte {
			var recs []byte
			recs = recordstest.AppendRecord(recs, 0, recordstest.Record{Value: []byte("a")})
			recs = recordstest.AppendRecord(recs, 2, recordstest.Record{Value: []byte("b")})
			b := recordstest.Batch{Records: []recordstest.Record{{}, {}}}.Encode()
			b = append(b[:61], recs...)
			binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
			return reCRC(b)
		}, records.ErrInvalidRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := records.Validate(tt.batch(), maxDecomp)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecompressBound(t *testing.T) {
	for _, c := range codecs[1:] {
		t.Run(c.name, func(t *testing.T) {
			b := recordstest.Batch{Codec: c.codec, Records: []recordstest.Record{{Value: make([]byte, 100_000)}}}.Encode()
			if _, err := records.Validate(b, 100_100); err != nil {
				t.Fatalf("within bound: %v", err)
			}
			if _, err := records.Validate(b, 50_000); !errors.Is(err, records.ErrInvalidRecord) {
				t.Fatalf("over bound: %v", err)
			}
		})
	}
}

func TestRewrite(t *testing.T) {
	b := sampleBatch(recordstest.CodecLz4).Encode()
	records.SetBaseOffset(b, 1234)
	records.SetLogAppendTime(b, 42)
	h, err := records.Validate(b, maxDecomp)
	if err != nil {
		t.Fatal(err)
	}
	if h.BaseOffset != 1234 || !h.LogAppendTime() || h.MaxTimestamp != 42 || h.FirstTimestamp != 42 || h.LastOffset() != 1253 {
		t.Fatalf("%+v", h)
	}
}

func TestParseHeaderFlags(t *testing.T) {
	b := recordstest.Batch{Transactional: true, Control: true, Records: []recordstest.Record{{}}}.Encode()
	h, err := records.ParseHeader(b)
	if err != nil || !h.IsTransactional() || !h.IsControl() || h.LogAppendTime() {
		t.Fatalf("%+v %v", h, err)
	}
}

func seeds() [][]byte {
	var out [][]byte
	for _, c := range codecs {
		out = append(out, sampleBatch(c.codec).Encode())
	}
	out = append(out, recordstest.Batch{}.Encode(), recordstest.Simple(5, 1, 3, 10))
	return out
}

// TestWriteSeeds rewrites testdata/fuzz with valid batches of every codec
// when run with -update-seeds.
func TestWriteSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite the corpus")
	}
	for _, target := range []string{"FuzzValidate", "FuzzParseHeader"} {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds() {
			data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func FuzzValidate(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s)
	}
	f.Fuzz(checkValidate)
}

// TestValidateMutations runs the FuzzValidate property over seeded random
// mutations of the seeds (with the CRC fixed up half the time so the
// records walk and decompressors see damaged input).
func TestValidateMutations(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	seeds := seeds()
	for range 10_000 {
		b := bytes.Clone(seeds[rng.IntN(len(seeds))])
		for range 1 + rng.IntN(3) {
			b[rng.IntN(len(b))] ^= byte(1 << rng.IntN(8))
		}
		if rng.IntN(2) == 0 && len(b) >= records.HeaderSize {
			records.UpdateCRC(b)
		}
		checkValidate(t, b)
		records.ParseHeader(b)
	}
}

func checkValidate(t *testing.T, b []byte) {
	{
		h, err := records.Validate(b, 1<<20)
		if err != nil {
			return
		}
		if h.TotalSize() != len(b) {
			t.Fatalf("validated size %d != %d", h.TotalSize(), len(b))
		}
		n := 0
		if err := records.Records(b, nil, 1<<20, func(records.Record) bool { n++; return true }); err != nil || n != int(h.NumRecords) {
			t.Fatalf("records after validate: %v, %d of %d", err, n, h.NumRecords)
		}
		c := bytes.Clone(b)
		records.SetBaseOffset(c, h.BaseOffset+1000)
		h2, err := records.Validate(c, 1<<20)
		if err != nil || h2.BaseOffset != h.BaseOffset+1000 {
			t.Fatalf("after SetBaseOffset: %v", err)
		}
		records.SetLogAppendTime(c, 99)
		if _, err := records.Validate(c, 1<<20); err != nil {
			t.Fatalf("after SetLogAppendTime: %v", err)
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := records.ParseHeader(b)
		if err == nil && (len(b) < records.HeaderSize || h.TotalSize() < records.HeaderSize) {
			t.Fatalf("accepted %d bytes, size %d", len(b), h.TotalSize())
		}
		records.CheckCRC(b)
		records.Records(b, nil, 1<<16, func(records.Record) bool { return true })
	})
}

func BenchmarkValidate(b *testing.B) {
	for _, c := range []struct {
		name  string
		codec int
	}{{"none", 0}, {"lz4", recordstest.CodecLz4}, {"zstd", recordstest.CodecZstd}} {
		batch := recordstest.Batch{Codec: c.codec}
		for len(batch.Records) < (1<<20)/110 {
			batch.Records = append(batch.Records, recordstest.Record{Value: bytes.Repeat([]byte{byte(len(batch.Records))}, 100)})
		}
		enc := batch.Encode()
		b.Run("codec="+c.name+"/size=1MiB", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				if _, err := records.Validate(enc, maxDecomp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestValidateAllocs(t *testing.T) {
	b := recordstest.Simple(0, 0, 1000, 100)
	if n := testing.AllocsPerRun(100, func() { records.Validate(b, maxDecomp) }); n != 0 {
		t.Fatalf("Validate allocates %v times per uncompressed batch", n)
	}
}
