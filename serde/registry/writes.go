package registry

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
)

// snapshot runs fn under the state lock and returns its results. Writes
// run under writeMu on the elected instance, so the state fn sees cannot
// change before the write lands except by this instance's own writes.
func (s *Server) snapshot(fn func(st *state) error) error {
	var err error
	s.store.view(func(st *state) { err = fn(st) })
	return err
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	subj := r.PathValue("subject")
	var req registerRequest
	body, ok := readBody(w, r, &req)
	if !ok {
		return
	}
	s.write(w, r, body, func(ctx context.Context) (any, int, int64, error) {
		if req.SchemaType == "" {
			req.SchemaType = TypeAvro
		}
		type idResp struct {
			ID int `json:"id"`
		}
		var (
			p        *parsed
			existing = -1
			val      schemaValue
		)
		err := s.snapshot(func(st *state) error {
			mode := st.modeOf(subj)
			if mode == ReadOnly {
				return apiErr(CodeOperationNotPermitted, "Subject %s is in read-only mode", subj)
			}
			if req.ID > 0 && mode != Import {
				return apiErr(CodeOperationNotPermitted, "Subject %s is not in import mode: a schema id can only be given in IMPORT mode", subj)
			}
			var err error
			if p, err = parseSchema(st, req.SchemaType, req.Schema, req.References); err != nil {
				return err
			}
			key := p.key()
			live := st.versions(subj, false)
			for _, v := range live {
				if st.byID[v.id].key() == key && (req.ID == 0 || req.ID == v.id) {
					existing = v.id // idempotent: no compatibility check
					return nil
				}
			}
			id, known := st.idOf[key]
			if req.ID > 0 {
				if c, used := st.byID[req.ID]; used && c.key() != key {
					return apiErr(CodeOperationNotPermitted, "Overwrite new schema with id %d is not permitted.", req.ID)
				}
				id, known = req.ID, true
			}
			if !known {
				id = st.maxID + 1
			}
			ver := st.maxVersion(subj) + 1
			if req.Version > 0 {
				if mode != Import && req.Version != ver {
					return apiErr(CodeInvalidSchema, "Invalid schema: version %d must be %d outside IMPORT mode", req.Version, ver)
				}
				if _, taken := st.subjects[subj][req.Version]; taken {
					return apiErr(CodeInvalidSchema, "Invalid schema: version %d already exists in subject %s", req.Version, subj)
				}
				ver = req.Version
			}
			if mode != Import {
				msgs, err := checkCompat(st, st.level(subj), p, live)
				if err != nil {
					return err
				}
				if len(msgs) > 0 {
					return apiErr(CodeIncompatibleSchema, "Schema being registered is incompatible with an earlier schema for subject %q, details: [%s]", subj, strings.Join(msgs, ", "))
				}
			}
			val = schemaValue{Subject: subj, Version: ver, ID: id, References: p.refs, Schema: p.schema}
			if p.schemaType != TypeAvro {
				val.SchemaType = p.schemaType
			}
			return nil
		})
		if err != nil {
			return nil, 0, -1, err
		}
		if existing >= 0 {
			return idResp{existing}, 200, -1, nil
		}
		off, err := s.store.write(ctx, rec{schemaKey(subj, val.Version), mustJSON(val)})
		if err != nil {
			return nil, 0, -1, apiErr(CodeStoreError, "Error while registering schema: %v", err)
		}
		return idResp{val.ID}, 200, off, nil
	})
}

