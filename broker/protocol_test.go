package broker_test

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/broker/brokertest"
)

// rawConn speaks the Kafka protocol by hand, to test framing and ordering
// without a client library smoothing things over.
type rawConn struct {
	t    *testing.T
	c    net.Conn
	corr int32
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, c: c}
}

// send writes a request at version v and returns its correlation id.
func (r *rawConn) send(req kmsg.Request, v int16) int32 {
	r.t.Helper()
	req.SetVersion(v)
	r.corr++
	body := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	body = binary.BigEndian.AppendUint16(body, uint16(v))
	body = binary.BigEndian.AppendUint32(body, uint32(r.corr))
	body = binary.BigEndian.AppendUint16(body, 4)
	body = append(body, "test"...)
	if req.IsFlexible() {
		body = append(body, 0)
	}
	body = req.AppendTo(body)
	r.writeFrame(body)
	return r.corr
}

func (r *rawConn) writeFrame(body []byte) {
	r.t.Helper()
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	if _, err := r.c.Write(append(frame, body...)); err != nil {
		r.t.Fatal(err)
	}
}

// recv reads one response into resp (whose version must be set) and returns
// its correlation id.
func (r *rawConn) recv(resp kmsg.Response) int32 {
	r.t.Helper()
	body, err := r.readFrame()
	if err != nil {
		r.t.Fatalf("read response: %v", err)
	}
	corr := int32(binary.BigEndian.Uint32(body))
	body = body[4:]
	if resp.IsFlexible() && resp.Key() != 18 {
		body = body[1:] // empty tag section
	}
	if err := resp.ReadFrom(body); err != nil {
		r.t.Fatalf("decode %s: %v", kmsg.NameForKey(resp.Key()), err)
	}
	return corr
}

func (r *rawConn) readFrame() ([]byte, error) {
	var sz [4]byte
	if _, err := io.ReadFull(r.c, sz[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(sz[:]))
	_, err := io.ReadFull(r.c, body)
	return body, err
}

// expectClosed checks that the broker closed the connection.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	if _, err := r.readFrame(); !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		var ne net.Error
		if !errors.As(err, &ne) || ne.Timeout() {
			r.t.Fatalf("connection still open (read: %v), want it closed", err)
		}
	}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// makeBatch encodes an uncompressed record batch of n records.
func makeBatch(pid int64, epoch int16, seq int32, n int, ts int64) []byte {
	var recs []byte
	for i := range n {
		var rec []byte
		rec = append(rec, 0)                     // attributes
		rec = binary.AppendVarint(rec, 0)        // timestamp delta
		rec = binary.AppendVarint(rec, int64(i)) // offset delta
		rec = binary.AppendVarint(rec, -1)       // null key
		rec = binary.AppendVarint(rec, 5)        // value length
		rec = append(rec, "value"...)            // value
		rec = binary.AppendUvarint(rec, 0)       // no headers
		recs = binary.AppendVarint(recs, int64(len(rec)))
		recs = append(recs, rec...)
	}
	b := kmsg.RecordBatch{
		FirstOffset: 0, Length: int32(49 + len(recs)), PartitionLeaderEpoch: -1, Magic: 2,
		LastOffsetDelta: int32(n - 1), FirstTimestamp: ts, MaxTimestamp: ts,
		ProducerID: pid, ProducerEpoch: epoch, FirstSequence: seq, NumRecords: int32(n), Records: recs,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], castagnoli))
	return raw
}

func produceReq(topic string, partition int32, acks int16, batch []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = acks
	req.TimeoutMillis = 5000
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = batch
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rt.Partitions = []kmsg.ProduceRequestTopicPartition{rp}
	req.Topics = []kmsg.ProduceRequestTopic{rt}
	return req
}

func createTopicRaw(t *testing.T, r *rawConn, name string, partitions int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
	req.Topics = append(req.Topics, rt)
	r.send(req, 5)
	resp := kmsg.NewPtrCreateTopicsResponse()
	resp.SetVersion(5)
	r.recv(resp)
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
}

func TestApiVersionsFallbackKIP511(t *testing.T) {
	b := brokertest.Start(t)
	r := dialRaw(t, b.Addr())
	// An ApiVersions version the broker does not know: answered in v0 with
	// UNSUPPORTED_VERSION and the supported range, connection kept open.
	req := kmsg.NewPtrApiVersionsRequest()
	r.send(req, 99)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	r.recv(resp)
	if resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("error code %d, want UNSUPPORTED_VERSION", resp.ErrorCode)
	}
	var found bool
	for _, k := range resp.ApiKeys {
		if k.ApiKey == 18 {
			found = k.MinVersion == 0 && k.MaxVersion == 3
		}
	}
	if !found {
		t.Fatalf("ApiVersions range missing or wrong in %+v", resp.ApiKeys)
	}
	// v3 (flexible request) is answered with the v0 response header.
	for v := int16(0); v <= 3; v++ {
		corr := r.send(kmsg.NewPtrApiVersionsRequest(), v)
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.SetVersion(v)
		if got := r.recv(resp); got != corr || resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
			t.Fatalf("v%d: corr %d (want %d), error %d, %d keys", v, got, corr, resp.ErrorCode, len(resp.ApiKeys))
		}
	}
}

