package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestBenchLine(t *testing.T) {
	// One value, so every quantile is exact (at most Max); the histogram's
	// precision is tested on its own.
	h := NewHistogram()
	h.Record(150 * time.Microsecond)
	r := &Result{
		Op: "produce", Partitions: 4, Records: 1000, Bytes: 100000, Elapsed: 2 * time.Millisecond, Latency: h,
		Config: Config{Topic: "t", Records: 1000, RecordSize: 100, Acks: "all", Compression: "none", Clients: 1},
	}
	want := "BenchmarkSluiceProduce/records=1000/size=100/partitions=4/acks=all/compression=none/mode=async/clients=1 " +
		"1 2000000 ns/op 500000 rec/s 50.00 MB/s 150.0 p50-µs 150.0 p99-µs 150.0 p99.9-µs 150.0 max-µs"
	if got := r.BenchLine(); got != want {
		t.Fatalf("BenchLine:\n got %s\nwant %s", got, want)
	}

	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	// benchstat reads "key: value" lines as configuration: only the
	// benchfmt line may start like a key or a benchmark.
	for line := range strings.Lines(text.String()) {
		if k, _, ok := strings.Cut(line, ":"); ok && !strings.ContainsAny(k, " \t") {
			t.Errorf("line %q would be read as benchfmt configuration", line)
		}
	}
	if !strings.HasSuffix(text.String(), want+"\n") {
		t.Fatalf("text output does not end with the benchfmt line:\n%s", text.String())
	}

	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["benchfmt"] != want || got["records_per_sec"] != 500000.0 {
		t.Fatalf("JSON = %v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{Brokers: []string{"h:1"}}, true},
		{"no brokers", Config{}, false},
		{"acks 1 idempotent", Config{Brokers: []string{"h:1"}, Acks: "1"}, false},
		{"acks 1", Config{Brokers: []string{"h:1"}, Acks: "1", NoIdempotence: true, MaxInflight: 5}, true},
		{"inflight idempotent", Config{Brokers: []string{"h:1"}, MaxInflight: 5}, false},
		{"bad compression", Config{Brokers: []string{"h:1"}, Compression: "rar"}, false},
		{"negative linger", Config{Brokers: []string{"h:1"}, Linger: -2}, false},
		{"default linger", Config{Brokers: []string{"h:1"}, Linger: DefaultLinger, Sequential: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.ensureDefaults()
			_, err := tt.cfg.validate()
			if (err == nil) != tt.ok {
				t.Fatalf("validate = %v, want ok=%t", err, tt.ok)
			}
		})
	}
}
