package registry

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

const (
	userV1 = `{"type":"record","name":"User","namespace":"ex","fields":[{"name":"id","type":"int"}]}`
	// userV2 adds a field with a default: backward and forward compatible.
	userV2 = `{"type":"record","name":"User","namespace":"ex","fields":[{"name":"id","type":"int"},{"name":"name","type":"string","default":""}]}`
	// userV3 adds a field without a default: forward compatible only.
	userV3 = `{"type":"record","name":"User","namespace":"ex","fields":[{"name":"id","type":"int"},{"name":"name","type":"string","default":""},{"name":"age","type":"int"}]}`
	// userBad changes id's type incompatibly.
	userBad = `{"type":"record","name":"User","namespace":"ex","fields":[{"name":"id","type":"string"}]}`
)

func reg(schema string) map[string]any { return map[string]any{"schema": schema} }

// expect checks status and, for errors, the error code.
func expect(t *testing.T, r httpResult, status, code int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if r.ctype != contentType {
		t.Fatalf("content type %q", r.ctype)
	}
	if code != 0 {
		if got := r.code(t); got != code {
			t.Fatalf("error code %d, want %d: %s", got, code, r.body)
		}
	}
}

func expectJSON(t *testing.T, r httpResult, want string) {
	t.Helper()
	expect(t, r, 200, 0)
	var a, b any
	if err := json.Unmarshal(r.body, &a); err != nil {
		t.Fatalf("%s: %v", r.body, err)
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("want %s: %v", want, err)
	}
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("got %s, want %s", r.body, want)
	}
}

