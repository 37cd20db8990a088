package avro

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func mustParse(t testing.TB, s string) *Schema {
	t.Helper()
	sc, err := Parse(s, nil)
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return sc
}

func TestCheck(t *testing.T) {
	rec := func(fields string) string {
		return `{"type":"record","name":"R","namespace":"n","fields":[` + fields + `]}`
	}
	tests := []struct {
		name           string
		reader, writer string
		want           []IncompatibilityType
		wantPath       string
	}{
		{name: "same primitive", reader: `"int"`, writer: `"int"`},
		{name: "int to long", reader: `"long"`, writer: `"int"`},
		{name: "int to float", reader: `"float"`, writer: `"int"`},
		{name: "int to double", reader: `"double"`, writer: `"int"`},
		{name: "long to float", reader: `"float"`, writer: `"long"`},
		{name: "long to double", reader: `"double"`, writer: `"long"`},
		{name: "float to double", reader: `"double"`, writer: `"float"`},
		{name: "string to bytes", reader: `"bytes"`, writer: `"string"`},
		{name: "bytes to string", reader: `"string"`, writer: `"bytes"`},
		{name: "long to int", reader: `"int"`, writer: `"long"`, want: []IncompatibilityType{TypeMismatch}, wantPath: "/"},
		{name: "double to float", reader: `"float"`, writer: `"double"`, want: []IncompatibilityType{TypeMismatch}},
		{name: "string to int", reader: `"int"`, writer: `"string"`, want: []IncompatibilityType{TypeMismatch}},
		{name: "field added with default", reader: rec(`{"name":"a","type":"int"},{"name":"b","type":"int","default":0}`), writer: rec(`{"name":"a","type":"int"}`)},
		{name: "field added without default", reader: rec(`{"name":"a","type":"int"},{"name":"b","type":"int"}`), writer: rec(`{"name":"a","type":"int"}`),
			want: []IncompatibilityType{ReaderFieldMissingDefaultValue}, wantPath: "/fields/1"},
		{name: "field removed", reader: rec(`{"name":"a","type":"int"}`), writer: rec(`{"name":"a","type":"int"},{"name":"b","type":"int"}`)},
		{name: "field renamed with alias", reader: rec(`{"name":"c","aliases":["a"],"type":"long"}`), writer: rec(`{"name":"a","type":"int"}`)},
		{name: "field type changed", reader: rec(`{"name":"a","type":"string"}`), writer: rec(`{"name":"a","type":"int"}`),
			want: []IncompatibilityType{TypeMismatch}, wantPath: "/fields/0/type"},
		{name: "record renamed", reader: `{"type":"record","name":"S","fields":[]}`, writer: `{"type":"record","name":"R","fields":[]}`,
			want: []IncompatibilityType{NameMismatch}, wantPath: "/name"},
		{name: "record renamed with alias", reader: `{"type":"record","name":"S","namespace":"n","aliases":["R"],"fields":[]}`, writer: `{"type":"record","name":"R","namespace":"n","fields":[]}`},
		{name: "namespace changed", reader: `{"type":"record","name":"R","namespace":"a","fields":[]}`, writer: `{"type":"record","name":"R","namespace":"b","fields":[]}`},
		{name: "fixed size", reader: `{"type":"fixed","name":"F","size":4}`, writer: `{"type":"fixed","name":"F","size":8}`,
			want: []IncompatibilityType{FixedSizeMismatch}, wantPath: "/size"},
		{name: "enum symbol added", reader: `{"type":"enum","name":"E","symbols":["A","B"]}`, writer: `{"type":"enum","name":"E","symbols":["A"]}`},
		{name: "enum symbol removed", reader: `{"type":"enum","name":"E","symbols":["A"]}`, writer: `{"type":"enum","name":"E","symbols":["A","B"]}`,
			want: []IncompatibilityType{MissingEnumSymbols}, wantPath: "/symbols"},
		{name: "enum symbol removed reader default", reader: `{"type":"enum","name":"E","symbols":["A"],"default":"A"}`, writer: `{"type":"enum","name":"E","symbols":["A","B"]}`},
		{name: "union gains branch", reader: `["null","int","string"]`, writer: `["null","int"]`},
		{name: "union loses branch", reader: `["null","int"]`, writer: `["null","int","string"]`,
			want: []IncompatibilityType{MissingUnionBranch}, wantPath: "/2"},
		{name: "non-union writer into union", reader: `["null","long"]`, writer: `"int"`},
		{name: "non-union writer not in union", reader: `["null","long"]`, writer: `"string"`, want: []IncompatibilityType{MissingUnionBranch}},
		{name: "union writer into non-union", reader: `"long"`, writer: `["int","long"]`},
		{name: "union writer with unreadable branch", reader: `"long"`, writer: `["null","long"]`, want: []IncompatibilityType{TypeMismatch}},
		{name: "array items promoted", reader: `{"type":"array","items":"long"}`, writer: `{"type":"array","items":"int"}`},
		{name: "map values mismatch", reader: `{"type":"map","values":"int"}`, writer: `{"type":"map","values":"long"}`,
			want: []IncompatibilityType{TypeMismatch}, wantPath: "/values"},
		{name: "recursive compatible",
			reader: `{"type":"record","name":"L","fields":[{"name":"v","type":"long"},{"name":"next","type":["null","L"]}]}`,
			writer: `{"type":"record","name":"L","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","L"]}]}`},
		{name: "recursive incompatible",
			reader: `{"type":"record","name":"L","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","L"]}]}`,
			writer: `{"type":"record","name":"L","fields":[{"name":"v","type":"long"},{"name":"next","type":["null","L"]}]}`,
			want:   []IncompatibilityType{TypeMismatch}, wantPath: "/fields/0/type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Check(mustParse(t, tt.reader), mustParse(t, tt.writer))
			var types []IncompatibilityType
			for _, g := range got {
				types = append(types, g.Type)
			}
			if fmt.Sprint(types) != fmt.Sprint(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			if tt.wantPath != "" && got[0].Path != tt.wantPath {
				t.Fatalf("path %q, want %q", got[0].Path, tt.wantPath)
			}
		})
	}
}

