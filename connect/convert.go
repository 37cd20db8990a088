package connect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Converter turns record keys and values into bytes for Kafka and back.
// Implementations are safe for concurrent use.
type Converter interface {
	// FromConnect encodes v (see Record for the data model); nil encodes to
	// nil (a null key or a tombstone).
	FromConnect(topic string, v any) ([]byte, error)
	// ToConnect decodes data; nil decodes to nil.
	ToConnect(topic string, data []byte) (any, error)
}

// JSONConverter is Kafka Connect's org.apache.kafka.connect.json.JsonConverter.
// With Schemas false (schemas.enable=false, the default here) a value is
// plain JSON. With Schemas true it is wrapped in {"schema":..,"payload":..}:
// ToConnect returns the payload, and FromConnect infers the schema from the
// value (structs for objects, with fields in name order, every field
// optional), since records here carry no schemas.
type JSONConverter struct{ Schemas bool }

// FromConnect implements Converter.
func (c JSONConverter) FromConnect(_ string, v any) ([]byte, error) {
	if v == nil {
		return nil, nil // null keys and tombstones stay null, also with envelopes
	}
	if c.Schemas {
		v = map[string]any{"schema": inferSchema(v, ""), "payload": v}
	}
	b, err := appendJSON(nil, v)
	if err != nil {
		return nil, fmt.Errorf("connect: json converter: %w", err)
	}
	return b, nil
}

// ToConnect implements Converter.
func (c JSONConverter) ToConnect(_ string, data []byte) (any, error) {
	if data == nil {
		return nil, nil
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("connect: json converter: %w", err)
	}
	if d.More() {
		return nil, errors.New("connect: json converter: trailing data after the JSON value")
	}
	if c.Schemas {
		m, ok := v.(map[string]any)
		if !ok || len(m) != 2 || !hasKeys(m, "schema", "payload") {
			return nil, errors.New(`connect: json converter: with schemas.enable=true, want {"schema": ..., "payload": ...}`)
		}
		v = m["payload"]
	}
	return fromJSON(v), nil
}

func hasKeys(m map[string]any, keys ...string) bool {
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			return false
		}
	}
	return true
}

// fromJSON turns json.Number into int64 or float64, recursively.
func fromJSON(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(t), 10, 64); err == nil {
			return i
		}
		f, _ := strconv.ParseFloat(string(t), 64)
		return f
	case map[string]any:
		for k, e := range t {
			t[k] = fromJSON(e)
		}
	case []any:
		for i, e := range t {
			t[i] = fromJSON(e)
		}
	}
	return v
}

// inferSchema returns a Kafka Connect JSON schema for v.
func inferSchema(v any, field string) map[string]any {
	s := map[string]any{"optional": true}
	if field != "" {
		s["field"] = field
	}
	switch t := v.(type) {
	case nil:
		s["type"] = "string"
	case bool:
		s["type"] = "boolean"
	case int, int32, int64:
		s["type"] = "int64"
	case float32, float64:
		s["type"] = "double"
	case string:
		s["type"] = "string"
	case []byte:
		s["type"] = "bytes" // encoding/json writes base64, as Kafka does
	case []any:
		s["type"] = "array"
		if len(t) > 0 {
			s["items"] = inferSchema(t[0], "")
		} else {
			s["items"] = map[string]any{"type": "string", "optional": true}
		}
	case map[string]any:
		s["type"] = "struct"
		fields := []any{}
		for _, k := range slices.Sorted(maps.Keys(t)) {
			fields = append(fields, inferSchema(t[k], k))
		}
		s["fields"] = fields
	default:
		s["type"] = "string"
	}
	return s
}

// StringConverter is Kafka Connect's StringConverter: values are encoded
// with their string form (maps and slices as JSON) and decoded as strings.
type StringConverter struct{}

// FromConnect implements Converter.
func (StringConverter) FromConnect(_ string, v any) ([]byte, error) {
	switch t := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []byte(t), nil
	case []byte:
		return t, nil
	case map[string]any, []any:
		return json.Marshal(t)
	default:
		return fmt.Appendf(nil, "%v", t), nil
	}
}

// ToConnect implements Converter.
func (StringConverter) ToConnect(_ string, data []byte) (any, error) {
	if data == nil {
		return nil, nil
	}
	return string(data), nil
}

// BytesConverter is Kafka Connect's ByteArrayConverter: values must be
// []byte (strings are accepted too) and decode as []byte.
type BytesConverter struct{}

// FromConnect implements Converter.
func (BytesConverter) FromConnect(_ string, v any) ([]byte, error) {
	switch t := v.(type) {
	case nil:
		return nil, nil
	case []byte:
		return t, nil
	case string:
		return []byte(t), nil
	default:
		return nil, fmt.Errorf("connect: bytes converter: want []byte, got %T", v)
	}
}

// ToConnect implements Converter.
func (BytesConverter) ToConnect(_ string, data []byte) (any, error) {
	if data == nil {
		return nil, nil
	}
	return bytes.Clone(data), nil
}

// converter builds the converter that cfg names under prefix ("key.converter"
// or "value.converter"); JSON without schemas when unset.
func converter(cfg map[string]string, prefix string) (Converter, error) {
	class := cfg[prefix]
	switch class {
	case "", "json", "org.apache.kafka.connect.json.JsonConverter":
		schemas := false
		if s, ok := cfg[prefix+".schemas.enable"]; ok {
			b, err := strconv.ParseBool(strings.TrimSpace(s))
			if err != nil {
				return nil, ConfigError{prefix + ".schemas.enable", "want true or false"}
			}
			schemas = b
		}
		return JSONConverter{Schemas: schemas}, nil
	case "string", "org.apache.kafka.connect.storage.StringConverter":
		return StringConverter{}, nil
	case "bytes", "org.apache.kafka.connect.converters.ByteArrayConverter":
		return BytesConverter{}, nil
	case "avro", "io.confluent.connect.avro.AvroConverter":
		return newAvroConverter(cfg, prefix)
	}
	return nil, ConfigError{prefix, fmt.Sprintf("unknown converter %q (want JsonConverter, StringConverter, ByteArrayConverter or AvroConverter)", class)}
}
