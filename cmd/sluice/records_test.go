package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestProduceConsume(t *testing.T) {
	b := "--brokers=" + startCluster(t)
	mustRun(t, "", "topics", "create", "events", b)

	in := "k1:hello\nk2:world:again\nno key here\n\nlast line without newline"
	if out := mustRun(t, in, "produce", "events", "--key-separator", ":", b); out != "" {
		t.Fatalf("produce printed %q on success, want nothing", out)
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"default format", []string{"--max", "3"}, "hello\nworld:again\nno key here\n"},
		{"key and value", []string{"--max", "5", "--format", `%k=%v\n`},
			"k1=hello\nk2=world:again\n=no key here\n=\n=last line without newline\n"},
		{"position verbs", []string{"--max", "2", "--format", `%t/%p/%o\t%%\n`}, "events/0/0\t%\nevents/0/1\t%\n"},
		{"from offset", []string{"--offset", "3", "--max", "2", "--format", `%o:%v|`}, "3:|4:last line without newline|"},
		{"partition and offset", []string{"--partition", "0", "--offset", "1", "--max", "1"}, "world:again\n"},
		{"until idle", []string{"--timeout", "300ms", "--format", `%o `}, "0 1 2 3 4 "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"consume", "events", b}, tt.args...)
			if !strings.Contains(strings.Join(tt.args, " "), "--offset") {
				args = append(args, "--from-beginning")
			}
			if got := mustRun(t, "", args...); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("timestamp", func(t *testing.T) {
		out := mustRun(t, "", "consume", "events", "--from-beginning", "--max", "1", "--format", `%T`, b)
		ms, err := strconv.ParseInt(out, 10, 64)
		if err != nil || time.Since(time.UnixMilli(ms)).Abs() > time.Hour {
			t.Fatalf("%%T printed %q, want a recent Unix time in ms", out)
		}
	})

	t.Run("json", func(t *testing.T) {
		out := mustRun(t, "", "consume", "events", "--from-beginning", "--max", "3", "-o", "json", b)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 {
			t.Fatalf("want 3 JSON lines, got:\n%s", out)
		}
		var r struct {
			Topic     string  `json:"topic"`
			Partition int32   `json:"partition"`
			Offset    int64   `json:"offset"`
			Timestamp int64   `json:"timestamp"`
			Key       *string `json:"key"`
			Value     string  `json:"value"`
		}
		decode(t, lines[1], &r)
		if r.Topic != "events" || r.Offset != 1 || r.Key == nil || *r.Key != "k2" || r.Value != "world:again" || r.Timestamp == 0 {
			t.Fatalf("second record = %+v", r)
		}
		decode(t, lines[2], &r)
		if r.Key != nil {
			t.Fatalf("record without key has key %q, want null", *r.Key)
		}
	})
}

func TestProduceHeadersPartitionVerbose(t *testing.T) {
	b := "--brokers=" + startCluster(t)
	mustRun(t, "", "topics", "create", "h", "--partitions", "2", b)
	_, errOut, err := run(t, "a\nb\n", "produce", "h", "--partition", "1", "--header", "src=test", "--header", "n=1",
		"--acks", "1", "--compression", "zstd", "--verbose", b)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, "produced 2 records to h") {
		t.Fatalf("--verbose printed %q", errOut)
	}
	out := mustRun(t, "", "consume", "h", "--partition", "1", "--offset", "earliest", "--max", "2", "--format", `%p %v %h\n`, b)
	if want := "1 a src=test,n=1\n1 b src=test,n=1\n"; out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
	// Partition 0 got nothing: consuming it stops at the idle timeout.
	if out := mustRun(t, "", "consume", "h", "--partition", "0", "--from-beginning", "--timeout", "200ms", b); out != "" {
		t.Fatalf("partition 0 printed %q, want nothing", out)
	}
}

func TestConsumeGroupCommits(t *testing.T) {
	b := "--brokers=" + startCluster(t)
	mustRun(t, "", "topics", "create", "g", b)
	mustRun(t, "one\ntwo\nthree\n", "produce", "g", b)

	if out := mustRun(t, "", "consume", "g", "--group", "readers", "--from-beginning", "--max", "2", b); out != "one\ntwo\n" {
		t.Fatalf("first member printed %q", out)
	}
	// The group committed what was printed, so the next member resumes
	// after it, whatever --offset says.
	if out := mustRun(t, "", "consume", "g", "--group", "readers", "--from-beginning", "--max", "1", b); out != "three\n" {
		t.Fatalf("second member printed %q, want the third record", out)
	}
}

func TestConsumeMissingTopic(t *testing.T) {
	b := "--brokers=" + startCluster(t)
	wantErr(t, "", []string{"consume", "nope", "--max", "1", b}, `topic "nope" does not exist`)
}
