package pgcdc

import (
	"bytes"
	"encoding/hex"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// unavailable stands for an unchanged TOASTed value that pgoutput does not
// send: Debezium's default unavailable.value.placeholder.
const unavailable = "__debezium_unavailable_value"

// column describes one column of a captured table.
type column struct {
	name string
	oid  uint32
}

// convert turns the text form of a value of type oid (as PostgreSQL prints
// it with DateStyle ISO, TimeZone UTC and bytea_output hex, which both
// connections set) into the connect data model; see the package doc for
// the mapping. A value that does not parse as expected is returned as its
// text, so an unusual value (e.g. a BC date) never stops the stream.
func convert(oid uint32, text []byte, decimalString bool) any {
	// Parsers get string(text) inline: the conversion then needs no
	// allocation, as strconv and time copy what they keep.
	switch oid {
	case pgtype.BoolOID:
		return len(text) == 1 && text[0] == 't'
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.OIDOID:
		if n, err := strconv.ParseInt(string(text), 10, 64); err == nil {
			return n
		}
	case pgtype.Float4OID, pgtype.Float8OID:
		return float(text)
	case pgtype.NumericOID:
		if !decimalString {
			return float(text)
		}
	case pgtype.TimestampOID:
		switch string(text) {
		case "infinity":
			return int64(math.MaxInt64)
		case "-infinity":
			return int64(math.MinInt64)
		}
		if t, err := time.Parse("2006-01-02 15:04:05.999999999", string(text)); err == nil {
			return t.UnixMicro()
		}
	case pgtype.TimestamptzOID:
		if t, ok := parseTimestamptz(text); ok {
			return string(t.UTC().AppendFormat(make([]byte, 0, 32), "2006-01-02T15:04:05.999999Z"))
		}
	case pgtype.DateOID:
		switch string(text) {
		case "infinity":
			return int64(math.MaxInt32)
		case "-infinity":
			return int64(math.MinInt32)
		}
		if t, err := time.Parse("2006-01-02", string(text)); err == nil {
			return int64(math.Floor(float64(t.Unix()) / 86400))
		}
	case pgtype.TimeOID:
		if t, err := time.Parse("15:04:05.999999", string(text)); err == nil {
			return int64(t.Hour())*3_600_000_000 + int64(t.Minute())*60_000_000 + int64(t.Second())*1_000_000 + int64(t.Nanosecond()/1000)
		} else if bytes.HasPrefix(text, []byte("24:00:00")) {
			return int64(86_400_000_000)
		}
	case pgtype.ByteaOID:
		if b, ok := bytes.CutPrefix(text, []byte(`\x`)); ok {
			out := make([]byte, hex.DecodedLen(len(b)))
			if _, err := hex.Decode(out, b); err == nil {
				return out
			}
		}
	}
	// text, varchar, bpchar, name, uuid, json, jsonb, xml, interval, timetz,
	// money, inet, enums, arrays, numeric (string mode), infinite
	// timestamptz, ...: the text form.
	return string(text)
}

// parseTimestamptz parses timestamptz output in UTC ("+00") or with any
// offset.
func parseTimestamptz(text []byte) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07", "2006-01-02 15:04:05.999999999-07:00"} {
		if t, err := time.Parse(layout, string(text)); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// float parses a float4, float8 or numeric (decimal.handling.mode=double);
// NaN and the infinities, which JSON cannot hold, stay strings.
func float(text []byte) any {
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return string(text)
	}
	return f
}
