package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Output selects how results are printed.
type Output int

const (
	// Text is plain text laid out for people (the default).
	Text Output = iota
	// JSON is one JSON document per result, for scripts.
	JSON
)

// ParseOutput parses the --output flag: "text" (or "") and "json".
func ParseOutput(s string) (Output, error) {
	switch strings.ToLower(s) {
	case "", "text":
		return Text, nil
	case "json":
		return JSON, nil
	}
	return 0, fmt.Errorf("invalid --output %q: want text or json", s)
}

// String returns the flag spelling of o.
func (o Output) String() string {
	if o == JSON {
		return "json"
	}
	return "text"
}

// writeJSON writes v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ParseKeyValues parses repeated k=v flags (--config, --header) in order.
// flag names the flag in errors. Keys must not be empty; values may be.
func ParseKeyValues(flag string, kvs []string) ([][2]string, error) {
	out := make([][2]string, 0, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid --%s %q: want key=value", flag, kv)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// WriteDone reports a completed change to a topic: the sentence text, or
// {"topic": topic, "result": result} in JSON.
func WriteDone(w io.Writer, out Output, topic, result, text string) error {
	if out == JSON {
		return json.NewEncoder(w).Encode(struct {
			Topic  string `json:"topic"`
			Result string `json:"result"`
		}{topic, result})
	}
	_, err := fmt.Fprintln(w, text)
	return err
}
