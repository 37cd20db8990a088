package connect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Config configures a Server: a worker plus its REST API.
type Config struct {
	// Brokers are the franz-go options of the worker's clients; at least
	// kgo.SeedBrokers. Required.
	Brokers []kgo.Opt
	// Listen is the HTTP listen address; default "127.0.0.1:8083".
	Listen string
	// Listener, if set, is used instead of listening on Listen.
	Listener net.Listener
	// Plugins are the connectors the worker can run.
	Plugins []Plugin
	// WorkerID names the worker in statuses; default the listen address.
	WorkerID string
	// Logger receives the logs; default discards.
	Logger *slog.Logger
	// ExactlyOnceSource enables exactly-once source tasks; see the
	// ExactlyOnceSource option.
	ExactlyOnceSource bool
	// GroupID, if set, runs the worker in distributed mode with the other
	// workers of this group; see the GroupID option.
	GroupID string
}

// Server is a connect worker serving Kafka Connect's REST API.
type Server struct {
	w   *Worker
	ln  net.Listener
	srv *http.Server
}

// NewServer starts listening and builds the worker; Run serves.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8083"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("connect: Config.Brokers is required")
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("connect: listen: %w", err)
		}
	}
	opts := []Opt{Brokers(cfg.Brokers...), Plugins(cfg.Plugins...), Logger(cfg.Logger), WorkerID(cmp(cfg.WorkerID, ln.Addr().String()))}
	if cfg.ExactlyOnceSource {
		opts = append(opts, ExactlyOnceSource())
	}
	if cfg.GroupID != "" {
		opts = append(opts, GroupID(cfg.GroupID))
	}
	w, err := NewWorker(opts...)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &Server{w: w, ln: ln, srv: &http.Server{Handler: Handler(w), ReadHeaderTimeout: 10 * time.Second}}, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL returns the server's base URL.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Worker returns the server's worker.
func (s *Server) Worker() *Worker { return s.w }

// Run runs the worker and serves until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- s.w.Run(ctx) }()
	go func() {
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	var err error
	select {
	case <-ctx.Done():
		err = <-errc
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(sctx)
	return err
}

// Close stops serving and closes the worker. It is idempotent.
func (s *Server) Close() error {
	s.srv.Close()
	return s.w.Close()
}

// Handler serves Kafka Connect's REST API over w.
func Handler(w *Worker) http.Handler {
	h := &handler{w: w}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.root)
	mux.HandleFunc("GET /connectors", h.list)
	mux.HandleFunc("POST /connectors", h.create)
	mux.HandleFunc("GET /connectors/{name}", h.info)
	mux.HandleFunc("DELETE /connectors/{name}", h.delete)
	mux.HandleFunc("GET /connectors/{name}/config", h.getConfig)
	mux.HandleFunc("PUT /connectors/{name}/config", h.putConfig)
	mux.HandleFunc("GET /connectors/{name}/status", h.status)
	mux.HandleFunc("POST /connectors/{name}/restart", h.restart)
	mux.HandleFunc("PUT /connectors/{name}/pause", h.target(w.Pause))
	mux.HandleFunc("PUT /connectors/{name}/resume", h.target(w.Resume))
	mux.HandleFunc("PUT /connectors/{name}/stop", h.target(w.Stop))
	mux.HandleFunc("GET /connectors/{name}/offsets", h.offsets)
	mux.HandleFunc("GET /connectors/{name}/tasks", h.tasks)
	mux.HandleFunc("GET /connectors/{name}/tasks/{task}/status", h.taskStatus)
	mux.HandleFunc("POST /connectors/{name}/tasks/{task}/restart", h.taskRestart)
	mux.HandleFunc("GET /connector-plugins", h.plugins)
	mux.HandleFunc("PUT /connector-plugins/{class}/config/validate", h.validate)
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		// Answer unknown paths and methods with Kafka Connect's JSON errors.
		if _, pattern := mux.Handler(r); pattern == "" {
			code := http.StatusNotFound
			if r.Method != http.MethodGet {
				// The mux reports a known path with another method as 405.
				probe := r.Clone(r.Context())
				probe.Method = http.MethodGet
				if _, p := mux.Handler(probe); p != "" {
					code = http.StatusMethodNotAllowed
				}
			}
			writeError(rw, code, http.StatusText(code))
			return
		}
		mux.ServeHTTP(rw, r)
	})
}

