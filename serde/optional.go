package serde

// Optional wraps s so tombstones are explicit: Decode(nil) returns a nil *T
// (where s itself would return T's zero value), and any other input, empty
// or not, is decoded by s into a new T. AppendEncode of a nil *T returns dst
// unchanged, so AppendEncode(nil, nil) is nil: a tombstone when used as a
// record value. A non-nil *T always encodes to a non-nil slice, even when
// its encoding is empty, so it is never mistaken for a tombstone.
func Optional[T any](s Serde[T]) Serde[*T] { return optional[T]{s} }

type optional[T any] struct{ s Serde[T] }

func (o optional[T]) AppendEncode(dst []byte, v *T) ([]byte, error) {
	if v == nil {
		return dst, nil
	}
	out, err := o.s.AppendEncode(dst, *v)
	if err == nil && out == nil {
		out = []byte{}
	}
	return out, err
}

func (o optional[T]) Decode(b []byte) (*T, error) {
	if b == nil {
		return nil, nil
	}
	v, err := o.s.Decode(b)
	if err != nil {
		return nil, err
	}
	return &v, nil
}
