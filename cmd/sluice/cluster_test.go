package main

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// startCluster starts a Kafka-compatible cluster for the test and returns
// its bootstrap address; t's cleanup stops it. Tests must depend on nothing
// but the address: until the sluice broker is ready this is franz-go's
// kfake, and it becomes brokertest.Start(t) then.
func startCluster(t *testing.T) (addr string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}
