package registry

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	hregistry "github.com/hamba/avro/v2/registry"
	"github.com/twmb/franz-go/pkg/sr"
)

// requireTool skips (or fails under SLUICE_REQUIRE_COMPAT=1) when a client
// is not installed.
func requireTool(t *testing.T, err error, install string) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("SLUICE_REQUIRE_COMPAT") == "1" {
		t.Fatalf("client missing (SLUICE_REQUIRE_COMPAT=1; %s): %v", install, err)
	}
	t.Skipf("client missing (%s): %v", install, err)
}

func TestFranzGoSRClient(t *testing.T) {
	s := startServer(t, brokerAddr(t))
	cl := newSRClient(t, s.URL())
	ctx := t.Context()
	ss, err := cl.CreateSchema(ctx, "fg-value", sr.Schema{Schema: userV1, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	if ss.ID != 1 || ss.Version != 1 || ss.Subject != "fg-value" {
		t.Fatalf("created %+v", ss)
	}
	got, err := cl.SchemaByID(ctx, ss.ID)
	if err != nil || got.Schema != userV1 {
		t.Fatalf("by id %+v, %v", got, err)
	}
	res, err := cl.CheckCompatibility(ctx, "fg-value", -1, sr.Schema{Schema: userBad})
	if err != nil || res.Is {
		t.Fatalf("compat of bad: %+v, %v", res, err)
	}
	res, err = cl.CheckCompatibility(sr.WithParams(ctx, sr.Verbose), "fg-value", -1, sr.Schema{Schema: userV3})
	if err != nil || res.Is || len(res.Messages) == 0 {
		t.Fatalf("verbose compat: %+v, %v", res, err)
	}
	if _, err := cl.CreateSchema(ctx, "fg-value", sr.Schema{Schema: userBad}); err == nil {
		t.Fatal("incompatible schema registered")
	} else if re, ok := errors.AsType[*sr.ResponseError](err); !ok || re.ErrorCode != 409 {
		t.Fatalf("error %v", err)
	}
	if _, err := cl.SchemaByVersion(ctx, "nope", 1); err == nil {
		t.Fatal("missing subject found")
	} else if re, ok := errors.AsType[*sr.ResponseError](err); !ok || re.ErrorCode != 40401 {
		t.Fatalf("error %v", err)
	}
	for _, r := range cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFull}, "fg-value") {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	for _, r := range cl.Compatibility(ctx, "fg-value") {
		if r.Err != nil || r.Level != sr.CompatFull {
			t.Fatalf("level %+v", r)
		}
	}
	for _, r := range cl.SetMode(ctx, sr.ModeReadOnly, "fg-value") {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	for _, r := range cl.Mode(ctx, "fg-value") {
		if r.Err != nil || r.Mode != sr.ModeReadOnly {
			t.Fatalf("mode %+v", r)
		}
	}
	types, err := cl.SupportedTypes(ctx)
	if err != nil || len(types) != 3 {
		t.Fatalf("types %v, %v", types, err)
	}
	// pkg/sr's own serde decodes what ours encodes.
	a, _ := NewAvro[userV1Go](cl, userV1, Subject("fg-value"), AutoRegister(false))
	b, err := a.AppendEncode(nil, userV1Go{ID: 3})
	if err != nil {
		t.Fatal(err)
	}
	var h sr.ConfluentHeader
	id, body, err := h.DecodeID(b)
	if err != nil || id != 1 || len(body) != 1 {
		t.Fatalf("sr header: %d %x %v", id, body, err)
	}
}

func TestHambaRegistryClient(t *testing.T) {
	s := startServer(t, brokerAddr(t))
	cl, err := hregistry.NewClient(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, _, err := cl.CreateSchema(ctx, "hamba-value", userV1)
	if err != nil || id != 1 {
		t.Fatalf("create: %d, %v", id, err)
	}
	if id2, _, err := cl.IsRegistered(ctx, "hamba-value", userV1); err != nil || id2 != 1 {
		t.Fatalf("is registered: %d, %v", id2, err)
	}
	ok, err := cl.IsCompatible(ctx, "hamba-value", userV2)
	if err != nil || !ok {
		t.Fatalf("compatible v2: %v, %v", ok, err)
	}
	ok, err = cl.IsCompatible(ctx, "hamba-value", userBad)
	if err != nil || ok {
		t.Fatalf("compatible bad: %v, %v", ok, err)
	}
	sc, err := cl.GetSchema(ctx, 1)
	if err != nil || sc.Type() != "record" {
		t.Fatalf("get: %v, %v", sc, err)
	}
	info, err := cl.GetLatestSchemaInfo(ctx, "hamba-value")
	if err != nil || info.ID != 1 || info.Version != 1 {
		t.Fatalf("latest: %+v, %v", info, err)
	}
	if err := cl.SetCompatibilityLevel(ctx, "hamba-value", "FULL"); err != nil {
		t.Fatal(err)
	}
	if lvl, err := cl.GetCompatibilityLevel(ctx, "hamba-value"); err != nil || lvl != "FULL" {
		t.Fatalf("level %q, %v", lvl, err)
	}
	if lvl, err := cl.GetGlobalCompatibilityLevel(ctx); err != nil || lvl != "BACKWARD" {
		t.Fatalf("global level %q, %v", lvl, err)
	}
	subs, err := cl.GetSubjects(ctx)
	if err != nil || len(subs) != 1 {
		t.Fatalf("subjects %v, %v", subs, err)
	}
	if _, err := cl.GetLatestSchema(ctx, "nope"); err == nil {
		t.Fatal("missing subject found")
	} else if e, ok := errors.AsType[hregistry.Error](err); !ok || e.Code != 40401 {
		t.Fatalf("error %#v", err)
	}
}

func TestKafkaJSRegistry(t *testing.T) {
	dir, _ := filepath.Abs("testdata/js")
	_, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules/@kafkajs/confluent-schema-registry"))
	}
	requireTool(t, err, "cd serde/registry/testdata/js && npm ci")
	s := startServer(t, brokerAddr(t))
	cmd := exec.CommandContext(t.Context(), "node", "client.js", s.URL())
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client.js: %v\n%s", err, out)
	}
	// Our serde decodes what kafkajs encoded.
	b, err := hex.DecodeString(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	type js struct {
		ID   int64  `avro:"id"`
		Name string `avro:"name"`
		Tag  string `avro:"tag"`
	}
	a, err := NewAvro[js](newSRClient(t, s.URL()), `{"type":"record","name":"Js","namespace":"ex","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"},{"name":"tag","type":"string","default":"x"}]}`, Subject("js-value"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := a.Decode(b)
	if err != nil || v != (js{42, "ada", "x"}) {
		t.Fatalf("decoded %+v, %v", v, err)
	}
	// kafkajs reads GET /config/{s} before registering, and on a 404 (no
	// level of the subject's own) sets the level it wants (BACKWARD).
	expectJSON(t, do(t, s.URL(), "GET", "/config/js-value", nil), `{"compatibilityLevel":"BACKWARD","compatibility":"BACKWARD"}`)
}

func TestConfluentKafkaPython(t *testing.T) {
	err := exec.Command("/usr/bin/python3", "-c", "import confluent_kafka.schema_registry, confluent_kafka.avro").Run()
	requireTool(t, err, "apt-get install python3-confluent-kafka python3-avro python3-requests")
	s := startServer(t, brokerAddr(t))
	out, err := exec.CommandContext(t.Context(), "/usr/bin/python3", "testdata/py/client.py", s.URL()).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("client.py: %v\n%s", err, out)
	}
}
