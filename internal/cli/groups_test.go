package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestParseDatetime(t *testing.T) {
	plus2 := time.FixedZone("+02", 2*3600)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2024-05-01T12:00:00Z", time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)},
		{"2024-05-01T12:00:00.250Z", time.Date(2024, 5, 1, 12, 0, 0, 250e6, time.UTC)},
		{"2024-05-01T14:00:00+02:00", time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)},
		{"2024-05-01T12:00:00-05:30", time.Date(2024, 5, 1, 17, 30, 0, 0, time.UTC)},
		// Without a zone: the location given (the command passes time.Local).
		{"2024-05-01T12:00:00", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)},
		{"2024-05-01T12:00:00.5", time.Date(2024, 5, 1, 10, 0, 0, 500e6, time.UTC)},
		{"2024-05-01", time.Date(2024, 4, 30, 22, 0, 0, 0, time.UTC)},
		{" 2024-05-01T12:00:00Z ", time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDatetime(tt.in, plus2)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "yesterday", "2024-05-01 12:00:00", "2024-13-01T00:00:00", "1714564800000", "2024-05-01T12:00"} {
		t.Run("bad/"+bad, func(t *testing.T) {
			_, err := ParseDatetime(bad, plus2)
			if err == nil || !strings.Contains(err.Error(), "invalid --to-datetime") || !strings.Contains(err.Error(), "RFC 3339") {
				t.Fatalf("ParseDatetime(%q) error = %v, want one naming the accepted formats", bad, err)
			}
		})
	}
}

func TestParseTopicPartitions(t *testing.T) {
	tests := []struct {
		in    string
		topic string
		parts []int32
	}{
		{"orders", "orders", nil},
		{"orders:0", "orders", []int32{0}},
		{"orders:2,0,1,2", "orders", []int32{0, 1, 2}},
		{"orders: 3 , 1", "orders", []int32{1, 3}},
	}
	for _, tt := range tests {
		got, err := ParseTopicPartitions(tt.in)
		if err != nil {
			t.Errorf("ParseTopicPartitions(%q): %v", tt.in, err)
			continue
		}
		if got.Topic != tt.topic || !slices.Equal(got.Partitions, tt.parts) {
			t.Errorf("ParseTopicPartitions(%q) = %+v, want %s %v", tt.in, got, tt.topic, tt.parts)
		}
	}
	for _, bad := range []string{"", ":1", "orders:", "orders:x", "orders:-1", "orders:1,,2"} {
		if _, err := ParseTopicPartitions(bad); err == nil || !strings.Contains(err.Error(), "invalid --topic") {
			t.Errorf("ParseTopicPartitions(%q) error = %v, want an invalid --topic error", bad, err)
		}
	}
}

