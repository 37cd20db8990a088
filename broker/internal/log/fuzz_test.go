package log_test

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/broker/internal/log"
	"github.com/sluicehq/sluice/broker/internal/records"
	"github.com/sluicehq/sluice/broker/internal/records/recordstest"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the committed fuzz seed corpus")

func recoverSeeds() [][]byte {
	var seg []byte
	for i := range 5 {
		seg = append(seg, recordstest.Simple(int64(i*3), int64(i), 3, 40)...)
	}
	gz := recordstest.Batch{BaseOffset: 15, Codec: recordstest.CodecGzip, Records: []recordstest.Record{{Value: []byte("x")}}}.Encode()
	full := append(bytes.Clone(seg), gz...)
	flipped := bytes.Clone(full)
	flipped[200] ^= 1
	return [][]byte{
		nil,
		seg,
		full,
		full[:len(full)-7],
		flipped,
		append(bytes.Clone(seg), bytes.Repeat([]byte{0}, 100)...),
		append(bytes.Clone(seg), seg...), // offsets going backwards
	}
}

func TestWriteRecoverSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite the corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzRecover")
	os.MkdirAll(dir, 0o755)
	for i, s := range recoverSeeds() {
		data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzRecover writes arbitrary bytes as the only segment, opens the log and
// checks that what survives is a prefix of the input made of valid batches,
// that every offset reads, and that reopening gives the same result.
func FuzzRecover(f *testing.F) {
	for _, s := range recoverSeeds() {
		f.Add(s)
	}
	f.Fuzz(checkRecover)
}

// TestRecoverMutations runs the FuzzRecover property over seeded random
// mutations of the seeds, so plain `go test` covers more than the corpus.
func TestRecoverMutations(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	seeds := recoverSeeds()
	for i := range 300 {
		data := bytes.Clone(seeds[rng.IntN(len(seeds))])
		for range 1 + rng.IntN(4) {
			if len(data) == 0 {
				break
			}
			switch rng.IntN(3) {
			case 0:
				data[rng.IntN(len(data))] ^= byte(1 << rng.IntN(8))
			case 1:
				data = data[:rng.IntN(len(data))]
			case 2:
				data = append(data, data[rng.IntN(len(data)):]...)
			}
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkRecover(t, data) })
	}
}

func checkRecover(t *testing.T, data []byte) {
	{
		dir := t.TempDir()
		seg := filepath.Join(dir, "00000000000000000000.log")
		if err := os.WriteFile(seg, data, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := log.DefaultConfig()
		cfg.IndexIntervalBytes = 64
		l, err := log.Open(log.Options{Dir: dir, Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		kept, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, kept) || int64(len(kept)) != l.Size() {
			t.Fatalf("kept %d bytes (size %d) not a prefix of %d", len(kept), l.Size(), len(data))
		}
		// The kept bytes are whole, CRC-valid batches with rising offsets.
		next := int64(0)
		for rest := kept; len(rest) > 0; {
			h, err := records.ParseHeader(rest)
			if err != nil || h.TotalSize() > len(rest) {
				t.Fatalf("kept a torn batch: %v", err)
			}
			if _, err := records.CheckCRC(rest[:h.TotalSize()]); err != nil {
				t.Fatalf("kept a bad batch: %v", err)
			}
			if h.BaseOffset < next {
				t.Fatalf("kept offsets going backwards")
			}
			next = h.LastOffset() + 1
			rest = rest[h.TotalSize():]
		}
		if l.EndOffset() != next && len(kept) > 0 {
			t.Fatalf("end %d, want %d", l.EndOffset(), next)
		}
		var all []byte
		// Every offset when there are few, else a sample (offsets can be
		// anything up to 2^63).
		step := max(1, (l.EndOffset()-l.StartOffset())/2000)
		for off := l.StartOffset(); off < l.EndOffset(); off += step {
			got, err := l.Read(nil, off, 1, l.EndOffset(), true)
			if err != nil || len(got) == 0 {
				// Offsets in gaps between batches read the next batch.
				t.Fatalf("read %d: %v (%d bytes)", off, err, len(got))
			}
		}
		all, err = l.Read(all, l.StartOffset(), len(kept), l.EndOffset(), true)
		if err != nil || (l.StartOffset() < l.EndOffset() && !bytes.Equal(all, kept)) {
			t.Fatalf("read all: %v", err)
		}
		l.OffsetForTime(0)
		l.MaxTimestamp()
		l.ScanBatches(0, func(records.BatchHeader) bool { return true })
		end, size := l.EndOffset(), l.Size()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l, err = log.Open(log.Options{Dir: dir, Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if l.EndOffset() != end || l.Size() != size {
			t.Fatalf("reopen: end %d size %d, was %d %d", l.EndOffset(), l.Size(), end, size)
		}
	}
}