func TestMessage(t *testing.T) {
	in := Incompatibility{Type: ReaderFieldMissingDefaultValue, Path: "/fields/1", Info: "x"}
	want := "{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'The field 'x' at path '/fields/1' in the new schema has no default value and is missing in the old schema', additionalInfo:'x'}"
	if got := in.Message(true); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestParseInvalid(t *testing.T) {
	for _, s := range []string{
		``, `{`, `"nope"`, `{"type":"record","fields":[]}`, `{"type":"record","name":"R"}`,
		`{"type":"enum","name":"E","symbols":["A","A"]}`, `{"type":"fixed","name":"F"}`,
		`["int","int"]`, `[["int"]]`, `{"type":"array"}`,
		`{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":"x"}]}`,
		`{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"a","type":"int"}]}`,
		`"int" "int"`,
	} {
		if _, err := Parse(s, nil); err == nil {
			t.Errorf("Parse(%s) succeeded", s)
		}
	}
}

// disagreements lists the pairs (family, reader index, writer index) where
// this checker and python3-avro 1.11 answer differently, with the reason.
// In each case this checker follows Avro's Java SchemaCompatibility, which
// is what Confluent's registry runs.
var disagreements = map[string]string{
	// python-avro compares the writer's full name ("ex.User") with the
	// reader's aliases exactly as written ("User"); Java qualifies an
	// unqualified alias with the reader's namespace first, so the alias
	// matches and the rename is compatible.
	"user/9/0": "alias namespace qualification",
	"user/9/2": "alias namespace qualification (string read from bytes is a promotion)",
	"user/9/3": "alias namespace qualification (dropped field is fine)",
	"user/9/4": "alias namespace qualification (dropped field is fine)",
}

// TestDifferentialPythonAvro checks every ordered pair within each family of
// testdata/families.json with this checker and with Debian's python3-avro
// (avro.compatibility), and fails on disagreements not listed above.
func TestDifferentialPythonAvro(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import avro.compatibility").Run(); err != nil {
		if os.Getenv("SLUICE_REQUIRE_COMPAT") == "1" {
			t.Fatalf("python3-avro is required (SLUICE_REQUIRE_COMPAT=1): %v", err)
		}
		t.Skipf("python3-avro not installed (apt-get install python3-avro): %v", err)
	}
	raw, err := os.ReadFile("testdata/families.json")
	if err != nil {
		t.Fatal(err)
	}
	var fams map[string][]json.RawMessage
	if err := json.Unmarshal(raw, &fams); err != nil {
		t.Fatal(err)
	}
	type pairKey struct {
		fam  string
		r, w int
	}
	var keys []pairKey
	var texts [][2]string
	for fam, schemas := range fams {
		for i := range schemas {
			for j := range schemas {
				keys = append(keys, pairKey{fam, i, j})
				texts = append(texts, [2]string{string(schemas[i]), string(schemas[j])})
			}
		}
	}
	if len(keys) < 100 {
		t.Fatalf("corpus has %d pairs, want at least 100", len(keys))
	}
	in, _ := json.Marshal(texts)
	cmd := exec.Command("/usr/bin/python3", "testdata/pycompat.py")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pycompat.py: %v\n%s", err, stderr.String())
	}
	var py []string
	if err := json.Unmarshal(out, &py); err != nil || len(py) != len(keys) {
		t.Fatalf("pycompat.py output: %v (%d answers for %d pairs)", err, len(py), len(keys))
	}
	agree, disagree := 0, 0
	for i, k := range keys {
		r := mustParse(t, texts[i][0])
		w := mustParse(t, texts[i][1])
		got := "compatible"
		if errs := Check(r, w); len(errs) > 0 {
			got = "incompatible"
		}
		id := fmt.Sprintf("%s/%d/%d", k.fam, k.r, k.w)
		if strings.HasPrefix(py[i], "error") {
			t.Errorf("%s: python-avro: %s", id, py[i])
			continue
		}
		if got == py[i] {
			agree++
			if _, ok := disagreements[id]; ok {
				t.Errorf("%s: listed as a disagreement but both say %s", id, got)
			}
			continue
		}
		disagree++
		if _, ok := disagreements[id]; !ok {
			t.Errorf("%s: we say %s, python-avro says %s\nreader %s\nwriter %s", id, got, py[i], texts[i][0], texts[i][1])
		}
	}
	t.Logf("%d pairs: %d agree, %d known disagreements", len(keys), agree, disagree)
}
