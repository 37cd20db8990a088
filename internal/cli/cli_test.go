package cli

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestFormatter(t *testing.T) {
	r := &kgo.Record{
		Topic: "t", Partition: 3, Offset: 42, Key: []byte("k"), Value: []byte("v"),
		Timestamp: time.UnixMilli(1700000000123),
		Headers:   []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("")}},
	}
	tests := []struct {
		format, want string
	}{
		{`%v\n`, "v\n"},
		{`%k:%v`, "k:v"},
		{`%t[%p]@%o`, "t[3]@42"},
		{`%T`, "1700000000123"},
		{`%h`, "a=1,b="},
		{`100%% \\ \t\r`, "100% \\ \t\r"},
		{`plain`, "plain"},
		{``, ""},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			f, err := NewFormatter(tt.format)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(f.Append(nil, r)); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	for _, bad := range []string{`%`, `%x`, `\`, `\q`} {
		if _, err := NewFormatter(bad); err == nil {
			t.Errorf("NewFormatter(%q) = nil error, want one", bad)
		}
	}
}

func TestParseBrokers(t *testing.T) {
	got, err := ParseBrokers(" a:1, b:2,,")
	if err != nil || len(got) != 2 || got[0] != "a:1" || got[1] != "b:2" {
		t.Fatalf("ParseBrokers = %q, %v", got, err)
	}
	for _, bad := range []string{"", ",", "a", "a:1,b"} {
		if _, err := ParseBrokers(bad); err == nil {
			t.Errorf("ParseBrokers(%q) = nil error, want one", bad)
		}
	}
}

func TestParseStart(t *testing.T) {
	for _, s := range []string{"earliest", "latest", "", "0", "17"} {
		if _, err := ParseStart(s); err != nil {
			t.Errorf("ParseStart(%q): %v", s, err)
		}
	}
	for _, s := range []string{"-1", "x", "1.5"} {
		if _, err := ParseStart(s); err == nil {
			t.Errorf("ParseStart(%q) = nil error, want one", s)
		}
	}
}

func TestTopicErrorMessages(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{topicErr("create", "x", kerr.TopicAlreadyExists, ""), `topic "x" already exists`},
		{topicErr("delete", "x", kerr.UnknownTopicOrPartition, ""), `topic "x" does not exist (see ` + "`sluice topics list`)"},
		{topicErr("create", "x", kerr.InvalidConfig, "bad retention.ms"), `cannot create topic "x": invalid config: bad retention.ms`},
		{topicErr("create", "x", kerr.PolicyViolation, ""), `cannot create topic "x": POLICY_VIOLATION: ` + kerr.PolicyViolation.Description},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	if err := topicErr("create", "x", kerr.TopicAlreadyExists, ""); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Error("TopicError does not unwrap to the Kafka error")
	}
	if topicErr("create", "x", nil, "") != nil {
		t.Error("topicErr(nil) != nil")
	}
}

func TestUnreachableError(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	err := error(&UnreachableError{Brokers: []string{"h:1", "h:2"}, Err: fmt.Errorf("wrapped: %w", dial)})
	want := "cannot reach broker at h:1,h:2: connection refused (is `sluice broker` running? set --brokers or SLUICE_BROKERS)"
	if err.Error() != want {
		t.Fatalf("got %q, want %q", err, want)
	}
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatal("UnreachableError does not unwrap to ErrUnreachable and the cause")
	}
}