func TestConformance(t *testing.T) {
	u := startServer(t, brokerAddr(t)).URL()
	get := func(p string) httpResult { return do(t, u, "GET", p, nil) }
	post := func(p string, b any) httpResult { return do(t, u, "POST", p, b) }
	put := func(p string, b any) httpResult { return do(t, u, "PUT", p, b) }
	del := func(p string) httpResult { return do(t, u, "DELETE", p, nil) }

	t.Run("root and types", func(t *testing.T) {
		expectJSON(t, get("/"), `{}`)
		expectJSON(t, get("/schemas/types"), `["JSON","PROTOBUF","AVRO"]`)
		expectJSON(t, get("/subjects"), `[]`)
		expect(t, get("/nope"), 404, 404)
	})
	t.Run("register and read", func(t *testing.T) {
		expectJSON(t, post("/subjects/users-value/versions", reg(userV1)), `{"id":1}`)
		// Idempotent: same text, same id, no new version.
		expectJSON(t, post("/subjects/users-value/versions", reg(userV1)), `{"id":1}`)
		// Whitespace does not matter; everything else does.
		expectJSON(t, post("/subjects/users-value/versions", reg(strings.ReplaceAll(userV1, ",", " , "))), `{"id":1}`)
		// So does key order: identity is the re-serialised schema.
		expectJSON(t, post("/subjects/users-value/versions", reg(`{"namespace":"ex","fields":[{"type":{"type":"int"},"name":"id"}],"name":"User","type":"record"}`)), `{"id":1}`)
		expectJSON(t, get("/subjects/users-value/versions"), `[1]`)
		expectJSON(t, post("/subjects/users-value/versions", reg(userV2)), `{"id":2}`)
		expectJSON(t, get("/subjects/users-value/versions"), `[1,2]`)
		for _, v := range []string{"2", "latest", "-1"} {
			r := get("/subjects/users-value/versions/" + v)
			expectJSON(t, r, fmt.Sprintf(`{"subject":"users-value","version":2,"id":2,"schema":%q}`, userV2))
		}
		expectJSON(t, get("/subjects/users-value/versions/1/schema"), userV1)
		expectJSON(t, get("/schemas/ids/1"), fmt.Sprintf(`{"schema":%q}`, userV1))
		expectJSON(t, get("/schemas/ids/2/schema"), userV2)
		expectJSON(t, get("/schemas/ids/1/subjects"), `["users-value"]`)
		expectJSON(t, get("/schemas/ids/1/versions"), `[{"subject":"users-value","version":1}]`)
		expect(t, get("/schemas/ids/99"), 404, CodeSchemaNotFound)
		expect(t, get("/subjects/nope/versions"), 404, CodeSubjectNotFound)
		expect(t, get("/subjects/nope/versions/1"), 404, CodeSubjectNotFound)
		expect(t, get("/subjects/users-value/versions/7"), 404, CodeVersionNotFound)
		expect(t, get("/subjects/users-value/versions/0"), 422, CodeInvalidVersion)
		expect(t, get("/subjects/users-value/versions/x"), 422, CodeInvalidVersion)
		expect(t, get("/subjects/users-value/versions/2147483648"), 422, CodeInvalidVersion)
		expectJSON(t, get("/subjects"), `["users-value"]`)
	})
	t.Run("id shared across subjects", func(t *testing.T) {
		expectJSON(t, post("/subjects/other/versions", reg(userV1)), `{"id":1}`)
		expectJSON(t, get("/schemas/ids/1/subjects"), `["other","users-value"]`)
		expectJSON(t, get("/subjects/other/versions/1"), fmt.Sprintf(`{"subject":"other","version":1,"id":1,"schema":%q}`, userV1))
	})
	t.Run("lookup", func(t *testing.T) {
		expectJSON(t, post("/subjects/users-value", reg(userV1)), fmt.Sprintf(`{"subject":"users-value","version":1,"id":1,"schema":%q}`, userV1))
		expect(t, post("/subjects/users-value", reg(userV3)), 404, CodeSchemaNotFound)
		expect(t, post("/subjects/nope", reg(userV1)), 404, CodeSubjectNotFound)
	})
	t.Run("invalid", func(t *testing.T) {
		expect(t, post("/subjects/x/versions", reg(`{"type":"record"}`)), 422, CodeInvalidSchema)
		expect(t, post("/subjects/x/versions", reg(`not json`)), 422, CodeInvalidSchema)
		expect(t, post("/subjects/x/versions", `{`), 400, 400)
		expect(t, post("/subjects/x/versions", map[string]any{"schema": "{}", "schemaType": "XML"}), 422, CodeInvalidSchema)
	})
	t.Run("compatibility", func(t *testing.T) {
		r := post("/subjects/users-value/versions", reg(userBad))
		expect(t, r, 409, CodeIncompatibleSchema)
		if !strings.Contains(string(r.body), "TYPE_MISMATCH") {
			t.Fatalf("message lacks the reason: %s", r.body)
		}
		expectJSON(t, post("/compatibility/subjects/users-value/versions/latest", reg(userV2)), `{"is_compatible":true}`)
		expectJSON(t, post("/compatibility/subjects/users-value/versions/latest", reg(userBad)), `{"is_compatible":false}`)
		r = post("/compatibility/subjects/users-value/versions/latest?verbose=true", reg(userV3))
		expect(t, r, 200, 0)
		want := `{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'The field 'age' at path '/fields/2' in the new schema has no default value and is missing in the old schema', additionalInfo:'age'}`
		if !strings.Contains(string(r.body), want) || !strings.Contains(string(r.body), `"is_compatible":false`) {
			t.Fatalf("verbose: %s", r.body)
		}
		expectJSON(t, post("/compatibility/subjects/users-value/versions?verbose=true", reg(userV2)), `{"is_compatible":true,"messages":[]}`)
		expectJSON(t, post("/compatibility/subjects/brand-new/versions", reg(userV2)), `{"is_compatible":true}`)
		expect(t, post("/compatibility/subjects/brand-new/versions/latest", reg(userV2)), 404, CodeSubjectNotFound)
	})
	t.Run("config", func(t *testing.T) {
		expectJSON(t, get("/config"), `{"compatibilityLevel":"BACKWARD","compatibility":"BACKWARD"}`)
		expect(t, get("/config/users-value"), 404, CodeSubjectLevelCompatNotConfig)
		expectJSON(t, get("/config/users-value?defaultToGlobal=true"), `{"compatibilityLevel":"BACKWARD","compatibility":"BACKWARD"}`)
		expect(t, put("/config", map[string]string{"compatibility": "SIDEWAYS"}), 422, CodeInvalidCompatibilityLevel)
		expectJSON(t, put("/config/users-value", map[string]string{"compatibility": "FORWARD"}), `{"compatibility":"FORWARD"}`)
		expectJSON(t, get("/config/users-value"), `{"compatibilityLevel":"FORWARD","compatibility":"FORWARD"}`)
		// FORWARD: the old schema must read the new: userV3 is fine.
		expectJSON(t, post("/subjects/users-value/versions", reg(userV3)), `{"id":3}`)
		expectJSON(t, del("/config/users-value"), `{"compatibilityLevel":"FORWARD"}`)
		expect(t, get("/config/users-value"), 404, CodeSubjectLevelCompatNotConfig)
		expectJSON(t, put("/config", map[string]string{"compatibility": "full_transitive"}), `{"compatibility":"FULL_TRANSITIVE"}`)
		expectJSON(t, get("/config"), `{"compatibilityLevel":"FULL_TRANSITIVE","compatibility":"FULL_TRANSITIVE"}`)
		expectJSON(t, del("/config"), `{"compatibilityLevel":"FULL_TRANSITIVE"}`)
		expectJSON(t, get("/config"), `{"compatibilityLevel":"BACKWARD","compatibility":"BACKWARD"}`)
	})
	t.Run("deletes", func(t *testing.T) {
		expectJSON(t, post("/subjects/d/versions", reg(`"string"`)), `{"id":4}`)
		expectJSON(t, post("/subjects/d/versions", reg(`"bytes"`)), `{"id":5}`)
		expect(t, del("/subjects/d/versions/1?permanent=true"), 404, CodeVersionNotSoftDeleted)
		expectJSON(t, del("/subjects/d/versions/1"), `1`)
		expect(t, del("/subjects/d/versions/1"), 404, CodeVersionSoftDeleted)
		expect(t, get("/subjects/d/versions/1"), 404, CodeVersionNotFound)
		expectJSON(t, get("/subjects/d/versions/1?deleted=true"), `{"subject":"d","version":1,"id":4,"schema":"\"string\""}`)
		expectJSON(t, get("/subjects/d/versions"), `[2]`)
		expectJSON(t, get("/subjects/d/versions?deleted=true"), `[1,2]`)
		expectJSON(t, del("/subjects/d/versions/1?permanent=true"), `1`)
		expectJSON(t, get("/subjects/d/versions?deleted=true"), `[2]`)
		// Versions continue after the highest existing one.
		expectJSON(t, post("/subjects/d/versions", reg(`"string"`)), `{"id":4}`)
		expectJSON(t, get("/subjects/d/versions"), `[2,3]`)
		expect(t, del("/subjects/d?permanent=true"), 404, CodeSubjectNotSoftDeleted)
		expectJSON(t, del("/subjects/d"), `[2,3]`)
		expect(t, del("/subjects/d"), 404, CodeSubjectSoftDeleted)
		expect(t, get("/subjects/d/versions"), 404, CodeSubjectNotFound)
		expectJSON(t, get("/subjects?deleted=true"), `["d","other","users-value"]`)
		expectJSON(t, get("/subjects"), `["other","users-value"]`)
		// A soft-deleted subject keeps its numbering.
		expectJSON(t, post("/subjects/d/versions", reg(`"int"`)), `{"id":6}`)
		expectJSON(t, get("/subjects/d/versions"), `[4]`)
		expectJSON(t, del("/subjects/d"), `[4]`)
		expectJSON(t, del("/subjects/d?permanent=true"), `[2,3,4]`)
		expect(t, get("/subjects/d/versions?deleted=true"), 404, CodeSubjectNotFound)
		expect(t, del("/subjects/d"), 404, CodeSubjectNotFound)
		// After a permanent delete the subject starts again at 1.
		expectJSON(t, post("/subjects/d/versions", reg(`"int"`)), `{"id":6}`)
		expectJSON(t, get("/subjects/d/versions"), `[1]`)
	})
	t.Run("references", func(t *testing.T) {
		addr := `{"type":"record","name":"Address","namespace":"ex","fields":[{"name":"city","type":"string"}]}`
		expectJSON(t, post("/subjects/address/versions", reg(addr)), `{"id":7}`)
		person := map[string]any{
			"schema":     `{"type":"record","name":"Person","namespace":"ex","fields":[{"name":"home","type":"ex.Address"}]}`,
			"references": []Reference{{Name: "ex.Address", Subject: "address", Version: 1}},
		}
		expectJSON(t, post("/subjects/person/versions", person), `{"id":8}`)
		r := get("/subjects/person/versions/1")
		if !strings.Contains(string(r.body), `"references":[{"name":"ex.Address","subject":"address","version":1}]`) {
			t.Fatalf("references not returned: %s", r.body)
		}
		expectJSON(t, get("/subjects/address/versions/1/referencedby"), `[8]`)
		expect(t, del("/subjects/address/versions/1"), 422, CodeReferenceExists)
		expect(t, del("/subjects/address"), 422, CodeReferenceExists)
		missing := map[string]any{"schema": person["schema"], "references": []Reference{{Name: "ex.Address", Subject: "address", Version: 9}}}
		expect(t, post("/subjects/person2/versions", missing), 422, CodeInvalidSchema)
		expect(t, post("/subjects/person2/versions", reg(person["schema"].(string))), 422, CodeInvalidSchema)
	})
	t.Run("other schema types", func(t *testing.T) {
		js := map[string]any{"schemaType": "JSON", "schema": `{"type":"object","properties":{"a":{"type":"string"}}}`}
		expectJSON(t, post("/subjects/j/versions", js), `{"id":9}`)
		r := get("/subjects/j/versions/1")
		if !strings.Contains(string(r.body), `"schemaType":"JSON"`) {
			t.Fatalf("schemaType missing: %s", r.body)
		}
		js2 := map[string]any{"schemaType": "JSON", "schema": `{"type":"object"}`}
		expect(t, post("/subjects/j/versions", js2), 409, CodeIncompatibleSchema)
		expectJSON(t, put("/config/j", map[string]string{"compatibility": "NONE"}), `{"compatibility":"NONE"}`)
		expectJSON(t, post("/subjects/j/versions", js2), `{"id":10}`)
		pb := map[string]any{"schemaType": "PROTOBUF", "schema": "syntax = \"proto3\";\nmessage M { string a = 1; }\n"}
		expectJSON(t, post("/subjects/p/versions", pb), `{"id":11}`)
		expectJSON(t, get("/schemas/ids/11/schema"), `"syntax = \"proto3\";\nmessage M { string a = 1; }"`)
	})
	t.Run("modes", func(t *testing.T) {
		expectJSON(t, get("/mode"), `{"mode":"READWRITE"}`)
		expect(t, put("/mode", map[string]string{"mode": "SIDEWAYS"}), 422, CodeInvalidMode)
		expectJSON(t, put("/mode/users-value", map[string]string{"mode": "READONLY"}), `{"mode":"READONLY"}`)
		expect(t, post("/subjects/users-value/versions", reg(`"int"`)), 422, CodeOperationNotPermitted)
		expect(t, del("/subjects/users-value"), 422, CodeOperationNotPermitted)
		expectJSON(t, del("/mode/users-value"), `{"mode":"READONLY"}`)
		expect(t, get("/mode/users-value"), 404, CodeSubjectLevelModeNotConfig)
		expect(t, post("/subjects/imp/versions", map[string]any{"schema": `"long"`, "id": 100}), 422, CodeOperationNotPermitted)
		expect(t, put("/mode", map[string]string{"mode": "IMPORT"}), 422, CodeOperationNotPermitted)
		expectJSON(t, put("/mode/imp", map[string]string{"mode": "IMPORT"}), `{"mode":"IMPORT"}`)
		expectJSON(t, post("/subjects/imp/versions", map[string]any{"schema": `"long"`, "id": 100, "version": 7}), `{"id":100}`)
		expectJSON(t, get("/subjects/imp/versions"), `[7]`)
		expect(t, post("/subjects/imp/versions", map[string]any{"schema": `"float"`, "id": 100}), 422, CodeOperationNotPermitted)
		expectJSON(t, get("/schemas/ids/100"), `{"schema":"\"long\""}`)
		expectJSON(t, put("/mode/imp", map[string]string{"mode": "READWRITE"}), `{"mode":"READWRITE"}`)
		// New ids continue above imported ones.
		expectJSON(t, post("/subjects/after-import/versions", reg(`"double"`)), `{"id":101}`)
	})
	t.Run("escaped subject names", func(t *testing.T) {
		expectJSON(t, post("/subjects/a%2Fb%20c/versions", reg(`"boolean"`)), `{"id":102}`)
		expectJSON(t, get("/subjects/a%2Fb%20c/versions/1"), `{"subject":"a/b c","version":1,"id":102,"schema":"\"boolean\""}`)
	})
	t.Run("method not allowed", func(t *testing.T) {
		expect(t, do(t, u, "PATCH", "/subjects", nil), 405, 405)
	})
	t.Run("defaults and docs are identity", func(t *testing.T) {
		withDoc := `{"type":"record","name":"User","namespace":"ex","doc":"a user","fields":[{"name":"id","type":"int"}]}`
		r := post("/subjects/doc/versions", reg(withDoc))
		expect(t, r, 200, 0)
		if string(r.body) == `{"id":1}` {
			t.Fatal("a schema differing only in doc reused the id")
		}
		expectJSON(t, get("/subjects/doc/versions/1/schema"), withDoc)
		expectJSON(t, del("/subjects/doc"), `[1]`)
		expectJSON(t, del("/subjects/doc?permanent=true"), `[1]`)
	})
}

