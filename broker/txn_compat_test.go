package broker_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// txnFixture writes to partition 0 of a new topic: a plain record, a
// committed transaction, an aborted one and a plain record, all with
// franz-go, and returns the topic.
func txnFixture(t *testing.T, addr string) string {
	t.Helper()
	topic := newTopic(t, addr, "txn-compat", 1)
	plain := newClient(t, addr)
	produceSync(t, plain, &kgo.Record{Topic: topic, Value: []byte("plain1")})
	cl := newTxnClient(t, addr, newTxnID("compat"))
	for _, commit := range []kgo.TransactionEndTry{kgo.TryCommit, kgo.TryAbort} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		prefix := "committed"
		if !commit {
			prefix = "aborted"
		}
		produceTxn(t, cl, topic, 0, prefix+"1", prefix+"2")
		endTxn(t, cl, commit)
	}
	produceSync(t, plain, &kgo.Record{Topic: topic, Value: []byte("plain2")})
	return topic
}

// TestTxnKcatReadCommitted: kcat (librdkafka) with
// isolation.level=read_committed skips the aborted transaction, with
// read_uncommitted it sees it.
func TestTxnKcatReadCommitted(t *testing.T) {
	requireClient(t, "kcat", probeKcat)
	addr := startBroker(t)
	topic := txnFixture(t, addr)
	vals := func(rs []rec) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Value)
		}
		return out
	}
	got := vals(kcatConsume(t, addr, topic, "-o", "beginning", "-X", "isolation.level=read_committed"))
	if want := []string{"plain1", "committed1", "committed2", "plain2"}; !slices.Equal(got, want) {
		t.Fatalf("kcat read_committed: %q, want %q", got, want)
	}
	got = vals(kcatConsume(t, addr, topic, "-o", "beginning", "-X", "isolation.level=read_uncommitted"))
	if want := []string{"plain1", "committed1", "committed2", "aborted1", "aborted2", "plain2"}; !slices.Equal(got, want) {
		t.Fatalf("kcat read_uncommitted: %q, want %q", got, want)
	}
}

// confluentTxnScript runs a transactional librdkafka producer (one committed
// and one aborted transaction) and then a default (read_committed) consumer
// over the whole partition, printing the values it receives.
const confluentTxnScript = `
import sys
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
addr, topic, txid = sys.argv[1], sys.argv[2], sys.argv[3]
p = Producer({"bootstrap.servers": addr, "transactional.id": txid, "transaction.timeout.ms": 30000})
p.init_transactions(30)
for commit in (True, False):
    p.begin_transaction()
    tag = "py-committed" if commit else "py-aborted"
    for i in range(3):
        p.produce(topic, value=("%s%d" % (tag, i)).encode(), partition=0)
    p.flush(30)
    if commit:
        p.commit_transaction(30)
    else:
        p.abort_transaction(30)
c = Consumer({"bootstrap.servers": addr, "group.id": txid + "-reader", "enable.partition.eof": True,
              "auto.offset.reset": "earliest", "enable.auto.commit": False})
c.assign([TopicPartition(topic, 0, 0)])
while True:
    m = c.poll(30)
    if m is None:
        sys.exit("timed out")
    if m.error():
        if m.error().code() == KafkaError._PARTITION_EOF:
            break
        sys.exit(str(m.error()))
    print(m.value().decode())
c.close()
`

// TestTxnConfluentKafkaPython: librdkafka's transactional producer works
// against the broker, and its default consumer (read_committed) sees the
// committed records of both franz-go's and its own transactions only.
func TestTxnConfluentKafkaPython(t *testing.T) {
	requireClient(t, "confluent-kafka-python", probePythonModule("confluent_kafka"))
	addr := startBroker(t)
	topic := txnFixture(t, addr)
	out := runExt(t, "", pythonPath, "-c", confluentTxnScript, addr, topic, newTxnID("py"))
	got := strings.Fields(out)
	want := []string{"plain1", "committed1", "committed2", "plain2", "py-committed0", "py-committed1", "py-committed2"}
	if !slices.Equal(got, want) {
		t.Fatalf("confluent-kafka-python read_committed: %q, want %q", got, want)
	}
}
