package broker_test

// Consumer-group compatibility with clients that no one here wrote: kcat's
// balanced consumer (-G), confluent-kafka-python's Consumer and
// kafka-python's KafkaConsumer, each with a group id. franz-go produces and
// checks committed offsets; the client's reads and commits must agree.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"maps"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produceGroupRecords produces n records to each of partitions partitions
// of topic, keyed "k<p>-<i>" with values "v<p>-<i>", i counting from first,
// and returns them.
func produceGroupRecords(t *testing.T, cl *kgo.Client, topic string, partitions int32, first, n int) []rec {
	t.Helper()
	var rs []*kgo.Record
	for p := range partitions {
		for i := first; i < first+n; i++ {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: p,
				Key: fmt.Appendf(nil, "k%d-%d", p, i), Value: fmt.Appendf(nil, "v%d-%d", p, i)})
		}
	}
	produceSync(t, cl, rs...)
	out := make([]rec, len(rs))
	for i, r := range rs {
		out[i] = fromKgo(r)
	}
	return out
}

// diffByPartition compares got and want partition by partition, in offset
// order within each, on partition, offset, key and value.
func diffByPartition(t *testing.T, what string, got, want []rec) {
	t.Helper()
	g, w := byPartition(got), byPartition(want)
	for p := range w {
		diffRecs(t, fmt.Sprintf("%s, partition %d", what, p), g[p], w[p], sameKV)
	}
	for p := range g {
		if _, ok := w[p]; !ok {
			diffRecs(t, fmt.Sprintf("%s, partition %d", what, p), g[p], nil, sameKV)
		}
	}
}

// TestKcatGroupConsumer reads with kcat's balanced consumer (-G, librdkafka's
// KafkaConsumer) from the beginning to the end (-e): everything franz-go
// produced, with offsets committed when kcat closes. A second run in the
// same group reads nothing; a third reads only what was produced since.
func TestKcatGroupConsumer(t *testing.T) {
	requireClient(t, "kcat", probeKcat)
	addr := startGroupBroker(t)
	const partitions, n = 3, 30
	topic := newTopic(t, addr, "kcat-group", partitions)
	group := newGroupName("kcat")
	cl := newClient(t, addr)
	adm := kadm.NewClient(cl)
	kcatGroup := func() []rec {
		t.Helper()
		// Not -o beginning: in -G mode kcat assigns every partition at
		// that offset in its rebalance callback, ignoring the committed
		// offsets. auto.offset.reset applies only without a commit.
		// -e exits once every assigned partition reached its end.
		return parseKcat(t, runExt(t, "", "kcat", "-b", addr, "-G", group,
			"-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=10000",
			"-e", "-q", "-f", kcatFormat, topic))
	}

	want := produceGroupRecords(t, cl, topic, partitions, 0, n)
	diffByPartition(t, "kcat -G, first run", kcatGroup(), want)
	wantCommitted := map[int32]int64{0: n, 1: n, 2: n}
	if got := committedOffsets(t, adm, group, topic); !maps.Equal(got, wantCommitted) {
		t.Fatalf("offsets committed by kcat -G: %v, want %v", got, wantCommitted)
	}
	diffByPartition(t, "kcat -G, second run with nothing new", kcatGroup(), nil)
	more := produceGroupRecords(t, cl, topic, partitions, n, 7)
	diffByPartition(t, "kcat -G, third run after producing more", kcatGroup(), more)
	wantCommitted = map[int32]int64{0: n + 7, 1: n + 7, 2: n + 7}
	if got := committedOffsets(t, adm, group, topic); !maps.Equal(got, wantCommitted) {
		t.Fatalf("offsets committed by kcat -G after the third run: %v, want %v", got, wantCommitted)
	}
}

// extProc is an external client running in the background whose stdout the
// test reads line by line while it runs.
type extProc struct {
	name   string
	args   []string
	lines  chan string
	done   chan struct{}
	cancel context.CancelFunc

	stderr bytes.Buffer // written by exec until done is closed
	err    error        // set before done is closed
}

