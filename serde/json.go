package serde

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// JSONOpt configures JSON.
type JSONOpt interface{ applyJSON(*jsonCfg) }

type jsonCfg struct{ disallowUnknown bool }

type jsonOpt func(*jsonCfg)

func (f jsonOpt) applyJSON(c *jsonCfg) { f(c) }

// DisallowUnknownFields makes JSON's Decode reject objects with keys that do
// not match a field of the destination struct, as json.Decoder's
// DisallowUnknownFields does. The default is to ignore them, like Kafka's
// JsonDeserializer with FAIL_ON_UNKNOWN_PROPERTIES off.
func DisallowUnknownFields() JSONOpt { return jsonOpt(func(c *jsonCfg) { c.disallowUnknown = true }) }

// JSON returns a serde that encodes T with encoding/json (json.Marshal's
// output, no trailing newline), the byte format of Kafka Connect's
// JsonConverter with schemas.enable=false. Decode requires exactly one JSON
// value (whitespace around it is allowed, trailing data is ErrMalformed);
// Decode(nil), a tombstone, returns T's zero value. Nesting deeper than
// encoding/json's limit (10000) is ErrMalformed.
func JSON[T any](opts ...JSONOpt) Serde[T] {
	var c jsonCfg
	for _, o := range opts {
		o.applyJSON(&c)
	}
	return jsonSerde[T]{c}
}

type jsonSerde[T any] struct{ cfg jsonCfg }

func (jsonSerde[T]) AppendEncode(dst []byte, v T) ([]byte, error) {
	// An Encoder writing into a Buffer over dst appends in place when dst
	// has room, instead of json.Marshal's fresh slice plus a copy.
	buf := bytes.NewBuffer(dst)
	enc := json.NewEncoder(buf)
	if err := enc.Encode(v); err != nil {
		return dst, fmt.Errorf("serde/json: encode: %w", err)
	}
	out := buf.Bytes()
	return out[:len(out)-1], nil // Encode ends the value with '\n'
}

func (s jsonSerde[T]) Decode(b []byte) (T, error) {
	var v T
	if b == nil {
		return v, nil
	}
	if !s.cfg.disallowUnknown {
		// json.Unmarshal validates the whole input first, so trailing data
		// is already an error.
		if err := json.Unmarshal(b, &v); err != nil {
			var zero T
			return zero, malformed("json", b, jsonOffset(err), "", err)
		}
		return v, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		var zero T
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return zero, malformed("json", b, jsonOffset(err), "", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var zero T
		return zero, malformed("json", b, int(dec.InputOffset()), "trailing data after the value", nil)
	}
	return v, nil
}

// jsonOffset returns the offset encoding/json reports in err, or -1.
func jsonOffset(err error) int {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return int(se.Offset)
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return int(te.Offset)
	}
	return -1
}