func (s *Server) deleteSubject(w http.ResponseWriter, r *http.Request) {
	subj := r.PathValue("subject")
	permanent := boolParam(r, "permanent")
	s.write(w, r, nil, func(ctx context.Context) (any, int, int64, error) {
		var recs []rec
		out := []int{}
		err := s.snapshot(func(st *state) error {
			if st.modeOf(subj) == ReadOnly {
				return apiErr(CodeOperationNotPermitted, "Subject %s is in read-only mode", subj)
			}
			all := st.versions(subj, true)
			if len(all) == 0 {
				return apiErr(CodeSubjectNotFound, "Subject '%s' not found.", subj)
			}
			live := st.versions(subj, false)
			for _, v := range live {
				if refs := st.referencedBy(subj, v.version); len(refs) > 0 {
					return apiErr(CodeReferenceExists, "One or more references exist to the schema {magic=1,keytype=SCHEMA,subject=%s,version=%d}.", subj, v.version)
				}
			}
			if permanent {
				if len(live) > 0 {
					return apiErr(CodeSubjectNotSoftDeleted, "Subject '%s' was not deleted first before being permanently deleted", subj)
				}
				for _, v := range all {
					out = append(out, v.version)
					recs = append(recs, rec{key: schemaKey(subj, v.version)})
				}
				if _, ok := st.config[subj]; ok {
					recs = append(recs, rec{key: configKey(subj)})
				}
				if _, ok := st.mode[subj]; ok {
					recs = append(recs, rec{key: modeKey(subj)})
				}
				return nil
			}
			if len(live) == 0 {
				return apiErr(CodeSubjectSoftDeleted, "Subject '%s' was soft deleted.Set permanent=true to delete permanently", subj)
			}
			for _, v := range live {
				out = append(out, v.version)
				c := st.byID[v.id]
				val := schemaValue{Subject: subj, Version: v.version, ID: v.id, References: c.refs, Schema: c.schema, Deleted: true}
				if c.schemaType != TypeAvro {
					val.SchemaType = c.schemaType
				}
				recs = append(recs, rec{schemaKey(subj, v.version), mustJSON(val)})
			}
			recs = append(recs, rec{
				storeKey{KeyType: keyDeleteSubject, Subject: &subj},
				mustJSON(deleteSubjectValue{Subject: subj, Version: live[len(live)-1].version}),
			})
			return nil
		})
		if err != nil {
			return nil, 0, -1, err
		}
		off, err := s.store.write(ctx, recs...)
		if err != nil {
			return nil, 0, -1, apiErr(CodeStoreError, "Error while deleting the subject: %v", err)
		}
		return out, 200, off, nil
	})
}

func (s *Server) deleteVersion(w http.ResponseWriter, r *http.Request) {
	subj := r.PathValue("subject")
	permanent := boolParam(r, "permanent")
	s.write(w, r, nil, func(ctx context.Context) (any, int, int64, error) {
		var (
			rc  rec
			out int
		)
		err := s.snapshot(func(st *state) error {
			if st.modeOf(subj) == ReadOnly {
				return apiErr(CodeOperationNotPermitted, "Subject %s is in read-only mode", subj)
			}
			// A numbered version is found even when soft-deleted, to tell
			// 40406 from 40402; "latest" is the latest live version unless
			// the delete is permanent.
			vs := r.PathValue("version")
			n, err := parseVersion(vs)
			if err != nil {
				return err
			}
			v, err := findVersion(st, subj, vs, permanent || n > 0)
			if err != nil {
				return err
			}
			if v.deleted && !permanent {
				return apiErr(CodeVersionSoftDeleted, "Subject '%s' Version %d was soft deleted.Set permanent=true to delete permanently", subj, v.version)
			}
			if !v.deleted && permanent {
				return apiErr(CodeVersionNotSoftDeleted, "Subject '%s' Version %d was not deleted first before being permanently deleted", subj, v.version)
			}
			if refs := st.referencedBy(subj, v.version); len(refs) > 0 {
				return apiErr(CodeReferenceExists, "One or more references exist to the schema {magic=1,keytype=SCHEMA,subject=%s,version=%d}.", subj, v.version)
			}
			out = v.version
			if permanent {
				rc = rec{key: schemaKey(subj, v.version)}
				return nil
			}
			c := st.byID[v.id]
			val := schemaValue{Subject: subj, Version: v.version, ID: v.id, References: c.refs, Schema: c.schema, Deleted: true}
			if c.schemaType != TypeAvro {
				val.SchemaType = c.schemaType
			}
			rc = rec{schemaKey(subj, v.version), mustJSON(val)}
			return nil
		})
		if err != nil {
			return nil, 0, -1, err
		}
		off, err := s.store.write(ctx, rc)
		if err != nil {
			return nil, 0, -1, apiErr(CodeStoreError, "Error while deleting the version: %v", err)
		}
		return out, 200, off, nil
	})
}

