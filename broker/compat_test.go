package broker_test

// Compatibility tests with clients that no one here wrote: kcat (librdkafka),
// kafka-python and confluent-kafka-python (librdkafka again, through its
// Python binding). Each test drives the external client against
// startBroker's address and checks what it did with franz-go, so a
// disagreement between clients about offsets, order, keys, values, headers,
// timestamps or compression shows up as a diff.
//
// The clients come from Debian (kcat, python3-kafka,
// python3-confluent-kafka; .ci/run installs them). A test whose client is
// missing skips, unless SLUICE_REQUIRE_COMPAT=1, when it fails.

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// codecs are the record batch compression codecs, by the name kcat,
// librdkafka and kafka-python use, with the batch attribute value (bits 0-2).
var codecs = []struct {
	name  string
	attr  uint8
	kgoID kgo.CompressionCodec
}{
	{"none", 0, kgo.NoCompression()},
	{"gzip", 1, kgo.GzipCompression()},
	{"snappy", 2, kgo.SnappyCompression()},
	{"lz4", 3, kgo.Lz4Compression()},
	{"zstd", 4, kgo.ZstdCompression()},
}

// compressible returns a value that compresses well. librdkafka sends a
// batch uncompressed when compressing does not make it smaller, so values in
// codec tests must be compressible for the codec check to mean anything.
func compressible(prefix string, i int) string {
	return fmt.Sprintf("%s-%04d-%s", prefix, i, strings.Repeat("sluice", 20+i%7))
}

// kcatFormat is kcat's -f output format for consumed records: fields split by
// tabs, so keys and values in these tests never contain tabs or newlines.
const kcatFormat = `%p\t%o\t%k\t%s\t%T\t%h\n`

// parseKcat parses kcat -C output written with kcatFormat.
func parseKcat(t *testing.T, out string) []rec {
	t.Helper()
	var rs []rec
	for line := range strings.Lines(out) {
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 6 {
			t.Fatalf("kcat output %q: %v: want 6 tab-separated fields, got %d", line, errParse, len(f))
		}
		p, err1 := strconv.ParseInt(f[0], 10, 32)
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		ts, err3 := strconv.ParseInt(f[4], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("kcat output %q: %v: bad partition, offset or timestamp", line, errParse)
		}
		rs = append(rs, rec{Partition: int32(p), Offset: o, Key: f[2], Value: f[3], Timestamp: ts, Headers: f[5]})
	}
	return rs
}

// kcatConsume runs kcat -C with -e and kcatFormat plus args and parses what
// it printed.
func kcatConsume(t *testing.T, addr, topic string, args ...string) []rec {
	t.Helper()
	out := runExt(t, "", "kcat", append([]string{
		"-C", "-b", addr, "-t", topic, "-e", "-q", "-K:", "-f", kcatFormat,
	}, args...)...)
	return parseKcat(t, out)
}

// kcatProduce produces "key:value" lines to topic/p with kcat -P plus args.
func kcatProduce(t *testing.T, addr, topic string, p int32, lines []string, args ...string) {
	t.Helper()
	runExt(t, strings.Join(lines, "\n")+"\n", "kcat", append([]string{
		"-P", "-b", addr, "-t", topic, "-p", strconv.Itoa(int(p)), "-K:",
		// Fail rather than retry forever if the broker rejects the records.
		"-X", "message.timeout.ms=60000",
	}, args...)...)
}

// byPartition splits rs by partition, keeping the order within each.
func byPartition(rs []rec) map[int32][]rec {
	m := make(map[int32][]rec)
	for _, r := range rs {
		m[r.Partition] = append(m[r.Partition], r)
	}
	return m
}

// TestKcatProduceConsume produces keyed records with kcat -P -K: -p N into
// three partitions and reads them back with kcat -C from the beginning, from
// a given partition and offset, and with franz-go: all three must agree on
// partition, offset, key and value, with offsets 0.. in produce order.
func TestKcatProduceConsume(t *testing.T) {
	requireClient(t, "kcat", probeKcat)
	addr := startBroker(t)
	const partitions, perPartition = 3, 40
	topic := newTopic(t, addr, "kcat-pc", partitions)

	var want []rec
	for p := range int32(partitions) {
		var lines []string
		for i := range perPartition {
			k, v := fmt.Sprintf("key-%d-%d", p, i), fmt.Sprintf("value-%d-%d", p, i)
			lines = append(lines, k+":"+v)
			want = append(want, rec{Partition: p, Offset: int64(i), Key: k, Value: v})
		}
		kcatProduce(t, addr, topic, p, lines)
	}
	wantBy := byPartition(want)

	t.Run("kcat from beginning", func(t *testing.T) {
		got := byPartition(kcatConsume(t, addr, topic, "-o", "beginning"))
		for p := range int32(partitions) {
			diffRecs(t, fmt.Sprintf("kcat -C -o beginning, partition %d", p), got[p], wantBy[p], sameKV)
		}
		if len(got) != partitions {
			t.Fatalf("kcat saw partitions %v, want %d", got, partitions)
		}
	})
	t.Run("kcat partition and offset", func(t *testing.T) {
		const p, off = 1, 17
		got := kcatConsume(t, addr, topic, "-p", strconv.Itoa(p), "-o", strconv.Itoa(off))
		diffRecs(t, "kcat -C -p 1 -o 17", got, wantBy[p][off:], sameKV)
	})
	t.Run("kcat offset at end", func(t *testing.T) {
		// -o at the high watermark with -e: nothing, and a clean exit.
		got := kcatConsume(t, addr, topic, "-p", "2", "-o", strconv.Itoa(perPartition))
		diffRecs(t, "kcat -C -p 2 -o end", got, nil, sameKV)
	})
	t.Run("franz-go", func(t *testing.T) {
		for p := range int32(partitions) {
			got := consumeFrom(t, addr, topic, p, 0)
			diffRecs(t, fmt.Sprintf("franz-go partition %d", p), got, wantBy[p], sameKV)
		}
	})
}

