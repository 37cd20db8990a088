package table

import (
	"encoding/binary"
	"fmt"
	"iter"
	"testing"
	"time"
)

const (
	benchKeys     = 10_000
	benchValueLen = 100
)

func benchKey(dst []byte, i int) []byte {
	// Scramble the order (an odd multiplier permutes 0..2^32-1), so that
	// writes do not arrive sorted.
	return binary.BigEndian.AppendUint32(dst[:0], uint32(i)*2654435761)
}

func benchValue() []byte {
	v := make([]byte, benchValueLen)
	for i := range v {
		v[i] = byte('a' + i%26)
	}
	return v
}

func benchStores(b *testing.B, fn func(b *testing.B, open func() Store)) {
	for _, k := range storeKinds() {
		b.Run("store="+k.name, func(b *testing.B) {
			fn(b, func() Store {
				s := k.open(b)
				b.Cleanup(func() { _ = s.Close() })
				return s
			})
		})
	}
}

func BenchmarkPut(b *testing.B) {
	benchStores(b, func(b *testing.B, open func() Store) {
		s, v, k := open(), benchValue(), make([]byte, 0, 8)
		b.ReportAllocs()
		b.SetBytes(benchValueLen)
		i := 0
		for b.Loop() {
			k = benchKey(k, i%benchKeys)
			if err := s.Put(k, v); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkGet(b *testing.B) {
	benchStores(b, func(b *testing.B, open func() Store) {
		s, v, k := open(), benchValue(), make([]byte, 0, 8)
		for i := range benchKeys {
			if err := s.Put(benchKey(k, i), v); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Flush(); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			k = benchKey(k, i%benchKeys)
			if _, err := s.Get(k); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkCachedPut writes 10k keys over and over through the record cache
// and the changelogging store, with a commit (Flush) every 100k writes: the
// path of a count aggregation.
func BenchmarkCachedPut(b *testing.B) {
	benchStores(b, func(b *testing.B, open func() Store) {
		forwarded := 0
		log := ChangelogFunc(func(_, _ []byte) error { return nil })
		s := NewCached(NewLogged(open(), log), NewCache(DefaultCacheBytes), func(_, _, _ []byte) error {
			forwarded++
			return nil
		})
		v, k := benchValue(), make([]byte, 0, 8)
		b.ReportAllocs()
		b.SetBytes(benchValueLen)
		i := 0
		for b.Loop() {
			k = benchKey(k, i%benchKeys)
			if err := s.Put(k, v); err != nil {
				b.Fatal(err)
			}
			i++
			if i%100_000 == 0 {
				if err := s.Flush(); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(forwarded)/float64(b.N), "fwd/op")
	})
}

// BenchmarkRestore restores 1M changelog records of 100 bytes into an empty
// store, over 10k distinct keys and over 1M distinct keys.
func BenchmarkRestore(b *testing.B) {
	const records = 1_000_000
	for _, distinct := range []int{10_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", distinct), func(b *testing.B) {
			benchStores(b, func(b *testing.B, open func() Store) {
				v := benchValue()
				recs := func(yield func(k, v []byte) bool) {
					k := make([]byte, 0, 8)
					for i := range records {
						if !yield(benchKey(k, i%distinct), v) {
							return
						}
					}
				}
				b.ReportAllocs()
				b.SetBytes(records * benchValueLen)
				var elapsed time.Duration
				for b.Loop() {
					b.StopTimer()
					s := open()
					b.StartTimer()
					start := time.Now()
					n, err := Restore(s, iter.Seq2[[]byte, []byte](recs))
					if err != nil || n != records {
						b.Fatal(n, err)
					}
					elapsed += time.Since(start)
					b.StopTimer()
					_ = s.Close()
					b.StartTimer()
				}
				b.ReportMetric(float64(records)*float64(b.N)/elapsed.Seconds(), "rec/s")
			})
		})
	}
}

// BenchmarkWindowExpiry measures what one second of stream time costs a
// window store of 1,000 keys with one window per key per second and 100 s
// of retention (100,000 live windows): put the second's 1,000 windows,
// then expire. layout=flat is what the stream runtime did before segmented
// stores: scan the whole store and delete the expired windows one by one.
// layout=segmented is a Segmented store (60 s segments, dropped with a
// range delete). Measured on a shared 2-core machine (-benchtime 120x and
// 200x, loads from quiet to busy): flat 20-47 ms/op on memory and 26-67
// ms/op on pebble; segmented 2.0-4.7 ms/op on either, mostly the 1,000
// puts. Segmented stores hold expired windows until their segment goes (up
// to retention + interval: 160 s of windows here, against 100 s).
func BenchmarkWindowExpiry(b *testing.B) {
	const (
		keys      = 1000
		retention = 100_000 // ms
		step      = 1000    // ms of stream time per op
	)
	value := benchValue()
	for _, layout := range []string{"flat", "segmented"} {
		for _, k := range storeKinds() {
			b.Run("layout="+layout+"/store="+k.name, func(b *testing.B) {
				base := k.open(b)
				b.Cleanup(func() { _ = base.Close() })
				var seg *Segmented
				st := base
				if layout == "segmented" {
					var err error
					if seg, err = NewSegmented(base, WindowLayout, retention); err != nil {
						b.Fatal(err)
					}
					st = seg
				}
				now := int64(0)
				var kbuf []byte
				second := func() {
					for i := range keys {
						kbuf = binary.BigEndian.AppendUint32(kbuf[:0], uint32(i)*2654435761)
						kbuf = binary.BigEndian.AppendUint64(kbuf, uint64(now))
						if err := st.Put(kbuf, value); err != nil {
							b.Fatal(err)
						}
					}
					if seg != nil {
						if err := seg.Expire(now); err != nil {
							b.Fatal(err)
						}
					} else {
						expireFlat(b, base, now-retention)
					}
					now += step
				}
				// Fill the retention period first.
				for now < retention {
					second()
				}
				b.ReportAllocs()
				for b.Loop() {
					second()
				}
			})
		}
	}
}

// expireFlat is the stream runtime's expiry before segmented stores.
func expireFlat(b *testing.B, s Store, cutoff int64) {
	var expired [][]byte
	it := s.All()
	for k := range it.All() {
		if len(k) >= 8 && int64(binary.BigEndian.Uint64(k[len(k)-8:])) < cutoff {
			expired = append(expired, append([]byte{}, k...))
		}
	}
	if err := it.Err(); err != nil {
		b.Fatal(err)
	}
	for _, k := range expired {
		if err := s.Delete(k); err != nil {
			b.Fatal(err)
		}
	}
}
