package stream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker/brokertest"
	"github.com/sluicehq/sluice/stream"
)

// TestJoinProcessesInTimestampOrder checks that a task reads its input
// partitions in timestamp order: a stream-table join started on topics
// that already hold a table written (in event time) before every click
// finds every click's user, although the table topic is larger than a
// fetch and the clicks were written first.
func TestJoinProcessesInTimestampOrder(t *testing.T) {
	for _, g := range []stream.ProcessingGuarantee{stream.AtLeastOnce, stream.ExactlyOnce} {
		t.Run(g.String(), func(t *testing.T) {
			b := brokertest.Start(t)
			addr := b.Addr()
			createTopics(t, addr, 1, "clicks", "users", "enriched")
			const users, clicks = 3000, 3000
			base := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
			cl := client(t, addr)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			// Clicks first (in wall-clock order), all later in event time
			// than every user.
			for i := range clicks {
				cl.Produce(ctx, &kgo.Record{Topic: "clicks", Key: fmt.Appendf(nil, "u%d", i%users), Value: []byte("click"),
					Timestamp: base.Add(time.Hour + time.Duration(i)*time.Millisecond)}, nil)
			}
			for i := range users {
				cl.Produce(ctx, &kgo.Record{Topic: "users", Key: fmt.Appendf(nil, "u%d", i), Value: fmt.Appendf(nil, "user-%d-%0200d", i, 0),
					Timestamp: base.Add(time.Duration(i) * time.Millisecond)}, nil)
			}
			if err := cl.Flush(ctx); err != nil {
				t.Fatal(err)
			}

			bld := stream.NewBuilder()
			table := stream.Table(bld, "users", str, str)
			stream.LeftJoin(stream.Stream(bld, []string{"clicks"}, str, str), table, func(v, user string, found bool) string {
				if !found {
					return "unknown"
				}
				return "known"
			}).WithSerdes(str, str).To("enriched")
			topo, err := bld.Build()
			if err != nil {
				t.Fatal(err)
			}
			// Small fetches: the users topic takes many of them.
			startApp(t, addr, topo, stream.AppID("ts-order-"+g.String()), stream.Guarantee(g),
				stream.ClientOpts(kgo.FetchMaxPartitionBytes(64<<10), kgo.FetchMaxBytes(64<<10)))

			rd := client(t, addr, kgo.ConsumeTopics("enriched"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			rctx, rcancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer rcancel()
			known, unknown := 0, 0
			for known+unknown < clicks {
				fs := rd.PollFetches(rctx)
				if rctx.Err() != nil {
					t.Fatalf("only %d of %d joined clicks after 60s", known+unknown, clicks)
				}
				fs.EachRecord(func(r *kgo.Record) {
					if string(r.Value) == "known" {
						known++
					} else {
						unknown++
					}
				})
			}
			if unknown != 0 {
				t.Fatalf("%d of %d clicks were joined before their user (processed out of timestamp order)", unknown, clicks)
			}
		})
	}
}

// TestCommitsPastTransactionMarkers: an input written by a transactional
// producer ends with a commit marker; the app's committed offsets move past
// it, so its lag reaches 0 (as for Kafka Streams).
func TestCommitsPastTransactionMarkers(t *testing.T) {
	b := brokertest.Start(t)
	addr := b.Addr()
	createTopics(t, addr, 1, "txn-in", "txn-out")
	txn := client(t, addr, kgo.TransactionalID("markers-test"))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for range 2 {
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			txn.Produce(ctx, &kgo.Record{Topic: "txn-in", Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")}, nil)
		}
		if err := txn.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	bld := stream.NewBuilder()
	stream.Stream(bld, []string{"txn-in"}, str, str).To("txn-out")
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	startApp(t, addr, topo, stream.AppID("markers"))
	// waitIdle wants the committed offset at the end offset, which is past
	// the last commit marker.
	waitIdle(t, addr, "markers", "txn-in")
}

// TestRepartitionedJoinSideTakesTheTablesPartitions: a stream re-keyed
// before a join with a table goes through a repartition topic that must
// have the table's partition count (Kafka Streams sizes every repartition
// topic of a co-partitioned group to the group's count), not its upstream's,
// or equal keys land in different tasks and joins miss.
func TestRepartitionedJoinSideTakesTheTablesPartitions(t *testing.T) {
	b := brokertest.Start(t)
	addr := b.Addr()
	createTopics(t, addr, 1, "visits", "joined")
	createTopics(t, addr, 3, "profiles")
	cl := client(t, addr)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	const users = 30
	base := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	for i := range users {
		cl.Produce(ctx, &kgo.Record{Topic: "profiles", Key: fmt.Appendf(nil, "u%d", i), Value: []byte("p"), Timestamp: base}, nil)
	}
	for i := range users {
		// Keyed by visit id; the user is in the value.
		cl.Produce(ctx, &kgo.Record{Topic: "visits", Key: fmt.Appendf(nil, "v%d", i), Value: fmt.Appendf(nil, "u%d", i),
			Timestamp: base.Add(time.Minute)}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	bld := stream.NewBuilder()
	profiles := stream.Table(bld, "profiles", str, str)
	byUser := stream.SelectKey(stream.Stream(bld, []string{"visits"}, str, str), func(_, user string) string { return user }).WithSerdes(str, str)
	stream.LeftJoin(byUser, profiles, func(_ string, p string, found bool) string {
		if found {
			return "known"
		}
		return "unknown"
	}, stream.Named("visit-profile")).WithSerdes(str, str).To("joined")
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	startApp(t, addr, topo, stream.AppID("rekey-join"))
	rd := client(t, addr, kgo.ConsumeTopics("joined"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	rctx, rcancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer rcancel()
	known, unknown := 0, 0
	for known+unknown < users {
		fs := rd.PollFetches(rctx)
		if rctx.Err() != nil {
			t.Fatalf("only %d of %d joined visits after 60s", known+unknown, users)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == "known" {
				known++
			} else {
				unknown++
			}
		})
	}
	if unknown != 0 {
		t.Fatalf("%d of %d visits missed their profile: the repartition topic is not co-partitioned with profiles", unknown, users)
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, "rekey-join-visit-profile-repartition")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ends["rekey-join-visit-profile-repartition"]); n != 3 {
		t.Fatalf("repartition topic has %d partitions, want the table's 3", n)
	}
}
