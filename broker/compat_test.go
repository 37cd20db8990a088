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

// pyPrelude is shared by the Python scripts: argv parsing, a hard deadline,
// and the stdin record format.
//
// argv: ADDR TOPIC PARTITION SEEK_OFFSET CODEC TIMEOUT_SECONDS
// stdin: one record per line, "key<TAB>value<TAB>timestamp_ms<TAB>h=v,h=v".
// stdout: "produced<TAB>partition<TAB>offset" per record in stdin order, then
// "consumed<TAB>partition<TAB>offset<TAB>key<TAB>value<TAB>timestamp_ms<TAB>h=v,h=v"
// for every record from SEEK_OFFSET to the end of the partition.
const pyPrelude = `
import os, signal, sys, time

def fail(msg):
    sys.stderr.write(CLIENT + ": " + msg + "\n")
    sys.stderr.flush()
    os._exit(2)

if len(sys.argv) != 7:
    fail("usage: ADDR TOPIC PARTITION SEEK_OFFSET CODEC TIMEOUT_SECONDS")
addr, topic = sys.argv[1], sys.argv[2]
part, seek = int(sys.argv[3]), int(sys.argv[4])
codec, timeout = sys.argv[5], float(sys.argv[6])
deadline = time.monotonic() + timeout

def on_alarm(signum, frame):
    fail("timed out after %.0fs" % timeout)
signal.signal(signal.SIGALRM, on_alarm)
signal.alarm(int(timeout) + 1)

def left():
    d = deadline - time.monotonic()
    if d <= 0:
        fail("timed out after %.0fs" % timeout)
    return d

records = []
for line in sys.stdin.read().splitlines():
    k, v, ts, hs = line.split("\t")
    headers = [tuple(h.split("=", 1)) for h in hs.split(",")] if hs else []
    records.append((k.encode(), v.encode(), int(ts), [(hk, hv.encode()) for hk, hv in headers]))

def out(*fields):
    sys.stdout.write("\t".join(str(f) for f in fields) + "\n")

def hdrs(headers):
    return ",".join("%s=%s" % (k, (v or b"").decode()) for k, v in (headers or []))
`

// kafkaPythonScript produces with KafkaProducer(acks='all'), then reads with
// KafkaConsumer assign + seek. kafka-python probes the broker version with
// ApiVersions v0 and gives up with UnrecognizedBrokerVersion if that is
// slow, hence the generous api_version_auto_timeout_ms.
const kafkaPythonScript = `CLIENT = "kafka-python"
` + pyPrelude + `
import kafka
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

common = dict(bootstrap_servers=[addr], api_version_auto_timeout_ms=30000,
              request_timeout_ms=30000, client_id="sluice-compat")
try:
    producer = KafkaProducer(acks="all", linger_ms=5, retries=0,
                             compression_type=None if codec == "none" else codec, **common)
except Exception as e:
    fail("KafkaProducer: %r" % (e,))
sys.stderr.write("kafka-python %s, broker version guessed as %s\n" % (kafka.__version__, producer.config["api_version"]))
futures = [producer.send(topic, key=k, value=v, partition=part, timestamp_ms=ts, headers=h)
           for k, v, ts, h in records]
producer.flush(timeout=left())
for f in futures:
    try:
        md = f.get(timeout=left())
    except Exception as e:
        fail("produce: %r" % (e,))
    out("produced", md.partition, md.offset)
producer.close(timeout=left())

consumer = KafkaConsumer(group_id=None, enable_auto_commit=False, **common)
tp = TopicPartition(topic, part)
consumer.assign([tp])
consumer.seek(tp, seek)
end = consumer.end_offsets([tp])[tp]
pos = seek
while pos < end:
    for batch in consumer.poll(timeout_ms=int(min(left(), 1) * 1000)).values():
        for r in batch:
            out("consumed", r.partition, r.offset, r.key.decode(), r.value.decode(), r.timestamp, hdrs(r.headers))
            pos = r.offset + 1
consumer.close()
`

// confluentKafkaScript produces with an idempotent Producer (acks all), then
// reads with Consumer.assign at an offset. The consumer keeps librdkafka's
// default isolation.level, read_committed, so it relies on the broker's last
// stable offset even though no transaction is involved.
const confluentKafkaScript = `CLIENT = "confluent-kafka-python"
` + pyPrelude + `
import confluent_kafka
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

sys.stderr.write("confluent-kafka %s, librdkafka %s\n" % (confluent_kafka.version()[0], confluent_kafka.libversion()[0]))
producer = Producer({"bootstrap.servers": addr, "acks": "all", "enable.idempotence": True,
                     "compression.type": codec, "linger.ms": 5, "message.timeout.ms": 30000,
                     "client.id": "sluice-compat"})
offsets = [None] * len(records)
errors = []
def delivered(i):
    def cb(err, msg):
        if err is not None:
            errors.append("record %d: %s" % (i, err))
        else:
            offsets[i] = (msg.partition(), msg.offset())
    return cb
for i, (k, v, ts, h) in enumerate(records):
    while True:
        try:
            producer.produce(topic, key=k, value=v, partition=part, timestamp=ts, headers=h, on_delivery=delivered(i))
            break
        except BufferError:
            producer.poll(min(left(), 0.1))
    producer.poll(0)
if producer.flush(left()) != 0:
    fail("flush: records still undelivered")
if errors:
    fail("produce: " + "; ".join(errors[:5]))
for p, o in offsets:
    out("produced", p, o)

consumer = Consumer({"bootstrap.servers": addr, "group.id": "sluice-compat-" + topic,
                     "enable.auto.commit": False, "enable.partition.eof": True,
                     "client.id": "sluice-compat"})
consumer.assign([TopicPartition(topic, part, seek)])
while True:
    m = consumer.poll(min(left(), 1.0))
    if m is None:
        continue
    if m.error():
        if m.error().code() == KafkaError._PARTITION_EOF:
            break
        fail("consume: %s" % m.error())
    out("consumed", m.partition(), m.offset(), m.key().decode(), m.value().decode(), m.timestamp()[1], hdrs(m.headers()))
consumer.close()
`

