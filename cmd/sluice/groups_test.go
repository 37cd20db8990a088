package main

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// The group tests run against kfake until the Sluice broker has a group
// coordinator; they depend on nothing but the address, so switching them to
// startCluster is a one-line change.
var startGroupCluster = startCluster

// offsetsHeader is the exact column order of `groups describe`.
var offsetsHeader = []string{"TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"}

// groupFixture creates topic with one partition, produces n records and
// consumes k of them as group, which commits offset k.
func groupFixture(t *testing.T, b, topic, group string, n, k int) {
	t.Helper()
	mustRun(t, "", "topics", "create", topic, "--partitions", "1", b)
	var in strings.Builder
	for i := range n {
		in.WriteString("record-" + strconv.Itoa(i) + "\n")
	}
	mustRun(t, in.String(), "produce", topic, b)
	out := mustRun(t, "", "consume", topic, "--group", group, "--from-beginning", "--max", strconv.Itoa(k), b)
	if got := strings.Count(out, "\n"); got != k {
		t.Fatalf("consume --max %d printed %d records:\n%s", k, got, out)
	}
}

// committed returns group's committed offset on topic[p], -1 if none.
func committed(t *testing.T, addr, group, topic string, p int32) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(t.Context(), group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	if o, ok := offs.Lookup(topic, p); ok && o.Err == nil {
		return o.At
	}
	return -1
}

// columns returns the fields of the first line of out starting with first.
func columns(out, first string) []string {
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) > 0 && f[0] == first {
			return f
		}
	}
	return nil
}

func TestGroupsListAndDescribe(t *testing.T) {
	addr := startGroupCluster(t)
	b := "--brokers=" + addr
	groupFixture(t, b, "orders", "g", 10, 4)

	out := mustRun(t, "", "groups", "list", b)
	if !hasRow(out, "GROUP", "STATE", "PROTOCOL-TYPE", "MEMBERS") || !hasRow(out, "g", "Empty", "consumer", "0") {
		t.Fatalf("groups list:\n%s\nwant a header and the row: g Empty consumer 0", out)
	}
	var listed []struct {
		Group        string `json:"group"`
		State        string `json:"state"`
		ProtocolType string `json:"protocol_type"`
		Members      int    `json:"members"`
	}
	decode(t, mustRun(t, "", "groups", "list", "-o", "json", b), &listed)
	if len(listed) != 1 || listed[0].Group != "g" || listed[0].State != "Empty" || listed[0].ProtocolType != "consumer" {
		t.Fatalf("groups list -o json = %+v", listed)
	}

	out = mustRun(t, "", "groups", "describe", "g", b)
	if got := columns(out, "TOPIC"); strings.Join(got, " ") != strings.Join(offsetsHeader, " ") {
		t.Fatalf("describe columns = %q, want %q\n%s", got, offsetsHeader, out)
	}
	if !hasRow(out, "orders", "0", "4", "10", "6", "-", "-", "-") {
		t.Fatalf("describe:\n%s\nwant the row: orders 0 4 10 6 - - -", out)
	}
	if !strings.Contains(out, "Group: g  State: Empty") || !strings.Contains(out, "Members: none") {
		t.Fatalf("describe header:\n%s", out)
	}

	var desc []struct {
		Group   string `json:"group"`
		State   string `json:"state"`
		Members []any  `json:"members"`
		Offsets []struct {
			Topic         string `json:"topic"`
			Partition     int32  `json:"partition"`
			CurrentOffset int64  `json:"current_offset"`
			LogEndOffset  int64  `json:"log_end_offset"`
			Lag           int64  `json:"lag"`
		} `json:"offsets"`
	}
	decode(t, mustRun(t, "", "groups", "describe", "g", "-o", "json", b), &desc)
	if len(desc) != 1 || desc[0].Group != "g" || len(desc[0].Members) != 0 || len(desc[0].Offsets) != 1 {
		t.Fatalf("describe -o json = %+v", desc)
	}
	if o := desc[0].Offsets[0]; o.Topic != "orders" || o.Partition != 0 || o.CurrentOffset != 4 || o.LogEndOffset != 10 || o.Lag != 6 {
		t.Fatalf("describe -o json offsets = %+v, want orders/0 at 4 of 10, lag 6", o)
	}

	wantErr(t, "", []string{"groups", "describe", "nope", b}, "group nope does not exist (see `sluice groups list`)")
	// Describing an existing and a missing group shows the one and fails on the other.
	out, _, err := run(t, "", "groups", "describe", "g", "nope", b)
	if err == nil || !strings.Contains(err.Error(), "group nope does not exist") || !hasRow(out, "orders", "0", "4", "10", "6", "-", "-", "-") {
		t.Fatalf("describe g nope: err %v, out:\n%s", err, out)
	}
}

