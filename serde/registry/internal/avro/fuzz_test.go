package avro

import (
	"encoding/json"
	"os"
	"testing"
)

// FuzzNormalize feeds untrusted schema text (what POST /subjects/{s}/versions
// receives) to the parser: it must not panic, and a schema it accepts must
// normalise idempotently and check compatible with itself.
func FuzzNormalize(f *testing.F) {
	raw, err := os.ReadFile("testdata/families.json")
	if err != nil {
		f.Fatal(err)
	}
	var fams map[string][]json.RawMessage
	if err := json.Unmarshal(raw, &fams); err != nil {
		f.Fatal(err)
	}
	for _, schemas := range fams {
		for _, s := range schemas {
			f.Add(string(s))
		}
	}
	f.Add(`[[[[`)
	f.Add(`{"type":"record","name":"R","fields":[{"name":"a","type":"R"}]}`)
	f.Fuzz(func(t *testing.T, text string) {
		n, err := Normalize(text, nil)
		if err != nil {
			return
		}
		again, err := Normalize(n, nil)
		if err != nil || again != n {
			t.Fatalf("normal form %s renormalised to %s, %v", n, again, err)
		}
		s, _ := Parse(n, nil)
		if errs := Check(s, s); len(errs) > 0 {
			t.Fatalf("schema incompatible with itself: %v", errs)
		}
	})
}
