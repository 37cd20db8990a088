package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketBounds(t *testing.T) {
	// Every value lies in its bucket, buckets are ordered, and bucket width
	// is within the promised relative error.
	vals := []uint64{0, 1, 255, 256, 257, 511, 512, 1000, 1 << 20, 1<<40 + 12345, math.MaxUint64 >> 1, math.MaxUint64}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		vals = append(vals, rng.Uint64()>>rng.IntN(64))
	}
	for _, v := range vals {
		i := bucket(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucket(%d) = %d, out of [0,%d)", v, i, numBuckets)
		}
		hi := bucketHigh(i)
		if v > hi {
			t.Fatalf("value %d above its bucket %d high %d", v, i, hi)
		}
		if i > 0 && bucketHigh(i-1) >= v {
			t.Fatalf("value %d not above previous bucket high %d", v, bucketHigh(i-1))
		}
		if v >= 1<<subBits && float64(hi-v) > float64(v)/float64(1<<(subBits-1)) {
			t.Fatalf("bucket of %d too wide: high %d", v, hi)
		}
	}
}

func TestQuantiles(t *testing.T) {
	tests := []struct {
		name string
		vals []time.Duration
	}{
		{"one", []time.Duration{42 * time.Microsecond}},
		{"uniform", func() []time.Duration {
			var v []time.Duration
			for i := 1; i <= 10000; i++ {
				v = append(v, time.Duration(i)*time.Microsecond)
			}
			return v
		}()},
		{"long tail", func() []time.Duration {
			rng := rand.New(rand.NewPCG(3, 4))
			var v []time.Duration
			for range 100000 {
				v = append(v, time.Duration(rng.ExpFloat64()*float64(200*time.Microsecond)))
			}
			return v
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Split over two histograms to exercise Merge.
			h, h2 := NewHistogram(), NewHistogram()
			for i, v := range tt.vals {
				if i%2 == 0 {
					h.Record(v)
				} else {
					h2.Record(v)
				}
			}
			h.Merge(h2)
			sorted := slices.Clone(tt.vals)
			slices.Sort(sorted)
			if h.Count() != uint64(len(sorted)) || h.Max() != sorted[len(sorted)-1] || h.Min() != sorted[0] {
				t.Fatalf("count/min/max = %d/%v/%v, want %d/%v/%v", h.Count(), h.Min(), h.Max(), len(sorted), sorted[0], sorted[len(sorted)-1])
			}
			for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
				rank := max(int(math.Ceil(q*float64(len(sorted)))), 1)
				want := sorted[rank-1]
				got := h.Quantile(q)
				if got < want || float64(got-want) > float64(want)/100+1 {
					t.Errorf("Quantile(%v) = %v, want %v within 1%%", q, got, want)
				}
			}
		})
	}
}

func TestEmptyHistogram(t *testing.T) {
	h := NewHistogram()
	if h.Quantile(0.5) != 0 || h.Mean() != 0 || h.Min() != 0 || h.Max() != 0 {
		t.Fatal("empty histogram should report zeros")
	}
}