// startExt starts name with args, bounded by extTimeout and by t, and kills
// it when t ends.
func startExt(t *testing.T, name string, args ...string) *extProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), extTimeout)
	p := &extProc{name: name, args: args, lines: make(chan string, 10_000), done: make(chan struct{}), cancel: cancel}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &p.stderr
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		cancel()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.err = cmd.Wait()
		if ctx.Err() != nil {
			p.err = fmt.Errorf("killed after %s or at the end of the test: %w (run error: %v)", extTimeout, ctx.Err(), p.err)
		}
		cancel()
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
	})
	return p
}

// waitLine reads lines until one equals want, returning those before it.
func (p *extProc) waitLine(t *testing.T, want string) []string {
	t.Helper()
	var before []string
	timeout := time.After(extTimeout)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				p.wait(t)
				t.Fatalf("%s exited without printing %q; it printed %q", p.name, want, before)
			}
			if l == want {
				return before
			}
			before = append(before, l)
		case <-timeout:
			t.Fatalf("%s did not print %q within %s; it printed %q", p.name, want, extTimeout, before)
		}
	}
}

// wait waits for the process to exit and returns the lines not read yet,
// failing t if it failed.
func (p *extProc) wait(t *testing.T) []string {
	t.Helper()
	var rest []string
	for l := range p.lines { // closed when stdout closes; the process is bounded by extTimeout
		rest = append(rest, l)
	}
	<-p.done
	if p.err != nil {
		t.Fatalf("%s %s: %v\n--- stderr ---\n%s\n--- unread stdout ---\n%s",
			p.name, quoteArgs(p.args[min(2, len(p.args)):]), p.err, p.stderr.String(), strings.Join(rest, "\n"))
	}
	if testing.Verbose() && p.stderr.Len() > 0 {
		t.Logf("%s stderr:\n%s", p.name, p.stderr.String())
	}
	return rest
}

// pyGroupPrelude is shared by the group consumer scripts.
//
// argv: ADDR TOPIC GROUP MODE RESET EXPECT SPEC TIMEOUT_SECONDS
//
//	MODE   auto:   auto commit on; read to the end of every assigned partition; close.
//	       manual: auto commit off; read to the end; commit each partition's last
//	               message synchronously, then the offsets in SPEC; print what is
//	               committed; close.
//	       count:  auto commit off; once positioned, read EXPECT records; close.
//	       seek:   auto commit off; once positioned at the end, seek to the offsets
//	               in SPEC and read those partitions to the end again; close.
//	RESET  auto.offset.reset: earliest or latest.
//	SPEC   "p=o,p=o" or "-".
//
// stdout: "ready" once the consumer has its assignment and is positioned (in
// auto, manual and seek: has read to the end); "seeked" after seeking;
// "consumed<TAB>partition<TAB>offset<TAB>key<TAB>value" per record;
// "committed<TAB>partition<TAB>offset" per assigned partition in manual mode.
const pyGroupPrelude = `
import os, signal, sys, time

def fail(msg):
    sys.stderr.write(CLIENT + ": " + msg + "\n")
    sys.stderr.flush()
    os._exit(2)

if len(sys.argv) != 9:
    fail("usage: ADDR TOPIC GROUP MODE RESET EXPECT SPEC TIMEOUT_SECONDS")
addr, topic, group, mode, reset = sys.argv[1:6]
expect, timeout = int(sys.argv[6]), float(sys.argv[8])
spec = {}
if sys.argv[7] != "-":
    for kv in sys.argv[7].split(","):
        p, o = kv.split("=")
        spec[int(p)] = int(o)
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

def out(*fields):
    sys.stdout.write("\t".join(str(f) for f in fields) + "\n")
    sys.stdout.flush()
`

