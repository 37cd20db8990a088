package broker_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluicehq/sluice/broker/brokertest"
)

// startGroupBroker starts an in-process broker for the consumer-group tests
// and returns the address clients dial. The broker is stopped when t ends.
func startGroupBroker(t *testing.T, opts ...brokertest.Option) (addr string) {
	t.Helper()
	return brokertest.Start(t, opts...).Addr()
}

// groupSeq makes group names unique within the test binary.
var groupSeq atomic.Int64

// newGroupName returns a group name unique within the test binary.
func newGroupName(prefix string) string {
	return fmt.Sprintf("%s-g%d", prefix, groupSeq.Add(1))
}

// pollInterval is how often waitFor re-checks its condition.
const pollInterval = 25 * time.Millisecond

// waitFor polls cond until it reports true or timeout passes, and then fails
// t with what, the timeout and the last state cond described.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (ok bool, state string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, state)
		case <-tick.C:
		}
	}
}

// describeGroup describes one group with kadm and fails t on a request
// error. The group's own error, if any, is in the result's Err.
func describeGroup(t *testing.T, adm *kadm.Client, group string) kadm.DescribedGroup {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	gs, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatalf("describe group %s: %v", group, err)
	}
	g, ok := gs[group]
	if !ok {
		t.Fatalf("describe group %s: not in the response %v", group, slices.Collect(maps.Keys(gs)))
	}
	return g
}

// memberSummary describes a group's members for failure messages.
func memberSummary(g kadm.DescribedGroup) string {
	s := fmt.Sprintf("state %s, protocol %q, %d members:", g.State, g.Protocol, len(g.Members))
	for _, m := range g.Members {
		inst := ""
		if m.InstanceID != nil {
			inst = " instance " + *m.InstanceID
		}
		s += fmt.Sprintf(" [%s%s]", m.MemberID, inst)
	}
	if g.Err != nil {
		s += fmt.Sprintf(" error %v", g.Err)
	}
	return s
}

// committedOffsets returns the offsets group committed for topic, by
// partition, failing t on any error. Partitions without a commit are absent
// (kadm drops the -1 entries OffsetFetch returns for them).
func committedOffsets(t *testing.T, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	resps, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		t.Fatalf("fetch offsets of group %s: %v", group, err)
	}
	out := make(map[int32]int64)
	for p, r := range resps[topic] {
		out[p] = r.At
	}
	return out
}

// endOffsets returns the high watermark of every partition of topic.
func endOffsets(t *testing.T, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	out := make(map[int32]int64)
	for p, o := range ends[topic] {
		out[p] = o.Offset
	}
	return out
}
