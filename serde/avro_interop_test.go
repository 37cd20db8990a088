package serde_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/linkedin/goavro/v2"

	"github.com/sluicehq/sluice/serde"
)

// TestAvroGoavroInterop checks serde's Avro bytes against goavro, an
// independent implementation (and the pinned replacement for hamba/avro):
// each decodes what the other encodes.
func TestAvroGoavroInterop(t *testing.T) {
	codec, err := goavro.NewCodec(nodeSchema)
	if err != nil {
		t.Fatal(err)
	}
	s := must(serde.AvroGeneric(nodeSchema))
	for _, depth := range []int{0, 2} {
		ours := must(s.AppendEncode(nil, nodeValue(depth)))
		native, rest, err := codec.NativeFromBinary(ours)
		if err != nil || len(rest) != 0 {
			t.Fatalf("depth %d: goavro cannot read our bytes: %v (%d left)", depth, err, len(rest))
		}
		theirs, err := codec.BinaryFromNative(nil, native)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Decode(theirs)
		if err != nil {
			t.Fatalf("depth %d: cannot read goavro's bytes: %v", depth, err)
		}
		// goavro may order map entries differently, so compare values, and
		// bytes only where no map is involved.
		if want := must(s.Decode(ours)); !reflect.DeepEqual(got, want) {
			t.Errorf("depth %d: goavro's bytes decode to %#v, ours to %#v", depth, got, want)
		}
	}

	user, err := goavro.NewCodec(userV1)
	if err != nil {
		t.Fatal(err)
	}
	typed := must(serde.Avro[userV1T](userV1))
	email := "a@b.c"
	ours := must(typed.AppendEncode(nil, userV1T{Name: "ann", Age: -3, Email: &email, Tags: []string{"x", "y"}}))
	theirs, err := user.BinaryFromNative(nil, map[string]any{
		"name": "ann", "age": -3, "email": goavro.Union("string", "a@b.c"), "tags": []any{"x", "y"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours, theirs) {
		t.Errorf("Avro[userV1T] wrote % x, goavro % x", ours, theirs)
	}
}