// confluentGroupScript drives confluent-kafka-python's Consumer with a
// group.id; see pyGroupPrelude. The end of a partition is librdkafka's
// _PARTITION_EOF event (enable.partition.eof).
const confluentGroupScript = `CLIENT = "confluent-kafka-python"
` + pyGroupPrelude + `
from confluent_kafka import Consumer, KafkaError, TopicPartition

assigned = set()
def on_assign(c, parts):
    assigned.update(tp.partition for tp in parts)
def on_revoke(c, parts):
    assigned.difference_update(tp.partition for tp in parts)

c = Consumer({"bootstrap.servers": addr, "group.id": group, "client.id": "sluice-compat",
              "enable.auto.commit": mode == "auto", "auto.offset.reset": reset,
              "enable.partition.eof": True, "session.timeout.ms": 10000})
c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)

eof = set()
last = {}
consumed = 0
def poll_once():
    global consumed
    m = c.poll(min(left(), 0.5))
    if m is None:
        return
    if m.error():
        if m.error().code() == KafkaError._PARTITION_EOF:
            eof.add(m.partition())
            return
        fail("consume: %s" % m.error())
    eof.discard(m.partition())
    last[m.partition()] = m
    consumed += 1
    out("consumed", m.partition(), m.offset(), m.key().decode(), m.value().decode())

while not assigned or not assigned <= eof:
    poll_once()
out("ready")

if mode == "manual":
    for m in last.values():
        c.commit(message=m, asynchronous=False)
    if spec:
        c.commit(offsets=[TopicPartition(topic, p, o) for p, o in spec.items()], asynchronous=False)
    for tp in c.committed([TopicPartition(topic, p) for p in sorted(assigned)], timeout=left()):
        if tp.error:
            fail("committed: %s" % tp.error)
        out("committed", tp.partition, tp.offset)
elif mode == "count":
    while consumed < expect:
        poll_once()
elif mode == "seek":
    for p, o in spec.items():
        c.seek(TopicPartition(topic, p, o))
        eof.discard(p)
    out("seeked")
    while not set(spec) <= eof:
        poll_once()
c.close()
`

// kafkaPythonGroupScript drives kafka-python's KafkaConsumer with a
// group_id; see pyGroupPrelude. The end of a partition is its end offset
// when the consumer got positioned.
const kafkaPythonGroupScript = `CLIENT = "kafka-python"
` + pyGroupPrelude + `
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

c = KafkaConsumer(bootstrap_servers=[addr], group_id=group, client_id="sluice-compat",
                  enable_auto_commit=(mode == "auto"), auto_offset_reset=reset,
                  api_version_auto_timeout_ms=30000, request_timeout_ms=30000,
                  session_timeout_ms=10000, heartbeat_interval_ms=1000)
c.subscribe([topic])

consumed = 0
def poll_once():
    global consumed
    for batch in c.poll(timeout_ms=int(min(left(), 0.5) * 1000)).values():
        for r in batch:
            consumed += 1
            out("consumed", r.partition, r.offset, r.key.decode(), r.value.decode())

def read_to_end(tps):
    ends = c.end_offsets(list(tps))
    while any(c.position(tp) < ends[tp] for tp in tps):
        poll_once()

while not c.assignment():
    poll_once()
tps = sorted(c.assignment(), key=lambda tp: tp.partition)
for tp in tps:
    c.position(tp)  # blocks until the committed offset or the reset policy positioned it
if mode in ("auto", "manual"):
    read_to_end(tps)
out("ready")

if mode == "manual":
    c.commit()  # the consumed positions, synchronously
    if spec:
        c.commit({TopicPartition(topic, p): OffsetAndMetadata(o, None) for p, o in spec.items()})
    for tp in tps:
        out("committed", tp.partition, c.committed(tp))
elif mode == "count":
    while consumed < expect:
        poll_once()
elif mode == "seek":
    for p, o in spec.items():
        c.seek(TopicPartition(topic, p), o)
    out("seeked")
    read_to_end([TopicPartition(topic, p) for p in spec])
c.close()
`

