package stream

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	"github.com/sluicehq/sluice/window"
)

// Suppression says when a suppressed table lets updates through.
type Suppression struct {
	untilClose bool
	limitMs    int64
	maxRecords int
}

// UntilWindowCloses emits exactly one result per window: its final value,
// once stream time passes the window's end plus its grace period. The
// buffer is a changelogged store, so a restart neither loses nor repeats
// final results (under at-least-once, a crash between emitting and
// committing may repeat them).
func UntilWindowCloses() Suppression { return Suppression{untilClose: true} }

// UntilTimeLimit holds each key's latest update until d of stream time has
// passed since the key's first buffered update, then emits it; when more
// than maxRecords keys are buffered the oldest is emitted early (0: no
// bound).
func UntilTimeLimit(d time.Duration, maxRecords int) Suppression {
	return Suppression{limitMs: d.Milliseconds(), maxRecords: maxRecords}
}

// Suppress buffers the windowed table's updates and emits them as s says.
func (w WindowedKTable[K, V]) Suppress(s Suppression, opts ...Opt) WindowedKTable[K, V] {
	o := collect(opts)
	b := w.t.b
	name := o.name
	if name == "" {
		name = fmt.Sprintf("KTABLE-SUPPRESS-%010d", b.seq)
	}
	storeName := name + "-store"
	spec := w.spec
	ks, vs := w.t.kSerde, w.t.vSerde
	n, out := attachTable(w.t, "KTABLE-SUPPRESS", opOpts{name: name}, func(t *task, next procFn[window.Windowed[K], Change[V]]) procFn[window.Windowed[K], Change[V]] {
		st := t.stores[storeName]
		// The suppression's own stream time: the largest timestamp of the
		// updates it has received (as in Kafka Streams). Updates reach it
		// when the upstream cache flushes; using the task's stream time
		// instead could close a window before its last update arrived.
		observed := int64(-1)
		// deadline of a buffered entry: when it may be emitted.
		deadline := func(k window.Windowed[K]) int64 {
			if s.untilClose {
				return k.Window.End + spec.GraceMs()
			}
			return -1 // set from the first update, stored with the value
		}
		emitDue := func(force int) {
			type due struct {
				at   int64
				k, v []byte
			}
			var ready []due
			var all []due
			_ = st.scan(st.kv, nil, nil, func(kb, vb []byte) bool {
				if len(vb) < 8 {
					return true
				}
				d := due{at: int64(binary.BigEndian.Uint64(vb)), k: bytes.Clone(kb), v: bytes.Clone(vb[8:])}
				all = append(all, d)
				if d.at <= observed {
					ready = append(ready, d)
				}
				return true
			})
			if force > 0 && len(all) > force {
				sort.Slice(all, func(i, j int) bool { return all[i].at < all[j].at })
				ready = append(ready, all[:len(all)-force]...)
			}
			sort.Slice(ready, func(i, j int) bool { return ready[i].at < ready[j].at })
			seen := map[string]bool{}
			for _, d := range ready {
				if seen[string(d.k)] {
					continue
				}
				seen[string(d.k)] = true
				k, err := ks.Decode(d.k)
				if err != nil {
					t.fail(fmt.Errorf("suppress buffer: decode key: %w", err))
					continue
				}
				c := Change[V]{}
				if len(d.v) > 0 && d.v[0] == 1 {
					if c.New, err = vs.Decode(d.v[1:]); err != nil {
						t.fail(fmt.Errorf("suppress buffer: decode value: %w", err))
						continue
					}
					c.HasNew = true
				}
				if err := st.delete(d.k); err != nil {
					t.fail(err)
					continue
				}
				next(rec[window.Windowed[K], Change[V]]{key: k, value: c, ts: observed})
			}
		}
		var kbuf []byte
		return func(r rec[window.Windowed[K], Change[V]]) {
			observed = max(observed, r.ts)
			var err error
			if kbuf, err = ks.AppendEncode(kbuf[:0], r.key); err != nil {
				t.fail(err)
				return
			}
			at := deadline(r.key)
			if at < 0 {
				at = r.ts + s.limitMs
				if old, ok, _ := st.get(kbuf); ok && len(old) >= 8 {
					at = int64(binary.BigEndian.Uint64(old)) // keep the first update's deadline
				}
			}
			val := binary.BigEndian.AppendUint64(nil, uint64(at))
			if r.value.HasNew {
				val = append(val, 1)
				if val, err = vs.AppendEncode(val, r.value.New); err != nil {
					t.fail(err)
					return
				}
			} else {
				val = append(val, 0)
			}
			if err := st.put(kbuf, val); err != nil {
				t.fail(err)
				return
			}
			// Check what is due on every update, as Kafka Streams does.
			emitDue(s.maxRecords)
		}
	})
	n.stores = []string{storeName}
	b.addStore(&storeDef{name: storeName, owner: n, persistent: !o.inMemory, changelog: true})
	return WindowedKTable[K, V]{t: KTable[window.Windowed[K], V]{b: b, n: n, out: out, kSerde: ks, vSerde: vs}, spec: spec}
}