// TestKcatCodecs checks every codec kcat supports in both directions:
// kcat -P -z CODEC read by franz-go, which must see the same records and a
// batch compressed with CODEC (librdkafka silently falls back to no
// compression when the broker's ApiVersions ranges disappoint it, see
// COMPAT.md), and franz-go producing CODEC batches with headers and explicit
// timestamps read by kcat, which must print the same offsets, keys, values,
// headers and timestamps.
func TestKcatCodecs(t *testing.T) {
	requireClient(t, "kcat", probeKcat)
	addr := startBroker(t)
	for _, c := range codecs {
		t.Run(c.name+"/kcat to franz-go", func(t *testing.T) {
			topic := newTopic(t, addr, "kcat-z-"+c.name, 2)
			const p, n = 1, 60
			var lines []string
			var want []rec
			for i := range n {
				k, v := fmt.Sprintf("k%d", i), compressible("kcat", i)
				lines = append(lines, k+":"+v)
				want = append(want, rec{Partition: p, Offset: int64(i), Key: k, Value: v, Headers: "origin=kcat,run=" + c.name})
			}
			// -H adds the same headers to every record.
			kcatProduce(t, addr, topic, p, lines, "-z", c.name, "-H", "origin=kcat", "-H", "run="+c.name)
			got := consumeFrom(t, addr, topic, p, 0)
			diffRecs(t, "franz-go reading kcat -z "+c.name,
				got, want, func(a, b rec) bool { return sameKV(a, b) && a.Headers == b.Headers })
			for _, r := range got {
				if r.Codec != c.attr {
					t.Fatalf("record %s: batch codec %d, want %d (%s): kcat did not compress", r, r.Codec, c.attr, c.name)
				}
			}
			// And kcat reads its own records back.
			diffRecs(t, "kcat reading kcat -z "+c.name,
				kcatConsume(t, addr, topic, "-p", strconv.Itoa(p), "-o", "beginning"),
				got, func(a, b rec) bool { return sameKV(a, b) && a.Headers == b.Headers && a.Timestamp == b.Timestamp })
		})

		t.Run(c.name+"/franz-go to kcat", func(t *testing.T) {
			topic := newTopic(t, addr, "kgo-z-"+c.name, 3)
			cl := newClient(t, addr, kgo.ProducerBatchCompression(c.kgoID))
			base := time.UnixMilli(1_700_000_000_000)
			var rs []*kgo.Record
			for i := range 90 {
				p := int32(i % 3)
				rs = append(rs, &kgo.Record{
					Topic: topic, Partition: p,
					Key:   fmt.Appendf(nil, "k%d", i),
					Value: []byte(compressible("kgo", i)),
					Headers: []kgo.RecordHeader{
						{Key: "h1", Value: fmt.Appendf(nil, "v%d", i)},
						{Key: "h2", Value: []byte("x")},
					},
					// Explicit, not monotonic: CreateTime is the producer's.
					Timestamp: base.Add(time.Duration((i*7919)%1000) * time.Second),
				})
			}
			produceSync(t, cl, rs...)
			var want []rec
			for _, r := range rs {
				want = append(want, fromKgo(r))
			}
			wantBy := byPartition(want)
			for p := range int32(3) {
				fg := consumeFrom(t, addr, topic, p, 0)
				diffRecs(t, fmt.Sprintf("franz-go reading franz-go %s, partition %d", c.name, p), fg, wantBy[p], sameAll)
				for _, r := range fg {
					if r.Codec != c.attr {
						t.Fatalf("record %s: batch codec %d, want %d (%s)", r, r.Codec, c.attr, c.name)
					}
				}
			}
			gotBy := byPartition(kcatConsume(t, addr, topic, "-o", "beginning"))
			for p := range int32(3) {
				diffRecs(t, fmt.Sprintf("kcat reading franz-go %s, partition %d", c.name, p), gotBy[p], wantBy[p], sameAll)
			}
			// A given partition and offset.
			diffRecs(t, "kcat -p 2 -o 11",
				kcatConsume(t, addr, topic, "-p", "2", "-o", "11"), wantBy[2][11:], sameAll)
		})
	}
}
