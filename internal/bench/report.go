package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// µs converts d to fractional microseconds.
func µs(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// BenchLine formats r as one Go benchfmt line (one iteration whose ns/op is
// the whole run), for benchstat:
//
//	BenchmarkSluiceProduce/records=1000000/size=100/... 1 812000000 ns/op 1231527 rec/s 123.2 MB/s 131.0 p50-µs 402.0 p99-µs 1210.0 p99.9-µs
func (r *Result) BenchLine() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s 1 %d ns/op %.0f rec/s %.2f MB/s", r.BenchName(), r.Elapsed.Nanoseconds(), r.RecordsPerSec(), r.MBPerSec())
	if r.Latency != nil && r.Latency.Count() > 0 {
		fmt.Fprintf(&b, " %.1f p50-µs %.1f p99-µs %.1f p99.9-µs %.1f max-µs",
			µs(r.Latency.Quantile(0.5)), µs(r.Latency.Quantile(0.99)), µs(r.Latency.Quantile(0.999)), µs(r.Latency.Max()))
	}
	return b.String()
}

// WriteText prints r for people, followed by its BenchLine. No line but the
// benchfmt one looks like a benchfmt "key: value" configuration line, so the
// output can be fed to benchstat as it is.
func (r *Result) WriteText(w io.Writer) error {
	c := r.Config
	verb, prep := "Produced", "to"
	if r.Op == "consume" {
		verb, prep = "Consumed", "from"
	}
	fmt.Fprintf(w, "%s %d records of %d bytes %s %s (%d partitions", verb, r.Records, c.RecordSize, prep, c.Topic, r.Partitions)
	if r.Op == "produce" {
		mode := ""
		if c.Sequential {
			mode = ", sequential"
		}
		fmt.Fprintf(w, ", acks=%s, compression=%s, idempotent=%t%s, clients=%d", c.Acks, c.Compression, !c.NoIdempotence, mode, c.Clients)
	}
	fmt.Fprintf(w, ") in %v\n", r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "  throughput %.0f rec/s, %.2f MB/s\n", r.RecordsPerSec(), r.MBPerSec())
	if h := r.Latency; h != nil && h.Count() > 0 {
		fmt.Fprintf(w, "  latency p50 %v, p99 %v, p99.9 %v, max %v, mean %v\n",
			roundDur(h.Quantile(0.5)), roundDur(h.Quantile(0.99)), roundDur(h.Quantile(0.999)), roundDur(h.Max()), roundDur(h.Mean()))
	}
	_, err := fmt.Fprintln(w, r.BenchLine())
	return err
}

// roundDur keeps three significant digits or so.
func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d >= time.Microsecond:
		return d.Round(100 * time.Nanosecond)
	}
	return d
}

// jsonResult is the --output json form of a Result.
type jsonResult struct {
	Op            string       `json:"op"`
	Topic         string       `json:"topic"`
	Partitions    int32        `json:"partitions"`
	Records       int64        `json:"records"`
	RecordSize    int          `json:"record_size"`
	Bytes         int64        `json:"bytes"`
	ElapsedNs     int64        `json:"elapsed_ns"`
	RecordsPerSec float64      `json:"records_per_sec"`
	MBPerSec      float64      `json:"mb_per_sec"`
	Acks          string       `json:"acks,omitempty"`
	Compression   string       `json:"compression,omitempty"`
	Idempotent    *bool        `json:"idempotent,omitempty"`
	Sequential    bool         `json:"sequential,omitempty"`
	Clients       int          `json:"clients,omitempty"`
	LatencyUs     *jsonLatency `json:"latency_us,omitempty"`
	Benchfmt      string       `json:"benchfmt"`
}

type jsonLatency struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// WriteJSON prints r as one JSON object.
func (r *Result) WriteJSON(w io.Writer) error {
	c := r.Config
	j := jsonResult{
		Op: r.Op, Topic: c.Topic, Partitions: r.Partitions, Records: r.Records, RecordSize: c.RecordSize,
		Bytes: r.Bytes, ElapsedNs: r.Elapsed.Nanoseconds(),
		RecordsPerSec: round2(r.RecordsPerSec()), MBPerSec: round2(r.MBPerSec()), Benchfmt: r.BenchLine(),
	}
	if r.Op == "produce" {
		idem := !c.NoIdempotence
		j.Acks, j.Compression, j.Idempotent, j.Sequential, j.Clients = c.Acks, c.Compression, &idem, c.Sequential, c.Clients
	}
	if h := r.Latency; h != nil && h.Count() > 0 {
		j.LatencyUs = &jsonLatency{
			P50: round2(µs(h.Quantile(0.5))), P99: round2(µs(h.Quantile(0.99))), P999: round2(µs(h.Quantile(0.999))),
			Max: round2(µs(h.Max())), Mean: round2(µs(h.Mean())),
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(j)
}

func round2(f float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'f', 2, 64), 64)
	return v
}
