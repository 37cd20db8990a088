package main

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicehq/sluice/broker/brokertest"
)

// startCluster starts an in-process Sluice broker for the test and returns
// its bootstrap address; t's cleanup stops it. Tests depend on nothing but
// the address.
func startCluster(t *testing.T) (addr string) {
	t.Helper()
	return brokertest.Start(t).Addr()
}

// startKfake starts franz-go's in-memory fake cluster, for the CLI paths the
// Sluice broker does not serve yet (consumer groups).
func startKfake(t *testing.T) (addr string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}
