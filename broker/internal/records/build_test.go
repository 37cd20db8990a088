package records_test

import (
	"bytes"
	"testing"

	"github.com/sluicehq/sluice/broker/internal/records"
)

// TestRebuild re-encodes every batch of sampleBatch through AppendHeader,
// AppendRecord and Compressor and checks the result validates and decodes
// to the same records.
func TestRebuild(t *testing.T) {
	var c records.Compressor
	for _, cd := range codecs {
		t.Run(cd.name, func(t *testing.T) {
			orig := sampleBatch(cd.codec).Encode()
			h, err := records.Validate(orig, maxDecomp)
			if err != nil {
				t.Fatal(err)
			}
			var raw []byte
			var want []records.Record
			records.Records(orig, nil, maxDecomp, func(r records.Record) bool {
				raw = records.AppendRecord(raw, &r, r.TimestampDelta)
				r.Key, r.Value, r.RawHeaders = bytes.Clone(r.Key), bytes.Clone(r.Value), bytes.Clone(r.RawHeaders)
				want = append(want, r)
				return true
			})
			out := records.AppendHeader(nil, &h)
			out, err = c.Compress(out, h.Compression(), raw)
			if err != nil {
				t.Fatal(err)
			}
			h.Length = int32(len(out) - 12)
			out = records.AppendHeader(out[:0], &h)[:len(out)]
			records.UpdateCRC(out)
			if _, err := records.Validate(out, maxDecomp); err != nil {
				t.Fatal(err)
			}
			i := 0
			records.Records(out, nil, maxDecomp, func(r records.Record) bool {
				w := want[i]
				if r.OffsetDelta != w.OffsetDelta || r.TimestampDelta != w.TimestampDelta || !bytes.Equal(r.Key, w.Key) ||
					r.KeyNull != w.KeyNull || !bytes.Equal(r.Value, w.Value) || !bytes.Equal(r.RawHeaders, w.RawHeaders) {
					t.Fatalf("record %d: %+v, want %+v", i, r, w)
				}
				i++
				return true
			})
			if i != len(want) {
				t.Fatalf("%d records, want %d", i, len(want))
			}
		})
	}
}