func TestBadRequestsCloseTheConnection(t *testing.T) {
	b := brokertest.Start(t)
	cases := map[string]func(r *rawConn){
		"unknown key": func(r *rawConn) {
			r.writeFrame([]byte{0x7f, 0x00, 0, 1, 0, 0, 0, 1, 0xff, 0xff})
		},
		"unadvertised version": func(r *rawConn) {
			r.send(kmsg.NewPtrMetadataRequest(), 13)
		},
		"frame over the cap": func(r *rawConn) {
			_, _ = r.c.Write([]byte{0x7f, 0xff, 0xff, 0xff})
		},
		"negative frame size": func(r *rawConn) {
			_, _ = r.c.Write([]byte{0xff, 0xff, 0xff, 0xff})
		},
		"truncated header": func(r *rawConn) {
			r.writeFrame([]byte{0, 3, 0})
		},
		"malformed body": func(r *rawConn) {
			r.writeFrame([]byte{0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff})
		},
	}
	for name, send := range cases {
		t.Run(name, func(t *testing.T) {
			r := dialRaw(t, b.Addr())
			send(r)
			r.expectClosed()
		})
	}
	// The broker is still fine.
	r := dialRaw(t, b.Addr())
	r.send(kmsg.NewPtrMetadataRequest(), 9)
	resp := kmsg.NewPtrMetadataResponse()
	resp.SetVersion(9)
	r.recv(resp)
}

func TestPipelinedResponsesInOrder(t *testing.T) {
	b := brokertest.Start(t)
	r := dialRaw(t, b.Addr())
	createTopicRaw(t, r, "pipe", 1)
	// ApiVersions v0 with Metadata v0 right behind it (kafka-python), then
	// produces (one with acks=0, which gets no response) and a fetch.
	c1 := r.send(kmsg.NewPtrApiVersionsRequest(), 0)
	c2 := r.send(kmsg.NewPtrMetadataRequest(), 0)
	c3 := r.send(produceReq("pipe", 0, -1, makeBatch(-1, -1, -1, 3, 1000)), 7)
	r.send(produceReq("pipe", 0, 0, makeBatch(-1, -1, -1, 2, 1000)), 7)
	c5 := r.send(produceReq("pipe", 0, 1, makeBatch(-1, -1, -1, 1, 1000)), 7)
	for _, want := range []struct {
		corr int32
		resp kmsg.Response
		v    int16
	}{
		{c1, kmsg.NewPtrApiVersionsResponse(), 0},
		{c2, kmsg.NewPtrMetadataResponse(), 0},
		{c3, kmsg.NewPtrProduceResponse(), 7},
		{c5, kmsg.NewPtrProduceResponse(), 7},
	} {
		want.resp.SetVersion(want.v)
		if got := r.recv(want.resp); got != want.corr {
			t.Fatalf("response correlation id %d, want %d", got, want.corr)
		}
	}
	pr := kmsg.NewPtrProduceResponse()
	pr.SetVersion(7)
	r.send(produceReq("pipe", 0, 1, makeBatch(-1, -1, -1, 1, 1000)), 7)
	r.recv(pr)
	if off := pr.Topics[0].Partitions[0].BaseOffset; off != 6 {
		t.Fatalf("base offset %d after 3+2+1 records, want 6", off)
	}
}

func TestProduceV2IsUnsupported(t *testing.T) {
	b := brokertest.Start(t)
	r := dialRaw(t, b.Addr())
	createTopicRaw(t, r, "old", 1)
	r.send(produceReq("old", 0, 1, makeBatch(-1, -1, -1, 1, 1)), 2)
	resp := kmsg.NewPtrProduceResponse()
	resp.SetVersion(2)
	r.recv(resp)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnsupportedVersion.Code {
		t.Fatalf("error %v, want UNSUPPORTED_VERSION", kerr.ErrorForCode(code))
	}
}

func TestIdempotentProduce(t *testing.T) {
	b := brokertest.Start(t)
	r := dialRaw(t, b.Addr())
	createTopicRaw(t, r, "idem", 1)
	produce := func(batch []byte) kmsg.ProduceResponseTopicPartition {
		t.Helper()
		r.send(produceReq("idem", 0, -1, batch), 9)
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(9)
		r.recv(resp)
		return resp.Topics[0].Partitions[0]
	}
	const pid = 42
	steps := []struct {
		name       string
		epoch      int16
		seq        int32
		n          int
		wantErr    error
		wantOffset int64
	}{
		{"first", 0, 0, 3, nil, 0},
		{"next", 0, 3, 2, nil, 3},
		{"duplicate of first", 0, 0, 3, nil, 0},
		{"duplicate of next", 0, 3, 2, nil, 3},
		{"gap", 0, 7, 1, kerr.OutOfOrderSequenceNumber, -1},
		{"in order after gap", 0, 5, 1, nil, 5},
		{"new epoch must start at 0", 1, 6, 1, kerr.OutOfOrderSequenceNumber, -1},
		{"new epoch", 1, 0, 1, nil, 6},
		{"stale epoch", 0, 6, 1, kerr.InvalidProducerEpoch, -1},
	}
	for _, s := range steps {
		got := produce(makeBatch(pid, s.epoch, s.seq, s.n, 1000))
		if err := kerr.ErrorForCode(got.ErrorCode); !errors.Is(err, s.wantErr) {
			t.Fatalf("%s: error %v, want %v", s.name, err, s.wantErr)
		}
		if s.wantErr == nil && got.BaseOffset != s.wantOffset {
			t.Fatalf("%s: base offset %d, want %d", s.name, got.BaseOffset, s.wantOffset)
		}
	}
}