// pyGroupRun is what a group script printed: records consumed before
// "ready", after it (and before "seeked"), after "seeked", and the committed
// offsets it reported.
type pyGroupRun struct {
	beforeReady, afterReady, afterSeek []rec
	committed                          map[int32]int64
}

// parsePyGroup parses a group script's stdout lines.
func parsePyGroup(t *testing.T, lines []string) pyGroupRun {
	t.Helper()
	res := pyGroupRun{committed: make(map[int32]int64)}
	cur := &res.beforeReady
	for _, line := range lines {
		f := strings.Split(line, "\t")
		bad := func() { t.Fatalf("script output %q: %v", line, errParse) }
		switch {
		case line == "ready":
			cur = &res.afterReady
		case line == "seeked":
			cur = &res.afterSeek
		case f[0] == "consumed" && len(f) == 5:
			p, err1 := strconv.ParseInt(f[1], 10, 32)
			o, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 != nil || err2 != nil {
				bad()
			}
			*cur = append(*cur, rec{Partition: int32(p), Offset: o, Key: f[3], Value: f[4]})
		case f[0] == "committed" && len(f) == 3:
			p, err1 := strconv.ParseInt(f[1], 10, 32)
			o, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 != nil || err2 != nil {
				bad()
			}
			res.committed[int32(p)] = o
		default:
			bad()
		}
	}
	return res
}

// pyGroupScript runs a group script to completion.
func pyGroupScript(t *testing.T, script, addr, topic, group, mode, reset string, expect int, spec string) pyGroupRun {
	t.Helper()
	p := startPyGroup(t, script, addr, topic, group, mode, reset, expect, spec)
	return parsePyGroup(t, p.wait(t))
}

func startPyGroup(t *testing.T, script, addr, topic, group, mode, reset string, expect int, spec string) *extProc {
	t.Helper()
	return startExt(t, pythonPath, "-c", script, addr, topic, group, mode, reset,
		strconv.Itoa(expect), spec, strconv.Itoa(int(extTimeout/time.Second)-10))
}