func TestGroupsResetOffsets(t *testing.T) {
	addr := startGroupCluster(t)
	b := "--brokers=" + addr
	groupFixture(t, b, "orders", "g", 10, 4)

	out := mustRun(t, "", "groups", "reset-offsets", "g", "--topic", "orders", "--to-earliest", b)
	if !hasRow(out, "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET") || !hasRow(out, "orders", "0", "4", "0") ||
		!strings.Contains(out, "dry run: nothing changed; add --execute to apply") {
		t.Fatalf("dry run printed:\n%s", out)
	}
	if got := committed(t, addr, "g", "orders", 0); got != 4 {
		t.Fatalf("after a dry run the committed offset is %d, want 4 (unchanged)", got)
	}

	tests := []struct {
		name string
		args []string
		want int64
	}{
		{"to-earliest", []string{"--topic", "orders", "--to-earliest"}, 0},
		{"to-latest", []string{"--topic", "orders:0", "--to-latest"}, 10},
		{"to-offset", []string{"--all-topics", "--to-offset", "3"}, 3},
		{"shift-by back", []string{"--all-topics", "--shift-by", "-2"}, 1},
		{"shift-by clamped", []string{"--topic", "orders", "--shift-by", "-5"}, 0},
		{"to-offset clamped", []string{"--topic", "orders", "--to-offset", "100"}, 10},
		{"to-datetime past", []string{"--topic", "orders", "--to-datetime", "2000-01-01T00:00:00Z"}, 0},
		{"to-datetime future", []string{"--topic", "orders", "--to-datetime", time.Now().Add(time.Hour).Format(time.RFC3339)}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := committed(t, addr, "g", "orders", 0)
			args := append([]string{"groups", "reset-offsets", "g", "--execute", b}, tt.args...)
			out := mustRun(t, "", args...)
			if !hasRow(out, "orders", "0", strconv.FormatInt(before, 10), strconv.FormatInt(tt.want, 10)) ||
				!strings.Contains(out, "reset 1 partition of group g") {
				t.Fatalf("reset printed:\n%s", out)
			}
			if got := committed(t, addr, "g", "orders", 0); got != tt.want {
				t.Fatalf("committed offset after reset = %d, want %d", got, tt.want)
			}
		})
	}

	// describe reflects the reset: at the end, no lag.
	if out := mustRun(t, "", "groups", "describe", "g", b); !hasRow(out, "orders", "0", "10", "10", "0", "-", "-", "-") {
		t.Fatalf("describe after reset to the end:\n%s", out)
	}

	var plan struct {
		Group      string `json:"group"`
		Executed   bool   `json:"executed"`
		Partitions []struct {
			Topic         string `json:"topic"`
			Partition     int32  `json:"partition"`
			CurrentOffset int64  `json:"current_offset"`
			NewOffset     int64  `json:"new_offset"`
		} `json:"partitions"`
	}
	decode(t, mustRun(t, "", "groups", "reset-offsets", "g", "--all-topics", "--shift-by", "-3", "-o", "json", b), &plan)
	if plan.Group != "g" || plan.Executed || len(plan.Partitions) != 1 || plan.Partitions[0].CurrentOffset != 10 || plan.Partitions[0].NewOffset != 7 {
		t.Fatalf("reset -o json (dry run) = %+v", plan)
	}

	wantErr(t, "", []string{"groups", "reset-offsets", "g", "--topic", "missing", "--to-earliest", b}, `topic "missing" does not exist`)
	wantErr(t, "", []string{"groups", "reset-offsets", "g", "--topic", "orders:3", "--to-earliest", b}, "topic orders has no partition 3")
	wantErr(t, "", []string{"groups", "reset-offsets", "fresh", "--all-topics", "--to-earliest", b}, "group fresh has no committed offsets")
	wantErr(t, "", []string{"groups", "reset-offsets", "fresh", "--topic", "orders", "--shift-by", "1", b}, "no committed offset there to shift from")
	// A group that does not exist yet can be given offsets, as in Kafka.
	mustRun(t, "", "groups", "reset-offsets", "fresh", "--topic", "orders", "--to-offset", "5", "--execute", b)
	if got := committed(t, addr, "fresh", "orders", 0); got != 5 {
		t.Fatalf("new group fresh: committed %d, want 5", got)
	}
}