type handler struct{ w *Worker }

func writeJSON(rw http.ResponseWriter, code int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(code)
	_ = json.NewEncoder(rw).Encode(v)
}

func writeError(rw http.ResponseWriter, code int, msg string) {
	writeJSON(rw, code, map[string]any{"error_code": code, "message": msg})
}

// fail maps a Worker error to Kafka Connect's status codes.
func fail(rw http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrExists):
		code = http.StatusConflict
	case errors.Is(err, ErrBadRequest):
		code = http.StatusBadRequest
	case errors.Is(err, ErrClosed):
		code = http.StatusServiceUnavailable
	}
	msg := err.Error()
	var ice *InvalidConfigError
	if !errors.As(err, &ice) {
		// Drop the sentinel's "connect: not found: " prefix for the message.
		for _, s := range []error{ErrNotFound, ErrExists, ErrBadRequest} {
			if p := s.Error() + ": "; len(msg) > len(p) && msg[:len(p)] == p {
				msg = msg[len(p):]
			}
		}
	}
	writeError(rw, code, msg)
}

func (h *handler) root(rw http.ResponseWriter, _ *http.Request) {
	writeJSON(rw, http.StatusOK, map[string]string{"version": "sluice", "commit": "", "kafka_cluster_id": ""})
}

func (h *handler) list(rw http.ResponseWriter, r *http.Request) {
	names, err := h.w.Connectors(r.Context())
	if err != nil {
		fail(rw, err)
		return
	}
	expand := r.URL.Query()["expand"]
	if len(expand) == 0 {
		writeJSON(rw, http.StatusOK, names)
		return
	}
	out := map[string]map[string]any{}
	for _, n := range names {
		m := map[string]any{}
		if slices.Contains(expand, "status") {
			if s, err := h.w.Status(r.Context(), n); err == nil {
				m["status"] = s
			}
		}
		if slices.Contains(expand, "info") {
			if in, err := h.w.Info(r.Context(), n); err == nil {
				m["info"] = in
			}
		}
		out[n] = m
	}
	writeJSON(rw, http.StatusOK, out)
}

