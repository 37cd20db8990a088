package broker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker/brokertest"
)

// BenchmarkGroupRebalance measures how long 10 franz-go members (started
// together) take to settle into one generation that assigns all 20
// partitions of a topic: joins, MEMBER_ID_REQUIRED round trips, the leader's
// assignment and every SyncGroup.
func BenchmarkGroupRebalance(b *testing.B) {
	const members, partitions = 10, 20
	br := brokertest.Start(b)
	ctx := context.Background()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(br.Addr()))
	if err != nil {
		b.Fatal(err)
	}
	defer admCl.Close()
	if _, err := kadm.NewClient(admCl).CreateTopic(ctx, partitions, 1, nil, "rebal"); err != nil {
		b.Fatal(err)
	}
	for _, balancer := range []struct {
		name string
		opt  kgo.GroupBalancer
	}{{"cooperative-sticky", kgo.CooperativeStickyBalancer()}, {"range", kgo.RangeBalancer()}} {
		b.Run(fmt.Sprintf("members=%d/balancer=%s", members, balancer.name), func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				group := fmt.Sprintf("rebal-%s-%d", balancer.name, i)
				var mu sync.Mutex
				owned := map[int]map[int32]bool{}
				settled := make(chan struct{})
				var once sync.Once
				check := func() {
					total := 0
					for _, ps := range owned {
						total += len(ps)
					}
					if total == partitions && len(owned) == members {
						once.Do(func() { close(settled) })
					}
				}
				var clients []*kgo.Client
				for m := range members {
					cl, err := kgo.NewClient(kgo.SeedBrokers(br.Addr()), kgo.ConsumerGroup(group), kgo.ConsumeTopics("rebal"),
						kgo.Balancers(balancer.opt),
						kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
							mu.Lock()
							defer mu.Unlock()
							if owned[m] == nil {
								owned[m] = map[int32]bool{}
							}
							for _, p := range a["rebal"] {
								owned[m][p] = true
							}
							check()
						}),
						kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
							mu.Lock()
							defer mu.Unlock()
							for _, p := range r["rebal"] {
								delete(owned[m], p)
							}
							if len(owned[m]) == 0 {
								delete(owned, m)
							}
						}),
					)
					if err != nil {
						b.Fatal(err)
					}
					clients = append(clients, cl)
					go func() {
						for {
							if fs := cl.PollFetches(ctx); fs.IsClientClosed() {
								return
							}
						}
					}()
				}
				select {
				case <-settled:
				case <-time.After(60 * time.Second):
					b.Fatalf("group %s did not settle in 60s", group)
				}
				b.StopTimer()
				for _, cl := range clients {
					cl.Close()
				}
				b.StartTimer()
			}
		})
	}
}
