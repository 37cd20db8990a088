package connect

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
)

// stdJSON is encoding/json's encoding without HTML escaping: what
// appendJSON must write byte for byte.
func stdJSON(t testing.TB, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	values := []any{
		nil, true, false, int64(0), int64(-42), int64(math.MaxInt64), int64(math.MinInt64), 7, int32(-3),
		0.0, 1.5, -2.25, 1e21, 1e20, 1e-7, 1e-6, 123456789.125, math.SmallestNonzeroFloat64, math.MaxFloat64, -0.0,
		"", "plain", `quote " backslash \ slash /`, "tab\tnew\nline\rcr", "\x00\x01\x1f\x7f", "<b>&amp;</b>",
		"héllo wörld ✓ 𝄞", "bad \xff utf8 \xc3", "line\u2028sep\u2029para",
		[]byte{}, []byte("bytes\x00\xff"),
		[]any{}, []any{int64(1), "two", nil, []any{3.5}},
		map[string]any{}, map[string]any{"b": int64(2), "a": "1", "c": map[string]any{"z": nil, "y": []any{true}}},
		map[string]any{"before": nil, "after": map[string]any{"id": int64(1), "name": "x"}, "op": "c", "ts_ms": int64(1700000000000)},
		json.Number("12.50"), map[string]int{"n": 1},
	}
	for _, v := range values {
		got, err := appendJSON(nil, v)
		if err != nil {
			t.Fatalf("%#v: %v", v, err)
		}
		if want := stdJSON(t, v); !bytes.Equal(got, want) {
			t.Errorf("%#v:\n got %s\nwant %s", v, got, want)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := appendJSON(nil, map[string]any{"f": f}); err == nil {
			t.Errorf("%v: no error", f)
		}
	}
}

// FuzzAppendJSON: for any JSON document (decoded to the data model) and any
// string, appendJSON writes what encoding/json writes.
func FuzzAppendJSON(f *testing.F) {
	f.Add([]byte(`{"a":[1,2.5,"x",null,true],"b":{"c":"d"}}`), "s")
	f.Add([]byte(`[1e300,-0.000001,"\u2028"]`), "bad \xff")
	f.Fuzz(func(t *testing.T, doc []byte, s string) {
		d := json.NewDecoder(bytes.NewReader(doc))
		d.UseNumber()
		var v any
		if d.Decode(&v) != nil {
			return
		}
		v = fromJSON(v)
		if fl, ok := v.(float64); ok && (math.IsInf(fl, 0) || math.IsNaN(fl)) {
			return
		}
		for _, val := range []any{v, s, map[string]any{s: v}} {
			var want bytes.Buffer
			e := json.NewEncoder(&want)
			e.SetEscapeHTML(false)
			if err := e.Encode(val); err != nil {
				return // a float out of range after parsing
			}
			got, err := appendJSON(nil, val)
			if err != nil {
				t.Fatalf("%#v: %v", val, err)
			}
			if !bytes.Equal(got, bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
				t.Fatalf("%#v:\n got %s\nwant %s", val, got, want.Bytes())
			}
		}
	})
}

func BenchmarkJSONConverterDebezium(b *testing.B) {
	v := map[string]any{
		"before": nil,
		"after":  map[string]any{"id": int64(123456), "customer_id": "c-42", "amount": "12.50", "note": "a short note", "created": int64(1763800000000000)},
		"source": map[string]any{"version": "2.7.0.Final", "connector": "postgresql", "name": "shop", "ts_ms": int64(1763800000000),
			"snapshot": "false", "db": "shop", "schema": "public", "table": "orders", "txId": int64(771), "lsn": int64(24023128), "xmin": nil},
		"op": "c", "ts_ms": int64(1763800000123),
	}
	b.Run("appendJSON", func(b *testing.B) {
		for b.Loop() {
			if _, err := (JSONConverter{}).FromConnect("t", v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
