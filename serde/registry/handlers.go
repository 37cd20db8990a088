package registry

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern string, fn http.HandlerFunc) { mux.HandleFunc(pattern, fn) }
	h("GET /{$}", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, struct{}{}) })
	h("GET /schemas/types", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, []string{TypeJSON, TypeProtobuf, TypeAvro})
	})
	h("GET /schemas/ids/{id}", s.getSchemaByID)
	h("GET /schemas/ids/{id}/schema", s.getSchemaByID)
	h("GET /schemas/ids/{id}/subjects", s.getSubjectsByID)
	h("GET /schemas/ids/{id}/versions", s.getVersionsByID)
	h("GET /subjects", s.getSubjects)
	h("POST /subjects/{subject}", s.lookup)
	h("DELETE /subjects/{subject}", s.deleteSubject)
	h("GET /subjects/{subject}/versions", s.getVersions)
	h("POST /subjects/{subject}/versions", s.register)
	h("GET /subjects/{subject}/versions/{version}", s.getVersion)
	h("GET /subjects/{subject}/versions/{version}/schema", s.getVersion)
	h("GET /subjects/{subject}/versions/{version}/referencedby", s.referencedBy)
	h("DELETE /subjects/{subject}/versions/{version}", s.deleteVersion)
	h("POST /compatibility/subjects/{subject}/versions", s.compatibility)
	h("POST /compatibility/subjects/{subject}/versions/{version}", s.compatibility)
	h("GET /config", s.getConfig)
	h("PUT /config", s.putConfig)
	h("DELETE /config", s.deleteConfig)
	h("GET /config/{subject}", s.getConfig)
	h("PUT /config/{subject}", s.putConfig)
	h("DELETE /config/{subject}", s.deleteConfig)
	h("GET /mode", s.getMode)
	h("PUT /mode", s.putMode)
	h("GET /mode/{subject}", s.getMode)
	h("PUT /mode/{subject}", s.putMode)
	h("DELETE /mode/{subject}", s.deleteMode)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-s.ready:
		case <-r.Context().Done():
			return
		}
		if _, pattern := mux.Handler(r); pattern == "" {
			// Let the mux tell 404 from 405, and answer it in JSON.
			st := &statusOnly{code: codeNotFound, header: http.Header{}}
			mux.ServeHTTP(st, r)
			if allow := st.header.Get("Allow"); allow != "" {
				w.Header().Set("Allow", allow)
			}
			writeErr(w, apiErr(st.code, "HTTP %d %s", st.code, http.StatusText(st.code)))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func boolParam(r *http.Request, name string) bool {
	b, _ := strconv.ParseBool(r.URL.Query().Get(name))
	return b
}

// schemaResponse is the body of GET /subjects/{s}/versions/{v} and
// POST /subjects/{s}.
type schemaResponse struct {
	Subject    string      `json:"subject,omitempty"`
	Version    int         `json:"version,omitempty"`
	ID         int         `json:"id,omitempty"`
	SchemaType string      `json:"schemaType,omitempty"`
	References []Reference `json:"references,omitempty"`
	Schema     string      `json:"schema"`
}

func respFor(v *version, c *content) schemaResponse {
	r := schemaResponse{Subject: v.subject, Version: v.version, ID: v.id, Schema: c.schema, References: c.refs}
	if c.schemaType != TypeAvro {
		r.SchemaType = c.schemaType
	}
	return r
}

// writeRawSchema writes a schema's text as the body (the .../schema
// endpoints).
func writeRawSchema(w http.ResponseWriter, c *content) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(200)
	if c.schemaType == TypeProtobuf {
		// Not JSON: Confluent answers it as a JSON string.
		b, _ := json.Marshal(c.schema)
		_, _ = w.Write(b)
		return
	}
	_, _ = io.WriteString(w, c.schema)
}

func parseID(w http.ResponseWriter, r *http.Request) (int, bool) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		writeErr(w, apiErr(CodeSchemaNotFound, "Schema %s not found", r.PathValue("id")))
		return 0, false
	}
	return id, true
}

func (s *Server) getSchemaByID(w http.ResponseWriter, r *http.Request) {
	id, ok := parseID(w, r)
	if !ok {
		return
	}
	var c *content
	s.store.view(func(st *state) {
		if len(st.usesOfID(id, true)) > 0 {
			c = st.byID[id]
		}
	})
	if c == nil {
		writeErr(w, apiErr(CodeSchemaNotFound, "Schema %d not found", id))
		return
	}
	if strings.HasSuffix(r.URL.Path, "/schema") {
		writeRawSchema(w, c)
		return
	}
	resp := schemaResponse{Schema: c.schema, References: c.refs}
	if c.schemaType != TypeAvro {
		resp.SchemaType = c.schemaType
	}
	writeJSON(w, 200, resp)
}