func TestProduceRejectsBadBatches(t *testing.T) {
	b := brokertest.Start(t)
	r := dialRaw(t, b.Addr())
	createTopicRaw(t, r, "bad", 1)
	good := makeBatch(-1, -1, -1, 2, 1000)
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-1] ^= 0xff
	cases := []struct {
		name  string
		topic string
		batch []byte
		want  error
	}{
		{"bad crc", "bad", flipped, kerr.CorruptMessage},
		{"two batches", "bad", append(append([]byte(nil), good...), good...), kerr.InvalidRecord},
		{"truncated", "bad", good[:40], kerr.InvalidRecord},
		{"unknown topic", "nope", good, kerr.UnknownTopicOrPartition},
	}
	for _, c := range cases {
		r.send(produceReq(c.topic, 0, -1, c.batch), 7)
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(7)
		r.recv(resp)
		if err := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.want)
		}
	}
}

// TestEveryAdvertisedVersionIsServed sends a default request of every
// advertised key at every advertised version and expects an answer (of the
// right version) rather than a closed connection: clients choose features by
// what is advertised, so advertising means implementing.
func TestEveryAdvertisedVersionIsServed(t *testing.T) {
	b := brokertest.Start(t)
	r := dialRaw(t, b.Addr())
	r.send(kmsg.NewPtrApiVersionsRequest(), 3)
	av := kmsg.NewPtrApiVersionsResponse()
	av.SetVersion(3)
	r.recv(av)
	if len(av.ApiKeys) < 20 {
		t.Fatalf("only %d keys advertised", len(av.ApiKeys))
	}
	for _, k := range av.ApiKeys {
		for v := k.MinVersion; v <= k.MaxVersion; v++ {
			req := kmsg.RequestForKey(k.ApiKey)
			if req == nil {
				t.Fatalf("advertised key %d is unknown to kmsg", k.ApiKey)
			}
			if p, ok := req.(*kmsg.ProduceRequest); ok {
				p.Acks = 1 // acks=0 gets no answer
			}
			if j, ok := req.(*kmsg.JoinGroupRequest); ok {
				j.Group = "" // answered at once (INVALID_GROUP_ID) instead of joining
			}
			corr := r.send(req, v)
			resp := req.ResponseKind()
			resp.SetVersion(v)
			if got := r.recv(resp); got != corr {
				t.Fatalf("%s v%d: correlation %d, want %d", kmsg.NameForKey(k.ApiKey), v, got, corr)
			}
		}
	}
}

// TestIdempotenceSurvivesRestart: a retry of an acknowledged batch after a
// broker restart is still recognised as a duplicate (producer state is
// rebuilt from the log), and the next sequence still follows on.
func TestIdempotenceSurvivesRestart(t *testing.T) {
	b := brokertest.Start(t)
	r := dialRaw(t, b.Addr())
	createTopicRaw(t, r, "idem-restart", 1)
	produce := func(r *rawConn, batch []byte) kmsg.ProduceResponseTopicPartition {
		t.Helper()
		r.send(produceReq("idem-restart", 0, -1, batch), 9)
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(9)
		r.recv(resp)
		return resp.Topics[0].Partitions[0]
	}
	if p := produce(r, makeBatch(7, 0, 0, 5, 1000)); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("first: %v at %d", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	if p := produce(r, makeBatch(7, 0, 5, 5, 1000)); p.ErrorCode != 0 || p.BaseOffset != 5 {
		t.Fatalf("second: %v at %d", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	dir := b.Config.DataDir
	b.Stop(t)
	b2 := brokertest.Start(t, brokertest.DataDir(dir))
	r2 := dialRaw(t, b2.Addr())
	if p := produce(r2, makeBatch(7, 0, 5, 5, 1000)); p.ErrorCode != 0 || p.BaseOffset != 5 {
		t.Fatalf("retry after restart: %v at %d, want the original offset 5", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	if p := produce(r2, makeBatch(7, 0, 12, 1, 1000)); p.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap after restart: %v, want OUT_OF_ORDER_SEQUENCE_NUMBER", kerr.ErrorForCode(p.ErrorCode))
	}
	if p := produce(r2, makeBatch(7, 0, 10, 1, 1000)); p.ErrorCode != 0 || p.BaseOffset != 10 {
		t.Fatalf("next after restart: %v at %d, want 10", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
}