func TestGroupsResetToDatetime(t *testing.T) {
	addr := startGroupCluster(t)
	b := "--brokers=" + addr
	mustRun(t, "", "topics", "create", "events", "--partitions", "1", b)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	base := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for i := range 5 { // offsets 0..4 at 12:00, 12:01, ... 12:04
		r := &kgo.Record{Value: []byte("e"), Timestamp: base.Add(time.Duration(i) * time.Minute)}
		if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	for _, tt := range []struct {
		at   string
		want int64
	}{
		{"2024-05-01T12:02:00Z", 2},
		{"2024-05-01T14:02:30+02:00", 3}, // 12:02:30 UTC
		{base.Add(3 * time.Minute).In(time.Local).Format("2006-01-02T15:04:05"), 3},
		{"2024-05-01T13:00:00Z", 5}, // nothing after: the end
	} {
		out := mustRun(t, "", "groups", "reset-offsets", "g", "--topic", "events", "--to-datetime", tt.at, "--execute", b)
		if got := committed(t, addr, "g", "events", 0); got != tt.want {
			t.Fatalf("--to-datetime %s: committed %d, want %d\n%s", tt.at, got, tt.want, out)
		}
	}
}

// joinedConsumer starts a kgo consumer in group on topic and returns once
// it has been assigned partitions; stop makes it leave the group.
func joinedConsumer(t *testing.T, addr, group, topic string) (stop func()) {
	t.Helper()
	assigned := make(chan struct{})
	var once sync.Once
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			once.Do(func() { close(assigned) })
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			cl.PollFetches(ctx)
		}
	})
	stop = sync.OnceFunc(func() {
		cancel()
		wg.Wait()
		cl.Close() // leaves the group
	})
	t.Cleanup(stop)
	select {
	case <-assigned:
	case <-time.After(30 * time.Second):
		t.Fatalf("consumer did not join group %s within 30s", group)
	}
	return stop
}

