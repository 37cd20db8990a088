package connect

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/sluicehq/sluice/broker/brokertest"
	"github.com/sluicehq/sluice/serde/registry"
	"github.com/sluicehq/sluice/serde/registry/registrytest"
)

// startRegistry returns the URL of an in-process registry and a client.
func startRegistry(t *testing.T) (string, *sr.Client) {
	t.Helper()
	reg := registrytest.Start(t, brokertest.Start(t).Addr())
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	return reg.URL(), cl
}

func avroConverter(t *testing.T, url, prefix string) Converter {
	t.Helper()
	c, err := converter(map[string]string{prefix: "io.confluent.connect.avro.AvroConverter", prefix + ".schema.registry.url": url}, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func versions(t *testing.T, cl *sr.Client, subject string) []sr.SubjectSchema {
	t.Helper()
	ss, err := cl.Schemas(t.Context(), subject)
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

func TestAvroConverterRoundTrip(t *testing.T) {
	url, cl := startRegistry(t)
	c := avroConverter(t, url, "value.converter")
	v := map[string]any{
		"id": int64(7), "name": "Ann", "score": 1.5, "ok": true, "raw": []byte{0, 1, 2}, "gone": nil,
		"address": map[string]any{"city": "Oslo", "zip": int64(150)},
		"tags":    []any{"a", "b"},
		"lines":   []any{map[string]any{"sku": "x", "qty": int64(1)}, map[string]any{"sku": "y", "qty": int64(2)}},
		"mixed":   []any{int64(1), 2.5},
	}
	b, err := c.FromConnect("orders", v)
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := registry.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	ss := versions(t, cl, "orders-value")
	if len(ss) != 1 || ss[0].ID != id {
		t.Fatalf("subject orders-value: %+v, want one version with id %d", ss, id)
	}
	var schema map[string]any
	if err := json.Unmarshal([]byte(ss[0].Schema.Schema), &schema); err != nil {
		t.Fatal(err)
	}
	if schema["name"] != "ConnectDefault" || schema["namespace"] != "io.confluent.connect.avro" {
		t.Fatalf("schema %s", ss[0].Schema.Schema)
	}
	for _, want := range []string{`{"name":"id","type":["null","long"],"default":null}`, `{"name":"gone","type":"null","default":null}`,
		`"name":"ConnectDefault_address"`, `"name":"ConnectDefault_lines_item"`, `{"name":"mixed","type":["null",{"type":"array","items":["null","double"]}],"default":null}`} {
		if !strings.Contains(ss[0].Schema.Schema, want) {
			t.Errorf("schema %s\nlacks %s", ss[0].Schema.Schema, want)
		}
	}

	// A converter with empty caches fetches the schema by id.
	got, err := avroConverter(t, url, "value.converter").ToConnect("orders", b)
	if err != nil {
		t.Fatal(err)
	}
	want := mapsClone(v)
	want["mixed"] = []any{1.0, 2.5}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded\n%#v\nwant\n%#v", got, want)
	}

	// The same shape is registered once.
	for i := range 5 {
		if _, err := c.FromConnect("orders", map[string]any{"id": int64(i), "name": "x", "score": 0.0, "ok": false, "raw": []byte{}, "gone": nil,
			"address": map[string]any{"city": "c", "zip": int64(1)}, "tags": []any{}, "lines": []any{}, "mixed": []any{}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(versions(t, cl, "orders-value")); n != 1 {
		t.Fatalf("%d versions after records of one shape", n)
	}

	// Keys: a primitive has its plain schema, under <topic>-key.
	kc := avroConverter(t, url, "key.converter")
	kb, err := kc.FromConnect("orders", "k-1")
	if err != nil {
		t.Fatal(err)
	}
	if ss := versions(t, cl, "orders-key"); len(ss) != 1 || ss[0].Schema.Schema != `"string"` {
		t.Fatalf("orders-key: %+v", ss)
	}
	if k, err := kc.ToConnect("orders", kb); err != nil || k != "k-1" {
		t.Fatalf("key %v, %v", k, err)
	}
	if b, err := kc.FromConnect("orders", nil); b != nil || err != nil {
		t.Fatalf("null key: %v, %v", b, err)
	}
}

func mapsClone(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestAvroConverterEvolution: a field that appears is a new, BACKWARD
// compatible version; a null field keeps its earlier type; a field whose
// type changes is refused by the registry.
func TestAvroConverterEvolution(t *testing.T) {
	url, cl := startRegistry(t)
	c := avroConverter(t, url, "value.converter")
	b1, err := c.FromConnect("users", map[string]any{"id": int64(1)})
	if err != nil {
		t.Fatal(err)
	}
	b2, err := c.FromConnect("users", map[string]any{"id": int64(2), "email": "b@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.FromConnect("users", map[string]any{"id": int64(3), "email": nil}); err != nil {
		t.Fatal(err)
	}
	if n := len(versions(t, cl, "users-value")); n != 2 {
		t.Fatalf("%d versions, want 2 (a null email keeps type string)", n)
	}
	// A restarted converter learns the types from the latest schema: a null
	// email is still a string, and the nested record keeps its name.
	if _, err := avroConverter(t, url, "value.converter").FromConnect("users", map[string]any{"id": int64(4), "email": nil}); err != nil {
		t.Fatal(err)
	}
	if n := len(versions(t, cl, "users-value")); n != 2 {
		t.Fatalf("%d versions after a restart, want 2", n)
	}
	if _, err := c.FromConnect("users", map[string]any{"id": int64(5), "addr": map[string]any{"city": "Oslo"}, "tags": []any{"x"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := avroConverter(t, url, "value.converter").FromConnect("users", map[string]any{"id": int64(6), "addr": nil, "tags": nil}); err != nil {
		t.Fatal(err)
	}
	if n := len(versions(t, cl, "users-value")); n != 3 {
		t.Fatalf("%d versions, want 3", n)
	}
	fresh := avroConverter(t, url, "value.converter")
	for _, tc := range []struct {
		b    []byte
		want map[string]any
	}{{b1, map[string]any{"id": int64(1)}}, {b2, map[string]any{"id": int64(2), "email": "b@example.com"}}} {
		got, err := fresh.ToConnect("users", tc.b)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Fatalf("decoded %v, %v; want %v", got, err, tc.want)
		}
	}
	_, err = c.FromConnect("users", map[string]any{"id": "not a number"})
	if err == nil || !strings.Contains(err.Error(), "register schema in users-value") {
		t.Fatalf("incompatible change: %v", err)
	}
	if _, err := c.FromConnect("users", map[string]any{"bad-name": int64(1)}); err == nil || !strings.Contains(err.Error(), "not a valid Avro field name") {
		t.Fatalf("invalid field name: %v", err)
	}
	if _, err := c.FromConnect("users", map[string]any{"a": []any{int64(1), "x"}}); err == nil || !strings.Contains(err.Error(), "long and string mixed") {
		t.Fatalf("mixed array: %v", err)
	}
}

// order is written by the registry's own Avro serde.
type order struct {
	ID     int32             `avro:"id"`
	Price  float32           `avro:"price"`
	Status string            `avro:"status"`
	Note   *string           `avro:"note"`
	Tags   []string          `avro:"tags"`
	Counts map[string]int64  `avro:"counts"`
	Hash   [4]byte           `avro:"hash"`
	At     time.Time         `avro:"at"`
	Extra  map[string]string `avro:"extra"`
}

const orderSchema = `{"type":"record","name":"Order","namespace":"shop","fields":[
	{"name":"id","type":"int"},
	{"name":"price","type":"float"},
	{"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID"]}},
	{"name":"note","type":["null","string"],"default":null},
	{"name":"tags","type":{"type":"array","items":"string"}},
	{"name":"counts","type":{"type":"map","values":"long"}},
	{"name":"hash","type":{"type":"fixed","name":"Hash","size":4}},
	{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
	{"name":"extra","type":{"type":"map","values":"string"}}]}`

func TestAvroConverterReadsRegistrySerde(t *testing.T) {
	url, cl := startRegistry(t)
	s, err := registry.NewAvro[order](cl, orderSchema, registry.Subject("shop-value"))
	if err != nil {
		t.Fatal(err)
	}
	note := "gift"
	at := time.UnixMilli(1_763_780_000_123).UTC()
	b, err := s.AppendEncode(nil, order{ID: 5, Price: 2.5, Status: "PAID", Note: &note, Tags: []string{"a"},
		Counts: map[string]int64{"x": 3}, Hash: [4]byte{1, 2, 3, 4}, At: at, Extra: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := avroConverter(t, url, "value.converter").ToConnect("shop", b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"id": int64(5), "price": 2.5, "status": "PAID", "note": "gift", "tags": []any{"a"},
		"counts": map[string]any{"x": int64(3)}, "hash": []byte{1, 2, 3, 4}, "at": at.UnixMilli(), "extra": map[string]any{}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded\n%#v\nwant\n%#v", got, want)
	}
}

func TestAvroConverterGarbage(t *testing.T) {
	url, _ := startRegistry(t)
	c := avroConverter(t, url, "value.converter")
	good, err := c.FromConnect("g", map[string]any{"s": "hello"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"short", []byte{0, 1}, "shorter than the 5-byte header"},
		{"magic", []byte("{\"json\":true}"), "magic byte 123, want 0"},
		{"unknown id", registry.AppendHeader(nil, 999999), "schema id 999999"},
		{"truncated body", good[:len(good)-2], "schema id"},
		{"trailing bytes", append(append([]byte{}, good...), 1, 2, 3), "schema id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := c.ToConnect("g", tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "connect: avro converter: ") {
				t.Fatalf("ToConnect(%q) = %v, %v; want an error about %q", tc.in, v, err, tc.want)
			}
			if tc.name != "unknown id" && !errors.Is(err, registry.ErrMalformed) && !strings.Contains(err.Error(), "malformed") {
				t.Fatalf("error %v does not mark malformed input", err)
			}
		})
	}
	if _, err := converter(map[string]string{"value.converter": "avro"}, "value.converter"); err == nil ||
		!strings.Contains(err.Error(), "value.converter.schema.registry.url") {
		t.Fatalf("missing URL: %v", err)
	}
}

// BenchmarkAvroConverter measures FromConnect and ToConnect of a record of
// eight fields after the schema is registered and cached.
//
//	go test -run='^$' -bench=AvroConverter ./connect/
func BenchmarkAvroConverter(b *testing.B) {
	reg := registrytest.Start(b, brokertest.Start(b).Addr())
	c, err := converter(map[string]string{"value.converter": "avro", "value.converter.schema.registry.url": reg.URL()}, "value.converter")
	if err != nil {
		b.Fatal(err)
	}
	v := map[string]any{"id": int64(7), "name": "Ann", "email": "ann@example.com", "score": 1.5, "ok": true, "gone": nil,
		"address": map[string]any{"city": "Oslo", "zip": int64(150)}, "tags": []any{"a", "b"}}
	enc, err := c.FromConnect("bench", v)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("op=from", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := c.FromConnect("bench", v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=to", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := c.ToConnect("bench", enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}
