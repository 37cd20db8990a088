package avro

import "testing"

func TestNormalize(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"primitive", `"int"`, `"int"`},
		{"wrapped primitive", `{"type":"int"}`, `"int"`},
		{"logical type kept", `{"type":"long","logicalType":"timestamp-millis"}`, `{"type":"long","logicalType":"timestamp-millis"}`},
		{"whitespace and key order", `{ "fields": [ {"type":"int", "name":"a"} ], "name": "R", "type": "record" }`,
			`{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}`},
		{"qualified name split", `{"type":"record","name":"ex.R","fields":[]}`, `{"type":"record","name":"R","namespace":"ex","fields":[]}`},
		{"nested same namespace", `{"type":"record","name":"R","namespace":"ex","fields":[{"name":"n","type":{"type":"record","name":"N","fields":[]}},{"name":"m","type":"N"}]}`,
			`{"type":"record","name":"R","namespace":"ex","fields":[{"name":"n","type":{"type":"record","name":"N","fields":[]}},{"name":"m","type":"N"}]}`},
		{"nested other namespace", `{"type":"record","name":"R","namespace":"ex","fields":[{"name":"n","type":{"type":"enum","name":"o.E","symbols":["A"]}},{"name":"m","type":"o.E"}]}`,
			`{"type":"record","name":"R","namespace":"ex","fields":[{"name":"n","type":{"type":"enum","name":"E","namespace":"o","symbols":["A"]}},{"name":"m","type":"o.E"}]}`},
		{"docs defaults aliases props", `{"type":"record","name":"R","doc":"d","x-owner":"me","aliases":["Old"],"fields":[{"name":"a","type":"int","default":1,"doc":"fd","aliases":["b"],"order":"descending","x":{"k":[1,2]}}]}`,
			`{"type":"record","name":"R","doc":"d","fields":[{"name":"a","type":"int","doc":"fd","default":1,"order":"descending","aliases":["b"],"x":{"k":[1,2]}}],"x-owner":"me","aliases":["Old"]}`},
		{"ascending order dropped", `{"type":"record","name":"R","fields":[{"name":"a","type":"int","order":"ascending"}]}`, `{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}`},
		{"enum default", `{"type":"enum","name":"E","default":"B","symbols":["A","B"]}`, `{"type":"enum","name":"E","symbols":["A","B"],"default":"B"}`},
		{"fixed", `{"size":16,"type":"fixed","name":"F"}`, `{"type":"fixed","name":"F","size":16}`},
		{"no html escaping", `{"type":"record","name":"R","doc":"a<b & c>d","fields":[]}`, `{"type":"record","name":"R","doc":"a<b & c>d","fields":[]}`},
		{"union and collections", `["null",{"type":"array","items":"string"},{"type":"map","values":{"type":"long"}}]`, `["null",{"type":"array","items":"string"},{"type":"map","values":"long"}]`},
		{"recursive", `{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}`, `{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Normalize(tt.in, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tt.want)
			}
			// Idempotent, and the normal form parses to the same schema.
			again, err := Normalize(got, nil)
			if err != nil || again != got {
				t.Fatalf("not idempotent: %s, %v", again, err)
			}
		})
	}
	a, _ := Normalize(`{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":1}]}`, nil)
	b, _ := Normalize(`{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":2}]}`, nil)
	if a == b {
		t.Fatal("schemas differing only in a default normalised to the same text")
	}
}