func (s *Server) putConfig(w http.ResponseWriter, r *http.Request) {
	subj := r.PathValue("subject")
	var req struct {
		Compatibility string `json:"compatibility"`
	}
	body, ok := readBody(w, r, &req)
	if !ok {
		return
	}
	level := strings.ToUpper(req.Compatibility)
	if !levels[level] {
		writeErr(w, apiErr(CodeInvalidCompatibilityLevel, "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive"))
		return
	}
	s.write(w, r, body, func(ctx context.Context) (any, int, int64, error) {
		off, err := s.store.write(ctx, rec{configKey(subj), mustJSON(configValue{level})})
		if err != nil {
			return nil, 0, -1, apiErr(CodeStoreError, "Failed to update compatibility level: %v", err)
		}
		return map[string]string{"compatibility": level}, 200, off, nil
	})
}

func (s *Server) deleteConfig(w http.ResponseWriter, r *http.Request) {
	subj := r.PathValue("subject")
	s.write(w, r, nil, func(ctx context.Context) (any, int, int64, error) {
		var prev string
		err := s.snapshot(func(st *state) error {
			if subj == "" {
				prev = st.level("")
				return nil
			}
			l, ok := st.config[subj]
			if !ok {
				if len(st.versions(subj, true)) == 0 {
					return apiErr(CodeSubjectNotFound, "Subject '%s' not found.", subj)
				}
				return apiErr(CodeSubjectLevelCompatNotConfig, "Subject '%s' does not have subject-level compatibility configured", subj)
			}
			prev = l
			return nil
		})
		if err != nil {
			return nil, 0, -1, err
		}
		off, err := s.store.write(ctx, rec{key: configKey(subj)})
		if err != nil {
			return nil, 0, -1, apiErr(CodeStoreError, "Failed to delete compatibility level: %v", err)
		}
		return map[string]string{"compatibilityLevel": prev}, 200, off, nil
	})
}

func (s *Server) putMode(w http.ResponseWriter, r *http.Request) {
	subj := r.PathValue("subject")
	var req struct {
		Mode string `json:"mode"`
	}
	body, ok := readBody(w, r, &req)
	if !ok {
		return
	}
	mode := strings.ToUpper(req.Mode)
	if !modes[mode] {
		writeErr(w, apiErr(CodeInvalidMode, "Invalid mode. Valid values are READWRITE, READONLY, IMPORT."))
		return
	}
	force := boolParam(r, "force")
	s.write(w, r, body, func(ctx context.Context) (any, int, int64, error) {
		err := s.snapshot(func(st *state) error {
			if mode != Import || force {
				return nil
			}
			var n int
			if subj == "" {
				n = len(st.subjectNames(true, ""))
			} else {
				n = len(st.versions(subj, true))
			}
			if n > 0 {
				return apiErr(CodeOperationNotPermitted, "Cannot import since found existing subjects")
			}
			return nil
		})
		if err != nil {
			return nil, 0, -1, err
		}
		off, err := s.store.write(ctx, rec{modeKey(subj), mustJSON(modeValue{mode})})
		if err != nil {
			return nil, 0, -1, apiErr(CodeStoreError, "Failed to update mode: %v", err)
		}
		return map[string]string{"mode": mode}, 200, off, nil
	})
}

func (s *Server) deleteMode(w http.ResponseWriter, r *http.Request) {
	subj := r.PathValue("subject")
	s.write(w, r, nil, func(ctx context.Context) (any, int, int64, error) {
		var prev string
		err := s.snapshot(func(st *state) error {
			m, ok := st.mode[subj]
			if !ok {
				return apiErr(CodeSubjectNotFound, "Subject '%s' not found.", subj)
			}
			prev = m
			return nil
		})
		if err != nil {
			return nil, 0, -1, err
		}
		off, err := s.store.write(ctx, rec{key: modeKey(subj)})
		if err != nil {
			return nil, 0, -1, apiErr(CodeStoreError, "Failed to delete mode: %v", err)
		}
		return map[string]string{"mode": prev}, 200, off, nil
	})
}