func (s *Server) getSubjectsByID(w http.ResponseWriter, r *http.Request) {
	id, ok := parseID(w, r)
	if !ok {
		return
	}
	var uses []*version
	s.store.view(func(st *state) { uses = st.usesOfID(id, boolParam(r, "deleted")) })
	if len(uses) == 0 {
		writeErr(w, apiErr(CodeSchemaNotFound, "Schema %d not found", id))
		return
	}
	out := []string{}
	for _, u := range uses {
		if !slices.Contains(out, u.subject) {
			out = append(out, u.subject)
		}
	}
	writeJSON(w, 200, out)
}

func (s *Server) getVersionsByID(w http.ResponseWriter, r *http.Request) {
	id, ok := parseID(w, r)
	if !ok {
		return
	}
	var uses []*version
	s.store.view(func(st *state) { uses = st.usesOfID(id, boolParam(r, "deleted")) })
	if len(uses) == 0 {
		writeErr(w, apiErr(CodeSchemaNotFound, "Schema %d not found", id))
		return
	}
	type sv struct {
		Subject string `json:"subject"`
		Version int    `json:"version"`
	}
	out := []sv{}
	for _, u := range uses {
		out = append(out, sv{u.subject, u.version})
	}
	writeJSON(w, 200, out)
}

func (s *Server) getSubjects(w http.ResponseWriter, r *http.Request) {
	var out []string
	s.store.view(func(st *state) {
		out = st.subjectNames(boolParam(r, "deleted"), r.URL.Query().Get("subjectPrefix"))
	})
	writeJSON(w, 200, out)
}

func (s *Server) getVersions(w http.ResponseWriter, r *http.Request) {
	subj := r.PathValue("subject")
	out := []int{}
	s.store.view(func(st *state) {
		for _, v := range st.versions(subj, boolParam(r, "deleted")) {
			out = append(out, v.version)
		}
	})
	if len(out) == 0 {
		writeErr(w, apiErr(CodeSubjectNotFound, "Subject '%s' not found.", subj))
		return
	}
	writeJSON(w, 200, out)
}

// parseVersion parses {version}: 1..2^31-1, "latest" or -1 (returned as -1).
func parseVersion(s string) (int, error) {
	if s == "latest" {
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n == 0 || n < -1 {
		return 0, apiErr(CodeInvalidVersion, "The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", s)
	}
	return int(n), nil
}

// findVersion resolves subject/version; deleted allows soft-deleted ones.
func findVersion(st *state, subj, vs string, deleted bool) (*version, error) {
	n, err := parseVersion(vs)
	if err != nil {
		return nil, err
	}
	all := st.versions(subj, deleted)
	if len(all) == 0 {
		return nil, apiErr(CodeSubjectNotFound, "Subject '%s' not found.", subj)
	}
	if n == -1 {
		return all[len(all)-1], nil
	}
	for _, v := range all {
		if v.version == n {
			return v, nil
		}
	}
	return nil, apiErr(CodeVersionNotFound, "Version %d not found.", n)
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request) {
	subj := r.PathValue("subject")
	var (
		v   *version
		c   *content
		err error
	)
	s.store.view(func(st *state) {
		if v, err = findVersion(st, subj, r.PathValue("version"), boolParam(r, "deleted")); err == nil {
			c = st.byID[v.id]
		}
	})
	if err != nil {
		writeErr(w, err)
		return
	}
	if strings.HasSuffix(r.URL.Path, "/schema") {
		writeRawSchema(w, c)
		return
	}
	writeJSON(w, 200, respFor(v, c))
}

func (s *Server) referencedBy(w http.ResponseWriter, r *http.Request) {
	subj := r.PathValue("subject")
	var (
		ids []int
		err error
	)
	s.store.view(func(st *state) {
		var v *version
		if v, err = findVersion(st, subj, r.PathValue("version"), false); err == nil {
			ids = st.referencedBy(subj, v.version)
		}
	})
	if err != nil {
		writeErr(w, err)
		return
	}
	if ids == nil {
		ids = []int{}
	}
	writeJSON(w, 200, ids)
}

// registerRequest is the body of POST /subjects/{s}/versions and friends.
type registerRequest struct {
	Schema     string      `json:"schema"`
	SchemaType string      `json:"schemaType,omitempty"`
	References []Reference `json:"references,omitempty"`
	ID         int         `json:"id,omitempty"`
	Version    int         `json:"version,omitempty"`
}

// readBody reads and decodes a JSON request body (bounded).
func readBody(w http.ResponseWriter, r *http.Request, v any) ([]byte, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		writeErr(w, apiErr(codeBadRequest, "read body: %v", err))
		return nil, false
	}
	if err := json.Unmarshal(b, v); err != nil {
		writeErr(w, apiErr(codeBadRequest, "Unrecognized request body: %v", err))
		return nil, false
	}
	return b, true
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) {
	subj := r.PathValue("subject")
	var req registerRequest
	if _, ok := readBody(w, r, &req); !ok {
		return
	}
	deleted := boolParam(r, "deleted")
	var (
		resp schemaResponse
		err  error
	)
	s.store.view(func(st *state) {
		all := st.versions(subj, deleted)
		if len(all) == 0 {
			err = apiErr(CodeSubjectNotFound, "Subject '%s' not found.", subj)
			return
		}
		var p *parsed
		if p, err = parseSchema(st, req.SchemaType, req.Schema, req.References); err != nil {
			return
		}
		key := p.key()
		for i := len(all) - 1; i >= 0; i-- {
			if c := st.byID[all[i].id]; c.key() == key {
				resp = respFor(all[i], c)
				return
			}
		}
		err = apiErr(CodeSchemaNotFound, "Schema not found")
	})
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, 200, resp)
}