func TestWriteResetPlan(t *testing.T) {
	plan := ResetPlan{Group: "g", Target: "--to-earliest", Partitions: []PlannedOffset{
		{Topic: "orders", Partition: 0, CurrentOffset: 42, NewOffset: 0},
		{Topic: "orders", Partition: 1, CurrentOffset: -1, NewOffset: 0},
		{Topic: "payments-long-name", Partition: 10, CurrentOffset: 7, NewOffset: 3},
	}}
	tests := []struct {
		name     string
		executed bool
		want     string
	}{
		{"dry run", false, `TOPIC               PARTITION  CURRENT-OFFSET  NEW-OFFSET
orders              0          42              0
orders              1          -               0
payments-long-name  10         7               3

dry run: nothing changed; add --execute to apply
`},
		{"executed", true, `TOPIC               PARTITION  CURRENT-OFFSET  NEW-OFFSET
orders              0          42              0
orders              1          -               0
payments-long-name  10         7               3

reset 3 partitions of group g (--to-earliest)
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := plan
			p.Executed = tt.executed
			var buf bytes.Buffer
			if err := WriteResetPlan(&buf, Text, p); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tt.want {
				t.Fatalf("got:\n%s\nwant:\n%s", buf.String(), tt.want)
			}
		})
	}

	var buf bytes.Buffer
	if err := WriteResetPlan(&buf, JSON, plan); err != nil {
		t.Fatal(err)
	}
	var back ResetPlan
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("JSON plan does not parse: %v\n%s", err, buf.String())
	}
	if back.Group != "g" || back.Executed || !slices.Equal(back.Partitions, plan.Partitions) {
		t.Fatalf("JSON plan round trip = %+v", back)
	}
}

func TestResetTargetString(t *testing.T) {
	tests := []struct {
		t    ResetTarget
		want string
	}{
		{ResetTarget{Mode: ResetEarliest}, "--to-earliest"},
		{ResetTarget{Mode: ResetLatest}, "--to-latest"},
		{ResetTarget{Mode: ResetToOffset, Offset: 5}, "--to-offset 5"},
		{ResetTarget{Mode: ResetShiftBy, Offset: -3}, "--shift-by -3"},
		{ResetTarget{Mode: ResetToDatetime, Time: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}, "--to-datetime 2024-05-01T12:00:00Z"},
	}
	for _, tt := range tests {
		if got := tt.t.String(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

func TestWriteGroupDescription(t *testing.T) {
	d := GroupDescription{
		Group: "g", State: "Stable", ProtocolType: "consumer", Protocol: "range", Coordinator: "0 (127.0.0.1:9092)",
		Members: []GroupMember{{
			MemberID: "m-1", ClientID: "c", Host: "10.0.0.1",
			Assignment: []TopicPartitions{{"a", []int32{0, 1}}, {"b", []int32{2}}},
		}},
		Offsets: []PartitionLag{
			{Topic: "a", Partition: 0, CurrentOffset: 4, LogEndOffset: 10, Lag: 6, MemberID: "m-1", Host: "10.0.0.1", ClientID: "c"},
			{Topic: "a", Partition: 1, CurrentOffset: -1, LogEndOffset: 3, Lag: -1, MemberID: "m-1", Host: "10.0.0.1", ClientID: "c"},
			{Topic: "old", Partition: 0, CurrentOffset: 7, LogEndOffset: -1, Lag: -1, Error: "topic gone"},
		},
	}
	want := `Group: g  State: Stable  Protocol: consumer  Assignor: range  Coordinator: 0 (127.0.0.1:9092)

Members: 1
MEMBER-ID  INSTANCE-ID  CLIENT-ID  HOST      ASSIGNMENT
m-1        -            c          10.0.0.1  a:0,1 b:2

TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID  HOST      CLIENT-ID
a      0          4               10              6    m-1          10.0.0.1  c
a      1          -               3               -    m-1          10.0.0.1  c
old    0          7               -               -    -            -         -  topic gone
`
	var buf bytes.Buffer
	if err := WriteGroupDescriptions(&buf, Text, []GroupDescription{d}); err != nil {
		t.Fatal(err)
	}
	if buf.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestGroupErrorMessages(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{groupErr("describe", "g", kerr.GroupIDNotFound, ""), "group g does not exist (see `sluice groups list`)"},
		{&GroupError{Group: "g", Op: "reset offsets of", Err: kerr.NonEmptyGroup, Members: 2},
			"group g has 2 active members; stop them first (see `sluice groups describe g`)"},
		{&GroupError{Group: "g", Op: "reset offsets of", Err: kerr.NonEmptyGroup, Members: 1},
			"group g has 1 active member; stop them first (see `sluice groups describe g`)"},
		{groupErr("delete", "g", kerr.NonEmptyGroup, ""), "group g still has members; stop its consumers first (see `sluice groups describe g`)"},
		{groupErr("delete", "g", kerr.GroupAuthorizationFailed, ""), "not authorized to delete group g"},
		{groupErr("delete", "g", kerr.PolicyViolation, "nope"), "cannot delete group g: POLICY_VIOLATION: " + kerr.PolicyViolation.Description + ": nope"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	if !errors.Is(groupErr("delete", "g", kerr.NonEmptyGroup, ""), kerr.NonEmptyGroup) {
		t.Error("GroupError does not unwrap to the Kafka error")
	}
	if groupErr("delete", "g", nil, "") != nil {
		t.Error("groupErr(nil) != nil")
	}
}
