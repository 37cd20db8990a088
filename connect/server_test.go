package connect_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/broker/brokertest"
	"github.com/sluicehq/sluice/connect"
)

// TestRESTConformance checks status codes and bodies of Kafka Connect's REST
// API, in order, against one worker.
func TestRESTConformance(t *testing.T) {
	b := brokertest.Start(t)
	w, _ := startWorker(t, b.Addr())
	srv := httptest.NewServer(connect.Handler(w))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	createTopic(t, b.Addr(), "rest", 1)

	srcCfg := `{"connector.class":"file-source","file":"` + in + `","topic":"rest"}`
	steps := []struct {
		name, method, path, body string
		code                     int
		want                     string // substring of the body, or exact if it starts with "="
	}{
		{"root", "GET", "/", "", 200, `"version"`},
		{"empty list", "GET", "/connectors", "", 200, "=[]"},
		{"unknown connector", "GET", "/connectors/nope", "", 404, `={"error_code":404,"message":"Connector nope not found"}`},
		{"unknown status", "GET", "/connectors/nope/status", "", 404, `"error_code":404`},
		{"create without name", "POST", "/connectors", `{"config":{}}`, 400, `"error_code":400`},
		{"create bad json", "POST", "/connectors", `{`, 400, `"error_code":400`},
		{"create unknown class", "POST", "/connectors", `{"name":"x","config":{"connector.class":"nope"}}`, 400, `Connector configuration is invalid and contains the following 1 error(s)`},
		{"create missing file", "POST", "/connectors", `{"name":"x","config":{"connector.class":"file-source","topic":"t"}}`, 400, `file: Missing required configuration`},
		{"create", "POST", "/connectors", `{"name":"src","config":` + srcCfg + `}`, 201, `"name":"src","config":{`},
		{"create again", "POST", "/connectors", `{"name":"src","config":` + srcCfg + `}`, 409, `={"error_code":409,"message":"Connector src already exists"}`},
		{"list", "GET", "/connectors", "", 200, `=["src"]`},
		{"expand status", "GET", "/connectors?expand=status", "", 200, `"src":{"status":{"name":"src","connector":{"state":"RUNNING"`},
		{"info", "GET", "/connectors/src", "", 200, `"tasks":[{"connector":"src","task":0}],"type":"source"`},
		{"config", "GET", "/connectors/src/config", "", 200, `"connector.class":"file-source"`},
		{"status", "GET", "/connectors/src/status", "", 200, `"connector":{"state":"RUNNING","worker_id":"test-worker"},"tasks":[{"id":0,"state":"RUNNING","worker_id":"test-worker"}],"type":"source"`},
		{"tasks", "GET", "/connectors/src/tasks", "", 200, `[{"id":{"connector":"src","task":0},"config":{`},
		{"task status", "GET", "/connectors/src/tasks/0/status", "", 200, `{"id":0,"state":"RUNNING"`},
		{"offsets", "GET", "/connectors/src/offsets", "", 200, `={"offsets":[]}`},
		{"unknown offsets", "GET", "/connectors/nope/offsets", "", 404, `"error_code":404`},
		{"unknown task status", "GET", "/connectors/src/tasks/7/status", "", 404, `"error_code":404`},
		{"put config update", "PUT", "/connectors/src/config", `{"connector.class":"file-source","file":"` + in + `","topic":"rest","batch.size":"5"}`, 200, `"batch.size":"5"`},
		{"put config name mismatch", "PUT", "/connectors/src/config", `{"name":"other","connector.class":"file-source","file":"f","topic":"t"}`, 400, `doesn't match connector name in the URL`},
		{"put config create", "PUT", "/connectors/sink/config", `{"connector.class":"file-sink","file":"` + filepath.Join(dir, "out.txt") + `","topics":"rest"}`, 201, `"type":"sink"`},
		{"sink without topics", "PUT", "/connectors/bad/config", `{"connector.class":"file-sink","file":"f"}`, 400, `topics: Must configure one of topics or topics.regex`},
		{"pause", "PUT", "/connectors/src/pause", "", 202, "="},
		{"paused status", "GET", "/connectors/src/status", "", 200, `"connector":{"state":"PAUSED"`},
		{"resume", "PUT", "/connectors/src/resume", "", 202, "="},
		{"resumed status", "GET", "/connectors/src/status", "", 200, `"tasks":[{"id":0,"state":"RUNNING"`},
		{"restart", "POST", "/connectors/src/restart", "", 204, "="},
		{"restart with tasks", "POST", "/connectors/src/restart?includeTasks=true", "", 202, `"connector":{"state":"RUNNING"`},
		{"restart task", "POST", "/connectors/src/tasks/0/restart", "", 204, "="},
		{"restart unknown task", "POST", "/connectors/src/tasks/3/restart", "", 404, `"error_code":404`},
		{"restart unknown", "POST", "/connectors/nope/restart", "", 404, `"error_code":404`},
		{"pause unknown", "PUT", "/connectors/nope/pause", "", 404, `"error_code":404`},
		{"stop", "PUT", "/connectors/src/stop", "", 202, "="},
		{"stopped status", "GET", "/connectors/src/status", "", 200, `"connector":{"state":"STOPPED","worker_id":"test-worker"},"tasks":[]`},
		{"stopped tasks", "GET", "/connectors/src/tasks", "", 200, "=[]"},
		{"plugins", "GET", "/connector-plugins", "", 200, `[{"class":"file-sink","type":"sink","version":"1.0.0"},{"class":"file-source","type":"source","version":"1.0.0"}]`},
		{"validate ok", "PUT", "/connector-plugins/file-source/config/validate", `{"connector.class":"file-source","file":"f","topic":"t"}`, 200, `"name":"file-source","error_count":0`},
		{"validate errors", "PUT", "/connector-plugins/file-source/config/validate", `{"connector.class":"file-source","tasks.max":"0"}`, 200, `"error_count":3`},
		{"validate alias", "PUT", "/connector-plugins/FileStreamSource/config/validate", `{"file":"f","topic":"t"}`, 200, `"error_count":0`},
		{"validate mismatch", "PUT", "/connector-plugins/file-source/config/validate", `{"connector.class":"file-sink"}`, 400, `does not match request type`},
		{"validate unknown", "PUT", "/connector-plugins/nope/config/validate", `{}`, 404, `"error_code":404`},
		{"delete", "DELETE", "/connectors/src", "", 204, "="},
		{"delete again", "DELETE", "/connectors/src", "", 404, `={"error_code":404,"message":"Connector src not found"}`},
		{"list after delete", "GET", "/connectors", "", 200, `=["sink"]`},
		{"wrong method", "PATCH", "/connectors", "", 405, `"error_code":405`},
		{"unknown path", "GET", "/nope", "", 404, `"error_code":404`},
	}
	for _, s := range steps {
		req, err := http.NewRequestWithContext(t.Context(), s.method, srv.URL+s.path, strings.NewReader(s.body))
		if err != nil {
			t.Fatal(err)
		}
		if s.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := strings.TrimSpace(string(body))
		if resp.StatusCode != s.code {
			t.Fatalf("%s: %s %s = %d %s, want %d", s.name, s.method, s.path, resp.StatusCode, got, s.code)
		}
		if exact, ok := strings.CutPrefix(s.want, "="); ok {
			if got != exact {
				t.Fatalf("%s: body %s, want %s", s.name, got, exact)
			}
		} else if !strings.Contains(got, s.want) {
			t.Fatalf("%s: body %s, want it to contain %s", s.name, got, s.want)
		}
		if got != "" && !json.Valid(body) {
			t.Fatalf("%s: body is not JSON: %s", s.name, got)
		}
	}
}
