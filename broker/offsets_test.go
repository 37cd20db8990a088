package broker_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/brokertest"
)

// TestCommittedOffsetsSurviveRestartAndExpire commits offsets for a group
// with no members (as admin tools do), restarts the broker, checks they are
// still there, then moves the clock past offsets.retention.minutes and checks
// that the empty group and its offsets are gone, also after a restart.
func TestCommittedOffsetsSurviveRestartAndExpire(t *testing.T) {
	var now atomic.Int64
	now.Store(1_800_000_000_000)
	opts := brokertest.WithConfig(func(c *broker.Config) {
		c.Now = func() time.Time { return time.UnixMilli(now.Load()) }
		c.OffsetsRetention = time.Hour
	})
	b := brokertest.Start(t, opts)
	ctx := testCtx(t)
	adm := kadm.NewClient(newClient(t, b.Addr()))
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "committed"); err != nil {
		t.Fatal(err)
	}
	offs := kadm.Offsets{}
	for p := range int32(3) {
		offs.Add(kadm.Offset{Topic: "committed", Partition: p, At: int64(10 + p), LeaderEpoch: -1, Metadata: "m"})
	}
	if r, err := adm.CommitOffsets(ctx, "admin-group", offs); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
	fetch := func(adm *kadm.Client) kadm.OffsetResponses {
		t.Helper()
		r, err := adm.FetchOffsets(ctx, "admin-group")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	dir := b.Config.DataDir
	b.Stop(t)
	b = brokertest.Start(t, opts, brokertest.DataDir(dir))
	adm = kadm.NewClient(newClient(t, b.Addr()))
	got := fetch(adm)
	for p := range int32(3) {
		if o, ok := got.Lookup("committed", p); !ok || o.At != int64(10+p) || o.Metadata != "m" {
			t.Fatalf("after restart partition %d: %+v (found %t)", p, o, ok)
		}
	}
	// Within retention nothing expires.
	now.Add(int64(30 * time.Minute / time.Millisecond))
	b.EnforceRetention()
	if o, _ := fetch(adm).Lookup("committed", 0); o.At != 10 {
		t.Fatalf("offset expired early: %+v", o)
	}
	now.Add(int64(2 * time.Hour / time.Millisecond))
	b.EnforceRetention()
	if o, ok := fetch(adm).Lookup("committed", 0); ok && o.At != -1 {
		t.Fatalf("offset not expired: %+v", o)
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := listed["admin-group"]; ok {
		t.Fatalf("expired group still listed: %v", listed)
	}
	b.Stop(t)
	b = brokertest.Start(t, opts, brokertest.DataDir(dir))
	adm = kadm.NewClient(newClient(t, b.Addr()))
	if o, ok := fetch(adm).Lookup("committed", 0); ok && o.At != -1 {
		t.Fatalf("expired offset back after restart: %+v", o)
	}
}
