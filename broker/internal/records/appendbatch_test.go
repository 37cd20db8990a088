package records

import (
	"bytes"
	"testing"
)

func TestAppendBatchValidatesOwn(t *testing.T) {
	recs := []KV{{Key: []byte("k1"), Value: []byte("v1")}, {Key: []byte("k2"), Value: nil}, {Key: nil, Value: []byte{}}}
	b := AppendBatch([]byte("prefix"), BatchSpec{Timestamp: 1234, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs)
	if !bytes.HasPrefix(b, []byte("prefix")) {
		t.Fatal("prefix lost")
	}
	b = b[len("prefix"):]
	h, err := Validate(b, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if h.NumRecords != 3 || h.MaxTimestamp != 1234 || h.ProducerID != -1 {
		t.Fatalf("header %+v", h)
	}
	var got []KV
	err = Records(b, nil, 1<<20, func(r Record) bool {
		kv := KV{Key: r.Key, Value: r.Value}
		if r.KeyNull {
			kv.Key = nil
		}
		if r.ValueNull {
			kv.Value = nil
		}
		got = append(got, kv)
		return true
	})
	if err != nil || len(got) != 3 {
		t.Fatalf("records %v: %v", got, err)
	}
	for i := range recs {
		if !bytes.Equal(got[i].Key, recs[i].Key) || (got[i].Key == nil) != (recs[i].Key == nil) ||
			!bytes.Equal(got[i].Value, recs[i].Value) || (got[i].Value == nil) != (recs[i].Value == nil) {
			t.Fatalf("record %d: %+v, want %+v", i, got[i], recs[i])
		}
	}
}
