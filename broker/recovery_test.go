package broker_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/brokertest"
)

// batchStarts returns the file positions and base offsets of the batches in
// a segment file.
func batchStarts(t *testing.T, path string) (pos, base []int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for p := 0; p+12 <= len(data); {
		n := int(binary.BigEndian.Uint32(data[p+8:]))
		pos = append(pos, int64(p))
		base = append(base, int64(binary.BigEndian.Uint64(data[p:])))
		p += 12 + n
	}
	return pos, base
}

// TestRecoveryCutsOnlyTheDamagedTail damages the last segment of a stopped
// broker by hand and checks that a restart keeps every batch before the
// damage, drops the rest, and goes on appending after it.
func TestRecoveryCutsOnlyTheDamagedTail(t *testing.T) {
	const n = 60
	cases := []struct {
		name   string
		damage func(t *testing.T, seg string) (keep int64) // returns the offsets that must survive
	}{
		{"torn last batch", func(t *testing.T, seg string) int64 {
			pos, base := batchStarts(t, seg)
			fi, _ := os.Stat(seg)
			if err := os.Truncate(seg, fi.Size()-7); err != nil {
				t.Fatal(err)
			}
			_ = pos
			return base[len(base)-1]
		}},
		{"flipped byte in the middle", func(t *testing.T, seg string) int64 {
			pos, base := batchStarts(t, seg)
			k := len(pos) / 2
			f, err := os.OpenFile(seg, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var b [1]byte
			at := pos[k] + 65 // inside the records, covered by the CRC
			if _, err := f.ReadAt(b[:], at); err != nil {
				t.Fatal(err)
			}
			b[0] ^= 0x5a
			if _, err := f.WriteAt(b[:], at); err != nil {
				t.Fatal(err)
			}
			return base[k]
		}},
		{"garbage after the last batch", func(t *testing.T, seg string) int64 {
			f, err := os.OpenFile(seg, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write([]byte("this is not a record batch, just noise at the tail")); err != nil {
				t.Fatal(err)
			}
			return n
		}},
		{"zeroed tail", func(t *testing.T, seg string) int64 {
			f, err := os.OpenFile(seg, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write(make([]byte, 4096)); err != nil {
				t.Fatal(err)
			}
			return n
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			small := brokertest.WithConfig(func(cfg *broker.Config) {
				cfg.TopicDefaults = map[string]string{"segment.bytes": "2048"}
			})
			b := brokertest.Start(t, small)
			ctx := testCtx(t)
			cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("tail"))
			if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "tail"); err != nil {
				t.Fatal(err)
			}
			for i := range n {
				if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			cl.Close()
			dir := b.Config.DataDir
			b.Stop(t)

			segs := segmentFiles(t, filepath.Join(dir, "tail-0"))
			if len(segs) < 2 {
				t.Fatalf("want several segments, got %v", segs)
			}
			keep := c.damage(t, segs[len(segs)-1])

			b2 := brokertest.Start(t, small, brokertest.DataDir(dir))
			cl2 := newClient(t, b2.Addr(), kgo.DefaultProduceTopic("tail"), kgo.ConsumeTopics("tail"),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			end, err := kadm.NewClient(cl2).ListEndOffsets(ctx, "tail")
			if o, _ := end.Lookup("tail", 0); err != nil || o.Offset != keep {
				t.Fatalf("end offset after recovery %d (%v), want %d", o.Offset, err, keep)
			}
			r := cl2.ProduceSync(ctx, &kgo.Record{Value: []byte("after")})
			if rec, err := r.First(); err != nil || rec.Offset != keep {
				t.Fatalf("append after recovery at %d (%v), want %d", rec.Offset, err, keep)
			}
			for i := int64(0); i <= keep; {
				fs := cl2.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					t.Fatal(err)
				}
				fs.EachRecord(func(r *kgo.Record) {
					want := strconv.Itoa(int(r.Offset))
					if r.Offset == keep {
						want = "after"
					}
					if r.Offset != i || string(r.Value) != want {
						t.Fatalf("offset %d value %q, want offset %d value %q", r.Offset, r.Value, i, want)
					}
					i++
				})
			}
		})
	}
}