func (h *handler) create(rw http.ResponseWriter, r *http.Request) {
	var body struct {
		Name   string            `json:"name"`
		Config map[string]string `json:"config"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(rw, http.StatusBadRequest, "Invalid request body: "+err.Error())
		return
	}
	if body.Name == "" {
		writeError(rw, http.StatusBadRequest, "Connector name is required")
		return
	}
	if body.Config == nil {
		writeError(rw, http.StatusBadRequest, "Connector config is required")
		return
	}
	in, err := h.w.Create(r.Context(), body.Name, body.Config)
	if err != nil {
		fail(rw, err)
		return
	}
	rw.Header().Set("Location", "/connectors/"+body.Name)
	writeJSON(rw, http.StatusCreated, in)
}

func (h *handler) info(rw http.ResponseWriter, r *http.Request) {
	in, err := h.w.Info(r.Context(), r.PathValue("name"))
	if err != nil {
		fail(rw, err)
		return
	}
	writeJSON(rw, http.StatusOK, in)
}

func (h *handler) delete(rw http.ResponseWriter, r *http.Request) {
	if err := h.w.Delete(r.Context(), r.PathValue("name")); err != nil {
		fail(rw, err)
		return
	}
	rw.WriteHeader(http.StatusNoContent)
}

func (h *handler) getConfig(rw http.ResponseWriter, r *http.Request) {
	in, err := h.w.Info(r.Context(), r.PathValue("name"))
	if err != nil {
		fail(rw, err)
		return
	}
	writeJSON(rw, http.StatusOK, in.Config)
}

func (h *handler) putConfig(rw http.ResponseWriter, r *http.Request) {
	var cfg map[string]string
	if err := json.NewDecoder(r.Body).Decode(&cfg); err != nil || cfg == nil {
		writeError(rw, http.StatusBadRequest, "Invalid request body: want a JSON object of string values")
		return
	}
	created, in, err := h.w.PutConfig(r.Context(), r.PathValue("name"), cfg)
	if err != nil {
		fail(rw, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
		rw.Header().Set("Location", "/connectors/"+in.Name)
	}
	writeJSON(rw, code, in)
}

func (h *handler) status(rw http.ResponseWriter, r *http.Request) {
	s, err := h.w.Status(r.Context(), r.PathValue("name"))
	if err != nil {
		fail(rw, err)
		return
	}
	writeJSON(rw, http.StatusOK, s)
}

func boolParam(r *http.Request, name string) (bool, bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return false, false, nil
	}
	b, err := strconv.ParseBool(s)
	return b, true, err
}

func (h *handler) restart(rw http.ResponseWriter, r *http.Request) {
	includeTasks, set1, err1 := boolParam(r, "includeTasks")
	onlyFailed, set2, err2 := boolParam(r, "onlyFailed")
	if err := errors.Join(err1, err2); err != nil {
		writeError(rw, http.StatusBadRequest, "includeTasks and onlyFailed must be true or false")
		return
	}
	name := r.PathValue("name")
	if err := h.w.Restart(r.Context(), name, includeTasks, onlyFailed); err != nil {
		fail(rw, err)
		return
	}
	if !set1 && !set2 {
		rw.WriteHeader(http.StatusNoContent)
		return
	}
	s, err := h.w.Status(r.Context(), name)
	if err != nil {
		fail(rw, err)
		return
	}
	writeJSON(rw, http.StatusAccepted, s)
}

func (h *handler) target(fn func(context.Context, string) error) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		if err := fn(r.Context(), r.PathValue("name")); err != nil {
			fail(rw, err)
			return
		}
		rw.WriteHeader(http.StatusAccepted)
	}
}

func (h *handler) offsets(rw http.ResponseWriter, r *http.Request) {
	os, err := h.w.Offsets(r.Context(), r.PathValue("name"))
	if err != nil {
		fail(rw, err)
		return
	}
	writeJSON(rw, http.StatusOK, map[string]any{"offsets": os})
}

func (h *handler) tasks(rw http.ResponseWriter, r *http.Request) {
	ts, err := h.w.Tasks(r.Context(), r.PathValue("name"))
	if err != nil {
		fail(rw, err)
		return
	}
	writeJSON(rw, http.StatusOK, ts)
}

func (h *handler) taskID(rw http.ResponseWriter, r *http.Request) (int, bool) {
	id, err := strconv.Atoi(r.PathValue("task"))
	if err != nil {
		writeError(rw, http.StatusNotFound, "Task "+r.PathValue("task")+" not found")
		return 0, false
	}
	return id, true
}

func (h *handler) taskStatus(rw http.ResponseWriter, r *http.Request) {
	id, ok := h.taskID(rw, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	s, err := h.w.Status(r.Context(), name)
	if err != nil {
		fail(rw, err)
		return
	}
	for _, ts := range s.Tasks {
		if *ts.ID == id {
			writeJSON(rw, http.StatusOK, ts)
			return
		}
	}
	writeError(rw, http.StatusNotFound, fmt.Sprintf("No status found for task %s-%d", name, id))
}

func (h *handler) taskRestart(rw http.ResponseWriter, r *http.Request) {
	id, ok := h.taskID(rw, r)
	if !ok {
		return
	}
	if err := h.w.RestartTask(r.Context(), r.PathValue("name"), id); err != nil {
		fail(rw, err)
		return
	}
	rw.WriteHeader(http.StatusNoContent)
}

// PluginInfo describes a plugin, as GET /connector-plugins lists it.
type PluginInfo struct {
	Class   string `json:"class"`
	Type    string `json:"type"`
	Version string `json:"version"`
}

// Plugins returns the worker's connector plugins, sorted by class.
func (w *Worker) Plugins() []PluginInfo {
	out := []PluginInfo{}
	for _, p := range w.plugins.list {
		out = append(out, PluginInfo{p.Class, p.Type(), p.Version})
	}
	return out
}

func (h *handler) plugins(rw http.ResponseWriter, _ *http.Request) {
	writeJSON(rw, http.StatusOK, h.w.Plugins())
}

// ValidateResult is the body of PUT /connector-plugins/{class}/config/validate.
type ValidateResult struct {
	Name       string        `json:"name"`
	ErrorCount int           `json:"error_count"`
	Groups     []string      `json:"groups"`
	Configs    []ConfigValue `json:"configs"`
}

// ConfigValue is one configuration name in a ValidateResult.
type ConfigValue struct {
	Definition ConfigDefinition `json:"definition"`
	Value      ConfigValueState `json:"value"`
}

// ConfigDefinition is a ConfigKey as the validate endpoint reports it.
type ConfigDefinition struct {
	Name          string   `json:"name"`
	Type          string   `json:"type"`
	Required      bool     `json:"required"`
	DefaultValue  *string  `json:"default_value"`
	Importance    string   `json:"importance"`
	Documentation string   `json:"documentation"`
	Group         *string  `json:"group"`
	Dependents    []string `json:"dependents"`
}

// ConfigValueState is the submitted value of a name and its errors.
type ConfigValueState struct {
	Name              string   `json:"name"`
	Value             *string  `json:"value"`
	RecommendedValues []string `json:"recommended_values"`
	Errors            []string `json:"errors"`
	Visible           bool     `json:"visible"`
}

// Validate validates a configuration for the plugin named class, as the
// validate endpoint does. It returns ErrNotFound for an unknown class.
func (w *Worker) Validate(class string, config map[string]string) (ValidateResult, error) {
	p, ok := w.plugins.lookup(class)
	if !ok {
		return ValidateResult{}, fmt.Errorf("%w: Connector plugin %s not found", ErrNotFound, class)
	}
	config = maps.Clone(config)
	if config["connector.class"] == "" {
		config["connector.class"] = class
	}
	_, errs := w.validate(config)
	keys := slices.Clone(workerKeys)
	var d Definer
	if p.Source != nil {
		d, _ = p.Source().(Definer)
	} else {
		d, _ = p.Sink().(Definer)
	}
	if d != nil {
		keys = append(keys, d.ConfigDef()...)
	}
	known := map[string]bool{}
	for _, k := range keys {
		known[k.Name] = true
	}
	for _, n := range slices.Sorted(maps.Keys(config)) {
		if !known[n] {
			keys = append(keys, ConfigKey{Name: n, Type: "STRING", Importance: "LOW"})
			known[n] = true
		}
	}
	for _, e := range errs {
		if !known[e.Key] {
			keys = append(keys, ConfigKey{Name: e.Key, Type: "STRING", Importance: "LOW"})
			known[e.Key] = true
		}
	}
	res := ValidateResult{Name: p.Class, ErrorCount: len(errs), Groups: []string{"Common"}, Configs: []ConfigValue{}}
	for _, k := range keys {
		cv := ConfigValue{Definition: ConfigDefinition{Name: k.Name, Type: k.Type, Required: k.Required, Importance: k.Importance,
			Documentation: k.Doc, Dependents: []string{}},
			Value: ConfigValueState{Name: k.Name, RecommendedValues: []string{}, Errors: []string{}, Visible: true}}
		if k.Default != "" {
			cv.Definition.DefaultValue = new(k.Default)
		}
		if v, ok := config[k.Name]; ok {
			cv.Value.Value = new(v)
		}
		for _, e := range errs {
			if e.Key == k.Name {
				cv.Value.Errors = append(cv.Value.Errors, e.Message)
			}
		}
		res.Configs = append(res.Configs, cv)
	}
	return res, nil
}

func (h *handler) validate(rw http.ResponseWriter, r *http.Request) {
	var cfg map[string]string
	if err := json.NewDecoder(r.Body).Decode(&cfg); err != nil || cfg == nil {
		writeError(rw, http.StatusBadRequest, "Invalid request body: want a JSON object of string values")
		return
	}
	class := r.PathValue("class")
	if c := cfg["connector.class"]; c != "" && c != class {
		if p, ok := h.w.plugins.lookup(c); !ok || p.Class != class {
			if q, ok := h.w.plugins.lookup(class); !ok || q.Class != p.Class {
				writeError(rw, http.StatusBadRequest, "Included connector type "+c+" does not match request type "+class)
				return
			}
		}
	}
	res, err := h.w.Validate(class, cfg)
	if err != nil {
		fail(rw, err)
		return
	}
	writeJSON(rw, http.StatusOK, res)
}