func TestGroupsActiveAndDelete(t *testing.T) {
	addr := startGroupCluster(t)
	b := "--brokers=" + addr
	groupFixture(t, b, "orders", "g", 10, 4)

	stop := joinedConsumer(t, addr, "g", "orders")
	out := mustRun(t, "", "groups", "describe", "g", b)
	if !hasRow(out, "MEMBER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST", "ASSIGNMENT") || !strings.Contains(out, "orders:0") {
		t.Fatalf("describe with a member:\n%s", out)
	}
	if row := columns(out, "orders"); len(row) != 8 || row[5] == "-" || row[7] == "-" {
		t.Fatalf("describe: the orders row %q should name the member and client", row)
	}
	if out := mustRun(t, "", "groups", "list", b); !hasRow(out, "g", "Stable", "consumer", "1") {
		t.Fatalf("groups list with a member:\n%s", out)
	}

	for _, args := range [][]string{
		{"groups", "reset-offsets", "g", "--topic", "orders", "--to-earliest", b},
		{"groups", "reset-offsets", "g", "--topic", "orders", "--to-earliest", "--execute", b},
	} {
		wantErr(t, "", args, "group g has 1 active member; stop them first")
	}
	wantErr(t, "", []string{"groups", "delete", "g", b}, "group g still has members")

	stop()
	if out := mustRun(t, "", "groups", "delete", "g", b); out != "deleted group g\n" {
		t.Fatalf("delete printed %q", out)
	}
	wantErr(t, "", []string{"groups", "describe", "g", b}, "group g does not exist (see `sluice groups list`)")
	wantErr(t, "", []string{"groups", "delete", "g", b}, "group g does not exist")
	if out := mustRun(t, "", "groups", "list", b); hasRow(out, "g", "Empty", "consumer", "0") {
		t.Fatalf("g still listed after delete:\n%s", out)
	}

	// JSON, and several groups at once.
	mustRun(t, "", "consume", "orders", "--group", "h1", "--from-beginning", "--max", "1", b)
	mustRun(t, "", "consume", "orders", "--group", "h2", "--from-beginning", "--max", "1", b)
	var res []struct{ Group, Result string }
	decode(t, mustRun(t, "", "groups", "delete", "h1", "h2", "-o", "json", b), &res)
	if len(res) != 2 || res[0].Group != "h1" || res[1].Group != "h2" || res[0].Result != "deleted" {
		t.Fatalf("delete -o json = %+v", res)
	}
}

func TestGroupsDeleteOffsets(t *testing.T) {
	addr := startGroupCluster(t)
	b := "--brokers=" + addr
	groupFixture(t, b, "orders", "g", 5, 2)

	out := mustRun(t, "", "groups", "delete-offsets", "g", "--topic", "orders", b)
	if !hasRow(out, "orders", "0", "2") || !strings.Contains(out, "deleted the committed offsets of group g on 1 partition") {
		t.Fatalf("delete-offsets printed:\n%s", out)
	}
	if got := committed(t, addr, "g", "orders", 0); got != -1 {
		t.Fatalf("committed offset after delete-offsets = %d, want none", got)
	}
	wantErr(t, "", []string{"groups", "delete-offsets", "g", "--topic", "orders", b}, "group g has no committed offsets for topic orders")
}

// TestGroupsWithoutCoordinator checks the message for a cluster that has no
// group coordinator at all (like the Sluice broker before it had one): it
// should say so, not that the broker is too old.
func TestGroupsWithoutCoordinator(t *testing.T) {
	v := kversion.Stable()
	for _, k := range []kmsg.Key{kmsg.ListGroups, kmsg.DescribeGroups, kmsg.DeleteGroups, kmsg.OffsetFetch, kmsg.OffsetCommit, kmsg.OffsetDelete} {
		v.SetMaxKeyVersion(int16(k), -1)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.MaxVersions(v))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	b := "--brokers=" + c.ListenAddrs()[0]
	mustRun(t, "", "topics", "create", "orders", b)
	for _, tt := range []struct {
		args []string
		api  string
	}{
		{[]string{"groups", "list"}, "ListGroups"},
		{[]string{"groups", "describe", "g"}, "DescribeGroups"},
		{[]string{"groups", "reset-offsets", "g", "--topic", "orders", "--to-earliest"}, "DescribeGroups"},
		{[]string{"groups", "delete", "g"}, "DeleteGroups"},
		{[]string{"groups", "delete-offsets", "g", "--topic", "orders"}, "OffsetFetch"},
	} {
		wantErr(t, "", append(tt.args, b), "the broker does not support "+tt.api+": it has no consumer group coordinator")
	}
}