// pyResult is what a Python script printed.
type pyResult struct {
	produced []rec // partition and offset only
	consumed []rec
}

// parsePy parses a Python script's stdout.
func parsePy(t *testing.T, out string) pyResult {
	t.Helper()
	var res pyResult
	for line := range strings.Lines(out) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		bad := func() { t.Fatalf("script output %q: %v", line, errParse) }
		switch {
		case f[0] == "produced" && len(f) == 3:
			p, err1 := strconv.ParseInt(f[1], 10, 32)
			o, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 != nil || err2 != nil {
				bad()
			}
			res.produced = append(res.produced, rec{Partition: int32(p), Offset: o})
		case f[0] == "consumed" && len(f) == 7:
			p, err1 := strconv.ParseInt(f[1], 10, 32)
			o, err2 := strconv.ParseInt(f[2], 10, 64)
			ts, err3 := strconv.ParseInt(f[5], 10, 64)
			if err1 != nil || err2 != nil || err3 != nil {
				bad()
			}
			res.consumed = append(res.consumed, rec{Partition: int32(p), Offset: o, Key: f[3], Value: f[4], Timestamp: ts, Headers: f[6]})
		default:
			bad()
		}
	}
	return res
}

// pyRoundTrip is the Python test body: franz-go writes a few records to the
// partition first (so the script's offsets do not start at 0), the script
// produces n records with keys, headers and timestamps and then reads from
// seek, and franz-go reads the partition. The script's produced offsets, the
// script's reads and franz-go's reads must all match what was written.
func pyRoundTrip(t *testing.T, addr, script, codec string, codecAttr uint8) {
	t.Helper()
	topic := newTopic(t, addr, "py-"+codec, 2)
	const p, pre, n, seek = 1, 5, 50, 3
	base := time.UnixMilli(1_700_000_000_000)

	cl := newClient(t, addr)
	var want []rec
	for i := range pre {
		r := &kgo.Record{Topic: topic, Partition: p, Key: fmt.Appendf(nil, "pre%d", i),
			Value: fmt.Appendf(nil, "franz-go-%d", i), Timestamp: base.Add(time.Duration(i) * time.Hour)}
		produceSync(t, cl, r)
		want = append(want, fromKgo(r))
	}
	// Something in the other partition too, which the script must not see.
	produceSync(t, cl, &kgo.Record{Topic: topic, Partition: 0, Value: []byte("elsewhere")})

	var stdin strings.Builder
	for i := range n {
		r := rec{
			Partition: p, Offset: int64(pre + i),
			Key: fmt.Sprintf("key%d", i), Value: compressible("py", i),
			Timestamp: base.Add(time.Duration((i*7919)%1000) * time.Second).UnixMilli(),
		}
		if i%3 != 0 {
			r.Headers = fmt.Sprintf("trace=t%d,client=py", i)
		}
		want = append(want, r)
		fmt.Fprintf(&stdin, "%s\t%s\t%d\t%s\n", r.Key, r.Value, r.Timestamp, r.Headers)
	}

	out := runExt(t, stdin.String(), pythonPath, "-c", script,
		addr, topic, strconv.Itoa(p), strconv.Itoa(seek), codec, strconv.Itoa(int(extTimeout/time.Second)-10))
	res := parsePy(t, out)

	var wantProduced []rec
	for _, r := range want[pre:] {
		wantProduced = append(wantProduced, rec{Partition: r.Partition, Offset: r.Offset})
	}
	diffRecs(t, "offsets acknowledged to the script", res.produced, wantProduced, sameKV)
	diffRecs(t, "records the script read from offset 3", res.consumed, want[seek:], sameAll)
	fg := consumeFrom(t, addr, topic, p, 0)
	diffRecs(t, "records franz-go read", fg, want, sameAll)
	for _, r := range fg[pre:] {
		if r.Codec != codecAttr {
			t.Fatalf("record %s: batch codec %d, want %d (%s)", r, r.Codec, codecAttr, codec)
		}
	}
}

// TestKafkaPython produces and consumes with kafka-python 2.0.2 (Debian's
// python3-kafka) and compares with franz-go. Debian ships kafka-python
// without the optional snappy, lz4 and zstd modules, so only none and gzip.
func TestKafkaPython(t *testing.T) {
	requireClient(t, "kafka-python", probePythonModule("kafka"))
	addr := startBroker(t)
	for _, c := range codecs[:2] {
		t.Run(c.name, func(t *testing.T) { pyRoundTrip(t, addr, kafkaPythonScript, c.name, c.attr) })
	}
}

// TestConfluentKafkaPython produces (idempotent, acks all) and consumes
// (read_committed by default) with confluent-kafka-python and its
// librdkafka, for every codec, and compares with franz-go.
func TestConfluentKafkaPython(t *testing.T) {
	requireClient(t, "confluent-kafka-python", probePythonModule("confluent_kafka"))
	addr := startBroker(t)
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) { pyRoundTrip(t, addr, confluentKafkaScript, c.name, c.attr) })
	}
}
