package main

import (
	"regexp"
	"strings"
	"testing"
)

// benchLine matches a benchfmt result line with the metrics sluice bench reports.
var benchLine = regexp.MustCompile(`(?m)^BenchmarkSluice(Produce|Consume)/records=(\d+)/size=(\d+)/partitions=(\d+)\S* 1 \d+ ns/op [\d.]+ rec/s [\d.]+ MB/s( [\d.]+ p50-µs [\d.]+ p99-µs [\d.]+ p99.9-µs [\d.]+ max-µs)?$`)

func TestBenchProduceConsume(t *testing.T) {
	b := "--brokers=" + startCluster(t)

	out := mustRun(t, "", "bench", "produce", "--records", "3000", "--record-size", "64", "--partitions", "2", "--quiet", b)
	m := benchLine.FindStringSubmatch(out)
	if m == nil || m[1] != "Produce" || m[2] != "3000" || m[3] != "64" || m[4] != "2" || m[5] == "" {
		t.Fatalf("bench produce output has no matching benchfmt line:\n%s", out)
	}
	if !strings.Contains(out, "Produced 3000 records of 64 bytes to sluice-bench") || !strings.Contains(out, "latency p50") {
		t.Fatalf("bench produce output lacks the summary:\n%s", out)
	}

	out = mustRun(t, "", "bench", "consume", "--records", "3000", "--quiet", b)
	if m := benchLine.FindStringSubmatch(out); m == nil || m[1] != "Consume" || m[4] != "2" || m[5] != "" {
		t.Fatalf("bench consume output has no matching benchfmt line:\n%s", out)
	}

	var res struct {
		Op        string  `json:"op"`
		Records   int64   `json:"records"`
		Bytes     int64   `json:"bytes"`
		RecPerSec float64 `json:"records_per_sec"`
		Latency   *struct {
			P50, P99, Max float64
		} `json:"latency_us"`
		Benchfmt string `json:"benchfmt"`
	}
	decode(t, mustRun(t, "", "bench", "produce", "--sequential", "--records", "20", "--topic", "seq", "-o", "json", "-q", b), &res)
	if res.Op != "produce" || res.Records != 20 || res.Bytes != 2000 || res.RecPerSec <= 0 || res.Latency == nil ||
		res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max ||
		!strings.Contains(res.Benchfmt, "mode=sequential") {
		t.Fatalf("bench produce --sequential -o json = %+v", res)
	}
}

func TestBenchConsumeProduceFirst(t *testing.T) {
	b := "--brokers=" + startCluster(t)
	out := mustRun(t, "", "bench", "consume", "--produce-first", "--records", "500", "--acks", "1", "--clients", "2", "--compression", "snappy", "-q", b)
	if got := len(benchLine.FindAllString(out, -1)); got != 2 {
		t.Fatalf("want a produce and a consume benchfmt line, got %d:\n%s", got, out)
	}
	if !strings.Contains(out, "idempotent=false") {
		t.Fatalf("--acks 1 should turn off idempotence:\n%s", out)
	}
}

func TestBenchConsumeMissingTopic(t *testing.T) {
	b := "--brokers=" + startCluster(t)
	wantErr(t, "", []string{"bench", "consume", "--records", "5", "--topic", "none", "-q", b},
		`topic "none" does not exist: run `+"`sluice bench produce --topic none --records 5`"+` first, or pass --produce-first`)
}

func TestBenchConsumeTooFewRecords(t *testing.T) {
	b := "--brokers=" + startCluster(t)
	mustRun(t, "", "bench", "produce", "--records", "10", "--topic", "few", "-q", b)
	wantErr(t, "", []string{"bench", "consume", "--records", "20", "--topic", "few", "--idle", "300ms", "-q", b},
		`gave only 10 of 20 records`, "--produce-first")
}
