package broker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker/brokertest"
)

// startBroker starts an in-process broker on 127.0.0.1 with an ephemeral
// port, stopped when t ends, and returns the address clients dial. Tests use
// nothing but the address and real clients.
func startBroker(t *testing.T) (addr string) {
	t.Helper()
	return brokertest.Start(t).Addr()
}

// requireCompatEnv is the environment variable that turns a missing external
// client from a skip into a failure. CI sets it, so a broken install step
// cannot hide behind skipped tests.
const requireCompatEnv = "SLUICE_REQUIRE_COMPAT"

// requireClient runs probe and, when it fails, skips t with a message naming
// the client and how to install it, or fails t if SLUICE_REQUIRE_COMPAT=1.
func requireClient(t *testing.T, name string, probe func() error) {
	t.Helper()
	err := probe()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("compat client %s is not available: %v "+
		"(install with: apt-get install -y --no-install-recommends kcat python3-kafka python3-confluent-kafka)",
		name, err)
	if os.Getenv(requireCompatEnv) == "1" {
		t.Fatalf("%s; %s=1 so this is a failure", msg, requireCompatEnv)
	}
	t.Skipf("%s; skipping (set %s=1 to make this a failure)", msg, requireCompatEnv)
}

// pythonPath is the interpreter Debian's python3-kafka and
// python3-confluent-kafka install into.
const pythonPath = "/usr/bin/python3"

// probeKcat reports whether kcat is on PATH and runs.
func probeKcat() error {
	path, err := exec.LookPath("kcat")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// kcat -V exits 0 and prints its librdkafka version.
	if out, err := exec.CommandContext(ctx, path, "-V").CombinedOutput(); err != nil {
		return fmt.Errorf("%s -V: %w: %s", path, err, out)
	}
	return nil
}

// probePythonModule returns a probe that imports module with /usr/bin/python3.
func probePythonModule(module string) func() error {
	return func() error {
		if _, err := os.Stat(pythonPath); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, pythonPath, "-c", "import "+module).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s -c 'import %s': %w: %s", pythonPath, module, err, bytes.TrimSpace(out))
		}
		return nil
	}
}

// extTimeout bounds one run of an external client. Generous: the CI machine
// has two cores and runs the race detector next to it.
const extTimeout = 90 * time.Second

// runExt runs an external command with stdin, bounded by extTimeout and by
// the test's context (the process is killed when either ends), and returns
// its stdout. On any failure it fails t and prints the command's stderr.
func runExt(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	stdout, stderr, err := runExtErr(t, stdin, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n--- stderr ---\n%s\n--- stdout ---\n%s",
			name, quoteArgs(args), err, stderr, stdout)
	}
	if testing.Verbose() && stderr != "" {
		t.Logf("%s stderr:\n%s", name, stderr)
	}
	return stdout
}

// runExtErr is runExt that returns the error instead of failing t.
func runExtErr(t *testing.T, stdin string, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), extTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	// A client that ignores SIGKILL's pipes closing must not hang the test.
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("killed after %s: %w (run error: %v)", extTimeout, ctx.Err(), err)
	}
	return so.String(), se.String(), err
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \t\n'\"\\") {
			a = fmt.Sprintf("%q", a)
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// topicSeq makes topic names unique within the test binary.
var topicSeq atomic.Int64

// newTopic creates a topic with the given partition count and replication
// factor 1, and returns its name (prefix plus a sequence number).
func newTopic(t *testing.T, addr, prefix string, partitions int32) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", prefix, topicSeq.Add(1))
	adm := kadm.NewClient(newClient(t, addr))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s with %d partitions: %v", name, partitions, err)
	}
	return name
}

// newClient returns a franz-go client for addr, closed when t ends.
func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}, opts...)...)
	if err != nil {
		t.Fatalf("new franz-go client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceSync produces rs (each with its Topic and Partition set) with
// franz-go, waits for every ack, and fills in their offsets.
func produceSync(t *testing.T, cl *kgo.Client, rs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("franz-go produce: %v", err)
	}
}

// rec is a record as the tests compare it. Headers and timestamps are
// compared only where a test sets them.
type rec struct {
	Partition int32
	Offset    int64
	Key       string
	Value     string
	Headers   string // "k=v,k=v" in order, like kcat's %h
	Timestamp int64  // unix milliseconds
	Codec     uint8  // the batch's compression codec, franz-go side only
}

func (r rec) String() string {
	return fmt.Sprintf("p%d@%d %q=%q h[%s] ts=%d", r.Partition, r.Offset, r.Key, r.Value, r.Headers, r.Timestamp)
}

func fromKgo(r *kgo.Record) rec {
	hs := make([]string, len(r.Headers))
	for i, h := range r.Headers {
		hs[i] = h.Key + "=" + string(h.Value)
	}
	return rec{
		Partition: r.Partition,
		Offset:    r.Offset,
		Key:       string(r.Key),
		Value:     string(r.Value),
		Headers:   strings.Join(hs, ","),
		Timestamp: r.Timestamp.UnixMilli(),
		Codec:     r.Attrs.CompressionType(),
	}
}

// consumeFrom reads partition p of topic from offset with franz-go until it
// has the partition's high watermark (as ListOffsets reports it now), and
// returns what it read in offset order.
func consumeFrom(t *testing.T, addr, topic string, p int32, offset int64, opts ...kgo.Opt) []rec {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	end := highWatermark(t, addr, topic, p)
	if offset >= end {
		return nil
	}
	cl := newClient(t, addr, append([]kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			topic: {p: kgo.NewOffset().At(offset)},
		}),
	}, opts...)...)
	var out []rec
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("franz-go consume %s/%d from %d: timed out at %d records (want up to offset %d): %v",
				topic, p, offset, len(out), end, ctx.Err())
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("franz-go consume %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		for r := range fs.RecordsAll() {
			out = append(out, fromKgo(r))
			if r.Offset+1 >= end {
				return out
			}
		}
	}
}

// highWatermark returns the end offset of topic/p.
func highWatermark(t *testing.T, addr, topic string, p int32) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(newClient(t, addr))
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	o, ok := ends.Lookup(topic, p)
	if !ok {
		t.Fatalf("list end offsets of %s: no partition %d", topic, p)
	}
	return o.Offset
}

// diffRecs fails t with a readable diff when got and want differ. cmp picks
// the fields compared.
func diffRecs(t *testing.T, what string, got, want []rec, cmp func(a, b rec) bool) {
	t.Helper()
	if len(got) == len(want) && slices.EqualFunc(got, want, cmp) {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: got %d records, want %d\n", what, len(got), len(want))
	shown := 0
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i].String()
		}
		if i < len(want) {
			w = want[i].String()
		}
		if i < len(got) && i < len(want) && cmp(got[i], want[i]) {
			continue
		}
		fmt.Fprintf(&b, "  [%d] got  %s\n       want %s\n", i, g, w)
		if shown++; shown >= 10 {
			b.WriteString("  ...\n")
			break
		}
	}
	t.Fatal(b.String())
}

// sameKV compares partition, offset, key and value.
func sameKV(a, b rec) bool {
	return a.Partition == b.Partition && a.Offset == b.Offset && a.Key == b.Key && a.Value == b.Value
}

// sameAll compares every field but Codec.
func sameAll(a, b rec) bool {
	return sameKV(a, b) && a.Headers == b.Headers && a.Timestamp == b.Timestamp
}

// errParse marks malformed output from an external client.
var errParse = errors.New("unparseable client output")
