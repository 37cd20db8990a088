package log_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/broker/internal/log"
	"github.com/sluicehq/sluice/broker/internal/records/recordstest"
)

func benchBatch(n int) []byte {
	b := recordstest.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	for i := range n {
		b.Records = append(b.Records, recordstest.Record{Value: bytes.Repeat([]byte{byte(i)}, 100)})
	}
	return b.Encode()
}

func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 100} {
		batch := benchBatch(n)
		b.Run("records="+itoa(n), func(b *testing.B) {
			cfg := log.DefaultConfig()
			cfg.SegmentBytes = 64 << 20 // keep the page cache footprint small
			cfg.RetentionBytes = 256 << 20
			l := open(b, b.TempDir(), cfg)
			b.ReportAllocs()
			b.SetBytes(int64(len(batch)))
			i := 0
			for b.Loop() {
				if _, err := l.Append(batch); err != nil {
					b.Fatal(err)
				}
				if i++; i%4096 == 0 {
					l.EnforceRetention()
				}
			}
		})
	}
}

func BenchmarkRead(b *testing.B) {
	cfg := log.DefaultConfig()
	l := open(b, b.TempDir(), cfg)
	batch := benchBatch(100)
	for l.Size() < 64<<20 {
		if _, err := l.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("sequential/maxBytes=1MiB", func(b *testing.B) {
		buf := make([]byte, 0, 1<<20)
		off := int64(0)
		var n int64
		b.ReportAllocs()
		for b.Loop() {
			got, err := l.Read(buf[:0], off, 1<<20, l.EndOffset(), true)
			if err != nil {
				b.Fatal(err)
			}
			n += int64(len(got))
			off += int64(len(got)/len(batch)) * 100
			if off >= l.EndOffset() {
				off = 0
			}
		}
		b.SetBytes(n / int64(b.N))
	})
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestAppendAllocs(t *testing.T) {
	l := open(t, t.TempDir(), log.DefaultConfig())
	batch := benchBatch(10)
	l.Append(batch)
	if n := testing.AllocsPerRun(200, func() { l.Append(batch) }); n > 0.1 {
		t.Fatalf("Append allocates %v times", n)
	}
	buf := make([]byte, 0, 1<<16)
	if n := testing.AllocsPerRun(100, func() { l.Read(buf[:0], 10, 1<<16, l.EndOffset(), true) }); n > 0 {
		t.Fatalf("Read allocates %v times", n)
	}
}

// BenchmarkClean compacts a 64 MiB log of 100-byte values over 10k keys,
// in 8 MiB segments: the figure is MB/s of log compacted. Each iteration
// cleans a fresh copy of the dirty log (copied with the timer stopped).
func BenchmarkClean(b *testing.B) {
	for _, codec := range []int{recordstest.CodecNone, recordstest.CodecLz4, recordstest.CodecZstd} {
		b.Run("codec="+itoa(codec), func(b *testing.B) {
			cfg := log.DefaultConfig()
			cfg.SegmentBytes = 8 << 20
			cfg.Compact, cfg.NoDelete = true, true
			template := b.TempDir()
			l := open(b, template, cfg)
			rng := rand.New(rand.NewPCG(1, 2))
			val := bytes.Repeat([]byte("v"), 100)
			for l.Size() < 64<<20 {
				batch := recordstest.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Codec: codec}
				for range 10 {
					binary.BigEndian.PutUint64(val, rng.Uint64())
					batch.Records = append(batch.Records, recordstest.Record{
						Key: fmt.Appendf(nil, "key-%05d", rng.IntN(10_000)), Value: bytes.Clone(val)})
				}
				if _, err := l.Append(batch.Encode()); err != nil {
					b.Fatal(err)
				}
			}
			size := l.Size()
			l.Close()
			b.ReportAllocs()
			b.SetBytes(size)
			var st log.CleanStats
			for b.Loop() {
				b.StopTimer()
				dir := filepath.Join(b.TempDir(), "copy")
				copyDir(b, template, dir)
				l := open(b, dir, cfg)
				b.StartTimer()
				var err error
				if st, err = l.Clean(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				l.Close()
				os.RemoveAll(dir)
				b.StartTimer()
			}
			b.ReportMetric(float64(st.BytesWritten)/float64(st.BytesRead), "written/read")
		})
	}
}