// TestTransitiveLevels checks that transitive levels check every live
// version and that soft-deleted versions are ignored.
func TestTransitiveLevels(t *testing.T) {
	u := startServer(t, brokerAddr(t)).URL()
	v1 := `{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}`
	v2 := `{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":0}]}`
	// v3 reads a as long: it reads every earlier version, but they cannot
	// read it (long -> int is not a promotion).
	v3 := `{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}`
	do(t, u, "PUT", "/config/t", map[string]string{"compatibility": "BACKWARD_TRANSITIVE"})
	expectJSON(t, do(t, u, "POST", "/subjects/t/versions", reg(v1)), `{"id":1}`)
	expectJSON(t, do(t, u, "POST", "/subjects/t/versions", reg(v2)), `{"id":2}`)
	// A schema requiring b: readable from v2 (latest) but not from v1.
	needB := `{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"int"}]}`
	expectJSON(t, do(t, u, "POST", "/compatibility/subjects/t/versions/latest", reg(needB)), `{"is_compatible":true}`)
	expect(t, do(t, u, "POST", "/subjects/t/versions", reg(needB)), 409, CodeIncompatibleSchema)
	// BACKWARD (not transitive) only looks at the latest.
	do(t, u, "PUT", "/config/t", map[string]string{"compatibility": "BACKWARD"})
	expectJSON(t, do(t, u, "POST", "/compatibility/subjects/t/versions", reg(needB)), `{"is_compatible":true}`)
	// Back to transitive, with v1 soft-deleted: v1 no longer counts.
	do(t, u, "PUT", "/config/t", map[string]string{"compatibility": "BACKWARD_TRANSITIVE"})
	expectJSON(t, do(t, u, "DELETE", "/subjects/t/versions/1", nil), `1`)
	expectJSON(t, do(t, u, "POST", "/subjects/t/versions", reg(needB)), `{"id":3}`)
	// FULL_TRANSITIVE against v2 and needB: v3 (a as long) cannot be read
	// by them (long -> int).
	do(t, u, "PUT", "/config/t", map[string]string{"compatibility": "FULL_TRANSITIVE"})
	r := do(t, u, "POST", "/compatibility/subjects/t/versions?verbose=true", reg(v3))
	if !strings.Contains(string(r.body), `"is_compatible":false`) || !strings.Contains(string(r.body), "TYPE_MISMATCH") || !strings.Contains(string(r.body), "{compatibility: 'FULL_TRANSITIVE'}") {
		t.Fatalf("FULL_TRANSITIVE: %s", r.body)
	}
	do(t, u, "PUT", "/config/t", map[string]string{"compatibility": "NONE"})
	expectJSON(t, do(t, u, "POST", "/subjects/t/versions", reg(v3)), `{"id":4}`)
}