func (s *Server) compatibility(w http.ResponseWriter, r *http.Request) {
	subj := r.PathValue("subject")
	var req registerRequest
	if _, ok := readBody(w, r, &req); !ok {
		return
	}
	vs := r.PathValue("version")
	var (
		msgs []string
		err  error
	)
	s.store.view(func(st *state) {
		var p *parsed
		if p, err = parseSchema(st, req.SchemaType, req.Schema, req.References); err != nil {
			return
		}
		level := st.level(subj)
		against := st.versions(subj, false)
		if vs != "" {
			var v *version
			if v, err = findVersion(st, subj, vs, false); err != nil {
				return
			}
			// A given version is checked on its own, whatever the level's
			// transitivity.
			against = []*version{v}
		}
		msgs, err = checkCompat(st, level, p, against)
	})
	if err != nil {
		writeErr(w, err)
		return
	}
	if !boolParam(r, "verbose") {
		writeJSON(w, 200, struct {
			IsCompatible bool `json:"is_compatible"`
		}{len(msgs) == 0})
		return
	}
	if msgs == nil {
		msgs = []string{}
	}
	writeJSON(w, 200, struct {
		IsCompatible bool     `json:"is_compatible"`
		Messages     []string `json:"messages"`
	}{len(msgs) == 0, msgs})
}

func (s *Server) getConfig(w http.ResponseWriter, r *http.Request) {
	subj := r.PathValue("subject")
	var (
		level string
		ok    bool
	)
	s.store.view(func(st *state) {
		if subj == "" || boolParam(r, "defaultToGlobal") {
			level, ok = st.level(subj), true
			return
		}
		level, ok = st.config[subj]
	})
	if !ok {
		writeErr(w, apiErr(CodeSubjectLevelCompatNotConfig, "Subject '%s' does not have subject-level compatibility configured", subj))
		return
	}
	// "compatibility" repeats the level for hamba's registry client, which
	// reads that field (Confluent's PUT answer) from GET /config too; other
	// clients ignore it.
	writeJSON(w, 200, map[string]string{"compatibilityLevel": level, "compatibility": level})
}

func (s *Server) getMode(w http.ResponseWriter, r *http.Request) {
	subj := r.PathValue("subject")
	var (
		mode string
		ok   bool
	)
	s.store.view(func(st *state) {
		if subj == "" || boolParam(r, "defaultToGlobal") {
			mode, ok = st.modeOf(subj), true
			return
		}
		mode, ok = st.mode[subj]
	})
	if !ok {
		writeErr(w, apiErr(CodeSubjectLevelModeNotConfig, "Subject '%s' does not have subject-level mode configured", subj))
		return
	}
	writeJSON(w, 200, map[string]string{"mode": mode})
}

// statusOnly records the status a handler writes and discards the body.
type statusOnly struct {
	code   int
	header http.Header
}

func (s *statusOnly) Header() http.Header         { return s.header }
func (s *statusOnly) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusOnly) WriteHeader(code int)        { s.code = code }
