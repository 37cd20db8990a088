package connect

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestTransforms(t *testing.T) {
	ts := time.UnixMilli(1700000000000)
	base := Record{Topic: "db.public.orders", Partition: 2, Offset: 7, Timestamp: ts,
		Key: map[string]any{"id": int64(1)}, Value: map[string]any{"id": int64(1), "total": 9.5, "secret": "x"}}
	envelope := func(op string, before, after map[string]any) Record {
		r := base
		r.Value = map[string]any{"op": op, "before": before, "after": after, "ts_ms": int64(5),
			"source": map[string]any{"table": "orders", "lsn": int64(42), "ts_ms": int64(4)}}
		return r
	}
	row := map[string]any{"id": int64(1), "total": 9.5}
	tombstone := base
	tombstone.Value = nil
	withHeader := base
	withHeader.Headers = []Header{{"trace", []byte("1")}}

	unwrap := map[string]string{"transforms": "u", "transforms.u.type": "io.debezium.transforms.ExtractNewRecordState"}
	with := func(cfg map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range cfg {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	tests := []struct {
		name     string
		cfg      map[string]string
		in       Record
		keep     bool
		want     Record // compared when keep
		wantFail bool
	}{
		{"no transforms", nil, base, true, base, false},
		{"regex router", map[string]string{"transforms": "r", "transforms.r.type": "org.apache.kafka.connect.transforms.RegexRouter",
			"transforms.r.regex": `db\.(\w+)\.(\w+)`, "transforms.r.replacement": "$2-$1"}, base, true,
			func() Record { r := base; r.Topic = "orders-public"; return r }(), false},
		{"regex router no match (whole topic)", map[string]string{"transforms": "r", "transforms.r.type": "RegexRouter",
			"transforms.r.regex": `db`, "transforms.r.replacement": "x"}, base, true, base, false},
		{"insert field value", map[string]string{"transforms": "i", "transforms.i.type": "org.apache.kafka.connect.transforms.InsertField$Value",
			"transforms.i.static.field": "src", "transforms.i.static.value": "pg", "transforms.i.topic.field": "t",
			"transforms.i.partition.field": "p", "transforms.i.offset.field": "o!", "transforms.i.timestamp.field": "ts?"}, base, true,
			func() Record {
				r := base
				r.Value = map[string]any{"id": int64(1), "total": 9.5, "secret": "x", "src": "pg", "t": "db.public.orders",
					"p": int64(2), "o": int64(7), "ts": ts.UnixMilli()}
				return r
			}(), false},
		{"insert field key", map[string]string{"transforms": "i", "transforms.i.type": "InsertField$Key", "transforms.i.topic.field": "t"}, base, true,
			func() Record { r := base; r.Key = map[string]any{"id": int64(1), "t": "db.public.orders"}; return r }(), false},
		{"insert field tombstone passes", map[string]string{"transforms": "i", "transforms.i.type": "InsertField$Value", "transforms.i.topic.field": "t"},
			tombstone, true, tombstone, false},
		{"insert field into a string fails", map[string]string{"transforms": "i", "transforms.i.type": "InsertField$Value", "transforms.i.topic.field": "t"},
			func() Record { r := base; r.Value = "s"; return r }(), false, Record{}, true},
		{"replace field", map[string]string{"transforms": "f", "transforms.f.type": "org.apache.kafka.connect.transforms.ReplaceField$Value",
			"transforms.f.exclude": "secret", "transforms.f.renames": "total:amount"}, base, true,
			func() Record { r := base; r.Value = map[string]any{"id": int64(1), "amount": 9.5}; return r }(), false},
		{"replace field include", map[string]string{"transforms": "f", "transforms.f.type": "ReplaceField$Value", "transforms.f.include": "id"}, base, true,
			func() Record { r := base; r.Value = map[string]any{"id": int64(1)}; return r }(), false},
		{"filter by topic", map[string]string{"transforms": "f", "transforms.f.type": "org.apache.kafka.connect.transforms.Filter", "transforms.f.predicate": "p",
			"predicates": "p", "predicates.p.type": "org.apache.kafka.connect.transforms.predicates.TopicNameMatches", "predicates.p.pattern": `db\..*`},
			base, false, Record{}, false},
		{"filter negated keeps matching", map[string]string{"transforms": "f", "transforms.f.type": "Filter", "transforms.f.predicate": "p", "transforms.f.negate": "true",
			"predicates": "p", "predicates.p.type": "TopicNameMatches", "predicates.p.pattern": `db\..*`}, base, true, base, false},
		{"filter tombstones", map[string]string{"transforms": "f", "transforms.f.type": "Filter", "transforms.f.predicate": "t",
			"predicates": "t", "predicates.t.type": "RecordIsTombstone"}, tombstone, false, Record{}, false},
		{"filter tombstones keeps values", map[string]string{"transforms": "f", "transforms.f.type": "Filter", "transforms.f.predicate": "t",
			"predicates": "t", "predicates.t.type": "RecordIsTombstone"}, base, true, base, false},
		{"filter by header", map[string]string{"transforms": "f", "transforms.f.type": "Filter", "transforms.f.predicate": "h",
			"predicates": "h", "predicates.h.type": "HasHeaderKey", "predicates.h.name": "trace"}, withHeader, false, Record{}, false},
		{"predicate skips transform", map[string]string{"transforms": "r", "transforms.r.type": "RegexRouter", "transforms.r.regex": ".*", "transforms.r.replacement": "x",
			"transforms.r.predicate": "h", "predicates": "h", "predicates.h.type": "HasHeaderKey", "predicates.h.name": "trace"}, base, true, base, false},
		{"unwrap create", unwrap, envelope("c", nil, row), true, func() Record { r := base; r.Value = row; return r }(), false},
		{"unwrap snapshot read", unwrap, envelope("r", nil, row), true, func() Record { r := base; r.Value = row; return r }(), false},
		{"unwrap delete default drops", unwrap, envelope("d", row, nil), false, Record{}, false},
		{"unwrap tombstone default keeps", unwrap, tombstone, true, tombstone, false},
		{"unwrap drop mode drops tombstone", with(unwrap, "transforms.u.delete.tombstone.handling.mode", "drop"), tombstone, false, Record{}, false},
		{"unwrap drop mode drops delete", with(unwrap, "transforms.u.delete.tombstone.handling.mode", "drop"), envelope("d", row, nil), false, Record{}, false},
		{"unwrap rewrite delete", with(unwrap, "transforms.u.delete.tombstone.handling.mode", "rewrite"), envelope("d", row, nil), true,
			func() Record {
				r := base
				r.Value = map[string]any{"id": int64(1), "total": 9.5, "__deleted": "true"}
				return r
			}(), false},
		{"unwrap rewrite update", with(unwrap, "transforms.u.delete.tombstone.handling.mode", "rewrite"), envelope("u", row, row), true,
			func() Record {
				r := base
				r.Value = map[string]any{"id": int64(1), "total": 9.5, "__deleted": "false"}
				return r
			}(), false},
		{"unwrap rewrite drops tombstone", with(unwrap, "transforms.u.delete.tombstone.handling.mode", "rewrite"), tombstone, false, Record{}, false},
		{"unwrap rewrite-with-tombstone keeps tombstone", with(unwrap, "transforms.u.delete.tombstone.handling.mode", "rewrite-with-tombstone"), tombstone, true, tombstone, false},
		{"unwrap add fields", with(unwrap, "transforms.u.add.fields", "op,table,lsn,source.ts_ms"), envelope("u", nil, row), true,
			func() Record {
				r := base
				r.Value = map[string]any{"id": int64(1), "total": 9.5, "__op": "u", "__table": "orders", "__lsn": int64(42), "__source_ts_ms": int64(4)}
				return r
			}(), false},
		{"unwrap passes non-envelopes", unwrap, base, true, base, false},
		{"chain in order", map[string]string{"transforms": "u,r", "transforms.u.type": "io.debezium.transforms.ExtractNewRecordState",
			"transforms.r.type": "RegexRouter", "transforms.r.regex": `db\.public\.(.*)`, "transforms.r.replacement": "$1"}, envelope("c", nil, row), true,
			func() Record { r := base; r.Topic = "orders"; r.Value = row; return r }(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := newChain(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			before := deepCopy(tc.in)
			got, keep, err := c.apply(tc.in)
			if tc.wantFail {
				var te *transformError
				if !errors.As(err, &te) {
					t.Fatalf("err = %v, want a transformError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if keep != tc.keep {
				t.Fatalf("keep = %v, want %v", keep, tc.keep)
			}
			if keep && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tc.want)
			}
			if !reflect.DeepEqual(tc.in, before) {
				t.Fatalf("the input record was modified: %#v", tc.in)
			}
		})
	}
}

func deepCopy(r Record) Record {
	var cp func(v any) any
	cp = func(v any) any {
		switch t := v.(type) {
		case map[string]any:
			if t == nil {
				return t
			}
			m := map[string]any{}
			for k, e := range t {
				m[k] = cp(e)
			}
			return m
		}
		return v
	}
	r.Key, r.Value = cp(r.Key), cp(r.Value)
	return r
}

func TestTransformConfigErrors(t *testing.T) {
	tests := map[string]map[string]string{
		"unknown type":       {"transforms": "x", "transforms.x.type": "com.example.Nope"},
		"missing type":       {"transforms": "x"},
		"router no regex":    {"transforms": "x", "transforms.x.type": "RegexRouter", "transforms.x.replacement": "a"},
		"unknown predicate":  {"transforms": "x", "transforms.x.type": "Filter", "transforms.x.predicate": "p"},
		"bad predicate type": {"predicates": "p", "predicates.p.type": "Nope"},
		"bad negate":         {"transforms": "x", "transforms.x.type": "Filter", "transforms.x.negate": "maybe"},
		"bad unwrap mode":    {"transforms": "x", "transforms.x.type": "io.debezium.transforms.ExtractNewRecordState", "transforms.x.delete.tombstone.handling.mode": "nope"},
		"bad renames":        {"transforms": "x", "transforms.x.type": "ReplaceField$Value", "transforms.x.renames": "a"},
	}
	for name, cfg := range tests {
		t.Run(name, func(t *testing.T) {
			var ce ConfigError
			if _, err := newChain(cfg); !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a ConfigError", err)
			}
		})
	}
}

func TestConverters(t *testing.T) {
	value := map[string]any{"id": int64(1), "name": "a", "ok": true, "x": 1.5, "tags": []any{"t"}}
	tests := []struct {
		name string
		c    Converter
		v    any
		wire string
		back any
	}{
		{"json", JSONConverter{}, value, `{"id":1,"name":"a","ok":true,"tags":["t"],"x":1.5}`, value},
		{"json envelope", JSONConverter{Schemas: true}, map[string]any{"id": int64(1), "name": "a"},
			`{"payload":{"id":1,"name":"a"},"schema":{"fields":[{"field":"id","optional":true,"type":"int64"},{"field":"name","optional":true,"type":"string"}],"optional":true,"type":"struct"}}`,
			map[string]any{"id": int64(1), "name": "a"}},
		{"json string", JSONConverter{}, "hi", `"hi"`, "hi"},
		{"string", StringConverter{}, "hi", "hi", "hi"},
		{"string of a map", StringConverter{}, map[string]any{"a": int64(1)}, `{"a":1}`, `{"a":1}`},
		{"bytes", BytesConverter{}, []byte{0, 1}, "\x00\x01", []byte{0, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.c.FromConnect("t", tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.wire {
				t.Fatalf("wire %s, want %s", b, tc.wire)
			}
			back, err := tc.c.ToConnect("t", b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, tc.back) {
				t.Fatalf("back %#v, want %#v", back, tc.back)
			}
			if b, err := tc.c.FromConnect("t", nil); err != nil || b != nil {
				t.Fatalf("nil encodes to %q, %v; want nil", b, err)
			}
			if v, err := tc.c.ToConnect("t", nil); err != nil || v != nil {
				t.Fatalf("nil decodes to %#v, %v; want nil", v, err)
			}
		})
	}
	for name, in := range map[string]string{"not json": "{", "trailing": "1 2"} {
		if _, err := (JSONConverter{}).ToConnect("t", []byte(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := (JSONConverter{Schemas: true}).ToConnect("t", []byte(`{"a":1}`)); err == nil {
		t.Error("envelope expected but missing: no error")
	}
	if _, err := (BytesConverter{}).FromConnect("t", 1); err == nil {
		t.Error("bytes converter accepted an int")
	}
}
