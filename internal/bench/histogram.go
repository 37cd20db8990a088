package bench

import (
	"math"
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: values below 1<<subBits are kept
// exactly, larger ones in buckets 1/(1<<(subBits-1)) of their magnitude wide,
// so any reported quantile is within 0.8% of a value actually recorded.
const subBits = 8

// numBuckets covers every uint64: shifts 1..64-subBits, half a sub-range each.
const numBuckets = (64-subBits+1)<<(subBits-1) + 1<<(subBits-1)

// Histogram records durations in log-linear buckets, in the manner of
// HdrHistogram: constant memory (about 60 KiB), O(1) Record, quantiles with a
// bounded relative error. The zero value is not usable; use NewHistogram.
// A Histogram is not safe for concurrent use: keep one per goroutine and
// Merge them.
type Histogram struct {
	counts   []uint64
	n        uint64
	min, max uint64
	sum      float64
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]uint64, numBuckets), min: math.MaxUint64}
}

// bucket maps v to its bucket index; buckets are ordered by value.
func bucket(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - subBits // >= 1; v>>shift is in [1<<(subBits-1), 1<<subBits)
	return shift<<(subBits-1) + int(v>>shift)
}

// bucketHigh is the largest value that falls into bucket i.
func bucketHigh(i int) uint64 {
	if i < 1<<subBits {
		return uint64(i)
	}
	shift := i>>(subBits-1) - 1
	m := uint64(i&(1<<(subBits-1)-1)) + 1<<(subBits-1)
	return (m+1)<<shift - 1
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucket(v)]++
	h.n++
	h.min = min(h.min, v)
	h.max = max(h.max, v)
	h.sum += float64(v)
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
	h.sum += o.sum
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest recorded value, or 0 if none.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Min returns the smallest recorded value, or 0 if none.
func (h *Histogram) Min() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.min)
}

// Mean returns the average of the recorded values, or 0 if none.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the value at or below which a fraction q (0..1) of the
// recorded values fall: the upper end of the bucket holding that rank, never
// more than Max. It returns 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(bucketHigh(i), h.max))
		}
	}
	return time.Duration(h.max)
}
