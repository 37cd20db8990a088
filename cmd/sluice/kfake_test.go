package main

import (
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// TestServeKfake is not a test: it serves franz-go's in-memory kfake on
// $SLUICE_KFAKE_LISTEN until interrupted, as the reference to run `sluice
// bench` against next to the broker under test (PERF.md; see the package doc
// of internal/bench). kfake may only be imported by tests, hence this form.
// Skipped unless SLUICE_KFAKE_LISTEN is set:
//
//	go test -c -o /tmp/kfake.test ./cmd/sluice
//	SLUICE_KFAKE_LISTEN=127.0.0.1:19092 /tmp/kfake.test -test.run TestServeKfake -test.timeout 0
func TestServeKfake(t *testing.T) {
	addr := os.Getenv("SLUICE_KFAKE_LISTEN")
	if addr == "" {
		t.Skip("set SLUICE_KFAKE_LISTEN=127.0.0.1:PORT to serve kfake for `sluice bench`")
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("SLUICE_KFAKE_LISTEN=%q: want host:port: %v", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		t.Fatalf("SLUICE_KFAKE_LISTEN=%q: bad port: %v", addr, err)
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.AllowAutoTopicCreation(),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
	)
	if err != nil {
		t.Fatalf("start kfake on %s: %v", addr, err)
	}
	defer c.Close()
	t.Logf("kfake listening on %s; interrupt to stop", c.ListenAddrs()[0])
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
}
