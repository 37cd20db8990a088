package broker_test

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/broker/brokertest"
)

// txnBatch is makeBatch with the transactional attribute set.
func txnBatch(pid int64, epoch int16, seq int32, n int) []byte {
	b := makeBatch(pid, epoch, seq, n, 1000)
	binary.BigEndian.PutUint16(b[21:], binary.BigEndian.Uint16(b[21:])|0x10)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// txnRaw drives the transaction APIs with raw requests.
type txnRaw struct {
	t *testing.T
	r *rawConn
}

func (x txnRaw) init(id string, timeoutMs int32, v int16, pid int64, epoch int16) *kmsg.InitProducerIDResponse {
	x.t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID = &id
	req.TransactionTimeoutMillis = timeoutMs
	req.ProducerID, req.ProducerEpoch = pid, epoch
	x.r.send(req, v)
	resp := kmsg.NewPtrInitProducerIDResponse()
	resp.SetVersion(v)
	x.r.recv(resp)
	return resp
}

func (x txnRaw) addPartitions(id string, pid int64, epoch int16, v int16, topic string, parts ...int32) []int16 {
	x.t.Helper()
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = id, pid, epoch
	req.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: topic, Partitions: parts}}
	x.r.send(req, v)
	resp := kmsg.NewPtrAddPartitionsToTxnResponse()
	resp.SetVersion(v)
	x.r.recv(resp)
	var codes []int16
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			codes = append(codes, p.ErrorCode)
		}
	}
	return codes
}

func (x txnRaw) addOffsets(id string, pid int64, epoch int16, group string) int16 {
	x.t.Helper()
	req := kmsg.NewPtrAddOffsetsToTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = id, pid, epoch, group
	x.r.send(req, 3)
	resp := kmsg.NewPtrAddOffsetsToTxnResponse()
	resp.SetVersion(3)
	x.r.recv(resp)
	return resp.ErrorCode
}

func (x txnRaw) txnCommit(id string, pid int64, epoch int16, group, topic string, offset int64) int16 {
	x.t.Helper()
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = id, pid, epoch, group
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, offset
	req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{rp}}}
	x.r.send(req, 3)
	resp := kmsg.NewPtrTxnOffsetCommitResponse()
	resp.SetVersion(3)
	x.r.recv(resp)
	return resp.Topics[0].Partitions[0].ErrorCode
}

func (x txnRaw) end(id string, pid int64, epoch int16, v int16, commit bool) int16 {
	x.t.Helper()
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = id, pid, epoch, commit
	x.r.send(req, v)
	resp := kmsg.NewPtrEndTxnResponse()
	resp.SetVersion(v)
	x.r.recv(resp)
	return resp.ErrorCode
}

func (x txnRaw) produce(txnID *string, topic string, p int32, batch []byte) int16 {
	x.t.Helper()
	req := produceReq(topic, p, -1, batch)
	req.TransactionID = txnID
	x.r.send(req, 9)
	resp := kmsg.NewPtrProduceResponse()
	resp.SetVersion(9)
	x.r.recv(resp)
	return resp.Topics[0].Partitions[0].ErrorCode
}

func (x txnRaw) offsetFetch(group, topic string) (int64, int16) {
	x.t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group, req.RequireStable = group, true
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: []int32{0}}}
	x.r.send(req, 7)
	resp := kmsg.NewPtrOffsetFetchResponse()
	resp.SetVersion(7)
	x.r.recv(resp)
	p := resp.Topics[0].Partitions[0]
	return p.Offset, p.ErrorCode
}

func wantTxnCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	var wc int16
	if want != nil {
		wc = want.Code
	}
	if got != wc {
		t.Fatalf("%s: %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

// TestTxnBadInput: Kafka's error codes for misuse of the transaction APIs,
// with nothing made visible by a refused request.
func TestTxnBadInput(t *testing.T) {
	b := brokertest.Start(t)
	r := dialRaw(t, b.Addr())
	createTopicRaw(t, r, "txn-bad", 2)
	x := txnRaw{t, r}
	id := "bad-input"

	if resp := x.init(id, 16*60*1000, 4, -1, -1); resp.ErrorCode != kerr.InvalidTransactionTimeout.Code {
		t.Fatalf("timeout above transaction.max.timeout.ms: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	wantTxnCode(t, "EndTxn of an unknown id", x.end("nobody", 1, 0, 3, true), kerr.InvalidProducerIDMapping)
	wantTxnCode(t, "AddOffsetsToTxn of an unknown id", x.addOffsets("nobody", 1, 0, "g"), kerr.InvalidProducerIDMapping)

	ip := x.init(id, 60000, 4, -1, -1)
	wantTxnCode(t, "InitProducerId", ip.ErrorCode, nil)
	pid, epoch := ip.ProducerID, ip.ProducerEpoch

	wantTxnCode(t, "EndTxn without a transaction", x.end(id, pid, epoch, 3, true), kerr.InvalidTxnState)
	wantTxnCode(t, "produce to a partition not in the transaction", x.produce(&id, "txn-bad", 0, txnBatch(pid, epoch, 0, 2)), kerr.InvalidTxnState)
	wantTxnCode(t, "transactional batch without a transactional id", x.produce(nil, "txn-bad", 0, txnBatch(pid, epoch, 0, 2)), kerr.InvalidRecord)
	wantTxnCode(t, "AddPartitionsToTxn v3, stale epoch", x.addPartitions(id, pid, epoch-1, 3, "txn-bad", 0)[0], kerr.ProducerFenced)
	wantTxnCode(t, "AddPartitionsToTxn v1, stale epoch", x.addPartitions(id, pid, epoch-1, 1, "txn-bad", 0)[0], kerr.InvalidProducerEpoch)
	wantTxnCode(t, "AddPartitionsToTxn, wrong producer id", x.addPartitions(id, pid+1, epoch, 3, "txn-bad", 0)[0], kerr.InvalidProducerIDMapping)
	codes := x.addPartitions(id, pid, epoch, 3, "txn-bad", 0, 7)
	wantTxnCode(t, "AddPartitionsToTxn, the existing partition beside an unknown one", codes[0], kerr.OperationNotAttempted)
	wantTxnCode(t, "AddPartitionsToTxn, unknown partition", codes[1], kerr.UnknownTopicOrPartition)
	wantTxnCode(t, "produce after the refused add", x.produce(&id, "txn-bad", 0, txnBatch(pid, epoch, 0, 2)), kerr.InvalidTxnState)
	if hw := highWatermark(t, b.Addr(), "txn-bad", 0); hw != 0 {
		t.Fatalf("refused produces wrote data: high watermark %d", hw)
	}

	wantTxnCode(t, "AddPartitionsToTxn", x.addPartitions(id, pid, epoch, 3, "txn-bad", 0)[0], nil)
	wantTxnCode(t, "produce with a stale epoch", x.produce(&id, "txn-bad", 0, txnBatch(pid, epoch-1, 0, 2)), kerr.InvalidProducerEpoch)
	wantTxnCode(t, "produce", x.produce(&id, "txn-bad", 0, txnBatch(pid, epoch, 0, 2)), nil)
	wantTxnCode(t, "TxnOffsetCommit before AddOffsetsToTxn", x.txnCommit(id, pid, epoch, "g1", "txn-bad", 2), kerr.InvalidTxnState)
	wantTxnCode(t, "AddOffsetsToTxn", x.addOffsets(id, pid, epoch, "g1"), nil)
	wantTxnCode(t, "TxnOffsetCommit, stale epoch", x.txnCommit(id, pid, epoch-1, "g1", "txn-bad", 2), kerr.ProducerFenced)
	wantTxnCode(t, "TxnOffsetCommit", x.txnCommit(id, pid, epoch, "g1", "txn-bad", 2), nil)
	if _, code := x.offsetFetch("g1", "txn-bad"); code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("OffsetFetch RequireStable during the transaction: %v, want UNSTABLE_OFFSET_COMMIT", kerr.ErrorForCode(code))
	}
	wantTxnCode(t, "EndTxn v3, stale epoch", x.end(id, pid, epoch-1, 3, true), kerr.ProducerFenced)
	wantTxnCode(t, "EndTxn v1, stale epoch", x.end(id, pid, epoch-1, 1, true), kerr.InvalidProducerEpoch)
	wantTxnCode(t, "EndTxn commit", x.end(id, pid, epoch, 3, true), nil)
	wantTxnCode(t, "EndTxn commit retried", x.end(id, pid, epoch, 3, true), nil)
	wantTxnCode(t, "EndTxn abort after commit", x.end(id, pid, epoch, 3, false), kerr.InvalidTxnState)
	if off, code := x.offsetFetch("g1", "txn-bad"); code != 0 || off != 2 {
		t.Fatalf("OffsetFetch after commit: %d %v, want 2", off, kerr.ErrorForCode(code))
	}

	// KIP-360: InitProducerId naming an older epoch is fenced; naming the
	// current one bumps it.
	wantTxnCode(t, "InitProducerId v4 with a stale epoch", x.init(id, 60000, 4, pid, epoch-1).ErrorCode, kerr.ProducerFenced)
	ip = x.init(id, 60000, 4, pid, epoch)
	if ip.ErrorCode != 0 || ip.ProducerID != pid || ip.ProducerEpoch != epoch+1 {
		t.Fatalf("InitProducerId bump: %v pid %d epoch %d, want %d/%d", kerr.ErrorForCode(ip.ErrorCode), ip.ProducerID, ip.ProducerEpoch, pid, epoch+1)
	}
	wantTxnCode(t, "produce of the old epoch after the bump", x.produce(&id, "txn-bad", 0, txnBatch(pid, epoch, 2, 1)), kerr.InvalidProducerEpoch)
}