// filterRecs returns the records of rs that keep accepts.
func filterRecs(rs []rec, keep func(rec) bool) []rec {
	var out []rec
	for _, r := range rs {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

// plainClient is a franz-go client that produces uncompressed batches:
// franz-go defaults to snappy, which Debian's kafka-python cannot read.
func plainClient(t *testing.T, addr string) *kgo.Client {
	t.Helper()
	return newClient(t, addr, kgo.ProducerBatchCompression(kgo.NoCompression()))
}

// pyGroupSuite checks a Python client's group consumer: auto commit,
// manual commits, auto.offset.reset latest and seeking after assignment.
func pyGroupSuite(t *testing.T, addr, script string) {
	const partitions, n = 3, 20
	all := func(o int64) map[int32]int64 { return map[int32]int64{0: o, 1: o, 2: o} }

	t.Run("auto commit", func(t *testing.T) {
		topic := newTopic(t, addr, "py-group-auto", partitions)
		group := newGroupName("py-auto")
		cl := plainClient(t, addr)
		adm := kadm.NewClient(cl)
		want := produceGroupRecords(t, cl, topic, partitions, 0, n)
		res := pyGroupScript(t, script, addr, topic, group, "auto", "earliest", 0, "-")
		diffByPartition(t, "first run from earliest", res.beforeReady, want)
		if got := committedOffsets(t, adm, group, topic); !maps.Equal(got, all(n)) {
			t.Fatalf("auto-committed offsets after the first run: %v, want %v", got, all(n))
		}
		more := produceGroupRecords(t, cl, topic, partitions, n, 5)
		res = pyGroupScript(t, script, addr, topic, group, "auto", "earliest", 0, "-")
		diffByPartition(t, "second run: only the new records", res.beforeReady, more)
		if got := committedOffsets(t, adm, group, topic); !maps.Equal(got, all(n+5)) {
			t.Fatalf("auto-committed offsets after the second run: %v, want %v", got, all(n+5))
		}
	})

	t.Run("manual commit", func(t *testing.T) {
		topic := newTopic(t, addr, "py-group-manual", partitions)
		group := newGroupName("py-manual")
		cl := plainClient(t, addr)
		adm := kadm.NewClient(cl)
		want := produceGroupRecords(t, cl, topic, partitions, 0, n)
		// Commit every partition's last message, then partition 0 back at 7.
		res := pyGroupScript(t, script, addr, topic, group, "manual", "earliest", 0, "0=7")
		diffByPartition(t, "manual run from earliest", res.beforeReady, want)
		wantCommitted := map[int32]int64{0: 7, 1: n, 2: n}
		if !maps.Equal(res.committed, wantCommitted) {
			t.Fatalf("committed offsets as the client reports them: %v, want %v", res.committed, wantCommitted)
		}
		if got := committedOffsets(t, adm, group, topic); !maps.Equal(got, wantCommitted) {
			t.Fatalf("committed offsets as franz-go fetches them: %v, want %v", got, wantCommitted)
		}
		// The next member resumes from the commits: partition 0 from 7.
		res = pyGroupScript(t, script, addr, topic, group, "manual", "earliest", 0, "-")
		diffByPartition(t, "second run from the committed offsets", res.beforeReady,
			filterRecs(want, func(r rec) bool { return r.Partition == 0 && r.Offset >= 7 }))
		if got := committedOffsets(t, adm, group, topic); !maps.Equal(got, all(n)) {
			t.Fatalf("committed offsets after the second run: %v, want %v", got, all(n))
		}
	})

	t.Run("offset reset latest", func(t *testing.T) {
		topic := newTopic(t, addr, "py-group-latest", partitions)
		group := newGroupName("py-latest")
		cl := plainClient(t, addr)
		produceGroupRecords(t, cl, topic, partitions, 0, n)
		const more = 4
		p := startPyGroup(t, script, addr, topic, group, "count", "latest", partitions*more, "-")
		if before := p.waitLine(t, "ready"); len(before) > 0 {
			t.Fatalf("a new group with auto.offset.reset latest read %q before anything new was produced", before)
		}
		want := produceGroupRecords(t, cl, topic, partitions, n, more)
		res := parsePyGroup(t, p.wait(t))
		diffByPartition(t, "records read with auto.offset.reset latest", res.beforeReady, want)
	})

	t.Run("seek after assignment", func(t *testing.T) {
		topic := newTopic(t, addr, "py-group-seek", partitions)
		group := newGroupName("py-seek")
		cl := plainClient(t, addr)
		want := produceGroupRecords(t, cl, topic, partitions, 0, n)
		res := pyGroupScript(t, script, addr, topic, group, "seek", "latest", 0, "1=12,2=0")
		if len(res.beforeReady)+len(res.afterReady) > 0 {
			t.Fatalf("read %v before seeking, positioned at the end", append(res.beforeReady, res.afterReady...))
		}
		diffByPartition(t, "records read after seeking partition 1 to 12 and 2 to 0", res.afterSeek,
			filterRecs(want, func(r rec) bool { return r.Partition == 1 && r.Offset >= 12 || r.Partition == 2 }))
	})
}

// TestConfluentKafkaPythonGroupConsumer runs confluent-kafka-python's
// group Consumer (librdkafka) through pyGroupSuite.
func TestConfluentKafkaPythonGroupConsumer(t *testing.T) {
	requireClient(t, "confluent-kafka-python", probePythonModule("confluent_kafka"))
	pyGroupSuite(t, startGroupBroker(t), confluentGroupScript)
}

// TestKafkaPythonGroupConsumer runs kafka-python's KafkaConsumer with a
// group_id through pyGroupSuite.
func TestKafkaPythonGroupConsumer(t *testing.T) {
	requireClient(t, "kafka-python", probePythonModule("kafka"))
	pyGroupSuite(t, startGroupBroker(t), kafkaPythonGroupScript)
}
