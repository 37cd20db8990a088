// Package exampleutil holds what the runnable examples share: an embedded
// broker when no --brokers is given, and topic creation.
package exampleutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker"
)

// Cluster returns the bootstrap addresses to use: brokers if set, else
// those of a broker started in a temporary directory. stop releases it.
func Cluster(ctx context.Context, brokers string) (seeds []string, stop func(), err error) {
	if brokers != "" {
		return strings.Split(brokers, ","), func() {}, nil
	}
	dir, err := os.MkdirTemp("", "sluice-example-")
	if err != nil {
		return nil, nil, err
	}
	b, err := broker.New(broker.Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	fmt.Printf("started an embedded broker on %s\n", b.Addr())
	return []string{b.Addr()}, func() {
		b.Close()
		<-done
		os.RemoveAll(dir)
	}, nil
}

// CreateTopics creates topics (ignoring ones that exist).
func CreateTopics(ctx context.Context, cl *kgo.Client, partitions int32, topics ...string) error {
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, nil, topics...)
	if err != nil {
		return fmt.Errorf("create topics (is the broker reachable?): %w", err)
	}
	for _, r := range resp {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}
