package pgcdc

import (
	"encoding/hex"
	"math"
	"strconv"
	"strings"
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
	s := string(text)
	switch oid {
	case pgtype.BoolOID:
		return s == "t"
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.OIDOID:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	case pgtype.Float4OID, pgtype.Float8OID:
		return float(s)
	case pgtype.NumericOID:
		if decimalString {
			return s
		}
		return float(s)
	case pgtype.TimestampOID:
		if s == "infinity" {
			return int64(math.MaxInt64)
		} else if s == "-infinity" {
			return int64(math.MinInt64)
		}
		if t, err := time.Parse("2006-01-02 15:04:05.999999999", s); err == nil {
			return t.UnixMicro()
		}
	case pgtype.TimestamptzOID:
		if s == "infinity" || s == "-infinity" {
			return s
		}
		for _, layout := range []string{"2006-01-02 15:04:05.999999999-07", "2006-01-02 15:04:05.999999999-07:00"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC().Format("2006-01-02T15:04:05.999999Z")
			}
		}
	case pgtype.DateOID:
		if s == "infinity" {
			return int64(math.MaxInt32)
		} else if s == "-infinity" {
			return int64(math.MinInt32)
		}
		if t, err := time.Parse("2006-01-02", s); err == nil {
			return int64(math.Floor(float64(t.Unix()) / 86400))
		}
	case pgtype.TimeOID:
		if t, err := time.Parse("15:04:05.999999", s); err == nil {
			return int64(t.Hour())*3_600_000_000 + int64(t.Minute())*60_000_000 + int64(t.Second())*1_000_000 + int64(t.Nanosecond()/1000)
		} else if strings.HasPrefix(s, "24:00:00") {
			return int64(86_400_000_000)
		}
	case pgtype.ByteaOID:
		if b, ok := strings.CutPrefix(s, `\x`); ok {
			if out, err := hex.DecodeString(b); err == nil {
				return out
			}
		}
	}
	// text, varchar, bpchar, name, uuid, json, jsonb, xml, interval, timetz,
	// money, inet, enums, arrays, ...: the text form.
	return s
}

// float parses a float4, float8 or numeric (decimal.handling.mode=double);
// NaN and the infinities, which JSON cannot hold, stay strings.
func float(s string) any {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return s
	}
	return f
}
