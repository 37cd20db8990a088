package table

import (
	"errors"
	"fmt"

	"github.com/sluicehq/sluice/serde"
)

// KV is a typed key-value store over a bytes Store, for the owning task:
// keys and values pass through their serdes, and encoding reuses buffers
// (so a KV, like its Store, is for one goroutine; see View for queries).
//
// Ordering: scans are in the order of the encoded keys (bytes.Compare), so
// a key serde must encode in an order-preserving way for Range to mean
// anything. UTF-8 strings sort as byte strings; big-endian fixed-width
// integers (Kafka's LongSerializer) sort numerically for non-negative values
// only, since negative numbers have the top bit set and sort after every
// non-negative one; JSON and Avro do not sort usefully.
type KV[K, V any] struct {
	s          Store
	ks         serde.Serde[K]
	vs         serde.Serde[V]
	kbuf, vbuf []byte
}

// NewKV returns a typed store over s.
func NewKV[K, V any](s Store, ks serde.Serde[K], vs serde.Serde[V]) *KV[K, V] {
	return &KV[K, V]{s: s, ks: ks, vs: vs}
}

// Store returns the bytes store below.
func (t *KV[K, V]) Store() Store { return t.s }

func (t *KV[K, V]) key(k K) ([]byte, error) {
	b, err := t.ks.AppendEncode(t.kbuf[:0], k)
	if err != nil {
		return nil, fmt.Errorf("table: encode key: %w", err)
	}
	t.kbuf = b
	return b, nil
}

// Get returns the value of k; ok is false if there is none.
func (t *KV[K, V]) Get(k K) (v V, ok bool, err error) {
	kb, err := t.key(k)
	if err != nil {
		return v, false, err
	}
	return getDecode(t.s, kb, t.vs)
}

func getDecode[V any](r ReadOnly, kb []byte, vs serde.Serde[V]) (v V, ok bool, err error) {
	b, err := r.Get(kb)
	if errors.Is(err, ErrNotFound) {
		return v, false, nil
	}
	if err != nil {
		return v, false, err
	}
	v, err = vs.Decode(b)
	if err != nil {
		return v, false, fmt.Errorf("table: decode value: %w", err)
	}
	return v, true, nil
}

// Put sets the value of k.
func (t *KV[K, V]) Put(k K, v V) error {
	kb, err := t.key(k)
	if err != nil {
		return err
	}
	vb, err := t.vs.AppendEncode(t.vbuf[:0], v)
	if err != nil {
		return fmt.Errorf("table: encode value: %w", err)
	}
	t.vbuf = vb
	return t.s.Put(kb, vb)
}

// Delete removes k.
func (t *KV[K, V]) Delete(k K) error {
	kb, err := t.key(k)
	if err != nil {
		return err
	}
	return t.s.Delete(kb)
}

// Range scans the keys from <= k < to, in encoded-key order (see KV).
func (t *KV[K, V]) Range(from, to K) *Iter[K, V] {
	return typedRange(t.s, t.ks, t.vs, from, to)
}

// Prefix scans the keys whose encoding starts with p (a composite key's
// leading part, encoded by the caller).
func (t *KV[K, V]) Prefix(p []byte) *Iter[K, V] { return decodeIter(t.s.Prefix(p), t.ks, t.vs) }

// All scans every key.
func (t *KV[K, V]) All() *Iter[K, V] { return decodeIter(t.s.All(), t.ks, t.vs) }

func typedRange[K, V any](r ReadOnly, ks serde.Serde[K], vs serde.Serde[V], from, to K) *Iter[K, V] {
	fb, err := ks.AppendEncode(nil, from)
	if err != nil {
		return errIter[K, V](fmt.Errorf("table: encode key: %w", err))
	}
	tb, err := ks.AppendEncode(nil, to)
	if err != nil {
		return errIter[K, V](fmt.Errorf("table: encode key: %w", err))
	}
	if fb == nil {
		fb = []byte{}
	}
	if tb == nil {
		tb = []byte{} // an encoding of to is a bound, never "unbounded"
	}
	return decodeIter(r.Range(fb, tb), ks, vs)
}

// decodeIter decodes a bytes scan; a decoding error ends it and is
// reported by Err.
func decodeIter[K, V any](it *Iter[[]byte, []byte], ks serde.Serde[K], vs serde.Serde[V]) *Iter[K, V] {
	return NewIter(func(yield func(K, V) bool) error {
		var derr error
		for kb, vb := range it.All() {
			k, err := ks.Decode(kb)
			if err != nil {
				derr = fmt.Errorf("table: decode key: %w", err)
				break
			}
			v, err := vs.Decode(vb)
			if err != nil {
				derr = fmt.Errorf("table: decode value: %w", err)
				break
			}
			if !yield(k, v) {
				break
			}
		}
		if derr != nil {
			return derr
		}
		return it.Err()
	})
}

// View is a typed read-only view for interactive queries: safe for
// concurrent use when its ReadOnly is (a QueryView is). It allocates its
// encoding buffers per call.
type View[K, V any] struct {
	r  ReadOnly
	ks serde.Serde[K]
	vs serde.Serde[V]
}

// NewView returns a typed view of r.
func NewView[K, V any](r ReadOnly, ks serde.Serde[K], vs serde.Serde[V]) *View[K, V] {
	return &View[K, V]{r: r, ks: ks, vs: vs}
}

// Get returns the value of k; ok is false if there is none.
func (q *View[K, V]) Get(k K) (v V, ok bool, err error) {
	kb, err := q.ks.AppendEncode(nil, k)
	if err != nil {
		return v, false, fmt.Errorf("table: encode key: %w", err)
	}
	return getDecode(q.r, kb, q.vs)
}

// Range scans the keys from <= k < to, in encoded-key order.
func (q *View[K, V]) Range(from, to K) *Iter[K, V] { return typedRange(q.r, q.ks, q.vs, from, to) }

// Prefix scans the keys whose encoding starts with p.
func (q *View[K, V]) Prefix(p []byte) *Iter[K, V] { return decodeIter(q.r.Prefix(p), q.ks, q.vs) }

// All scans every key.
func (q *View[K, V]) All() *Iter[K, V] { return decodeIter(q.r.All(), q.ks, q.vs) }
