// Package handler serves Kafka requests for the broker: the per-connection
// loop (conn.go) and one file per API key, named after the key's number.
//
// Connection contract: requests on one connection are read and handled one
// at a time by the connection's reader goroutine, and their responses are
// written in the same order by its writer goroutine. A handler may return a
// response whose completion is deferred (a produce waiting for fsync, a
// fetch long-polling for data); the writer waits for it while the reader goes
// on with the next request, so pipelined produces share one fsync. Deferred
// work must not reference the request's bytes: the frame buffer is reused as
// soon as the handler returns.
package handler

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/broker/internal/cluster"
	"github.com/sluicehq/sluice/broker/internal/configs"
	"github.com/sluicehq/sluice/broker/internal/group"
	"github.com/sluicehq/sluice/broker/internal/log"
	"github.com/sluicehq/sluice/broker/internal/records"
	"github.com/sluicehq/sluice/broker/internal/txn"
)

// Config is what handlers need from the broker's configuration.
type Config struct {
	NodeID            int32
	AdvertiseHost     string
	AdvertisePort     int32
	SyncOnAck         bool // fsync before acknowledging produces (fsync=always)
	AutoCreateTopics  bool
	DefaultPartitions int32
	MaxRequestBytes   int32
	Logger            *slog.Logger
	Now               func() time.Time
}

// Handler serves connections against a cluster.
type Handler struct {
	cfg     Config
	cluster *cluster.Cluster
	groups  *group.Coordinator
	offsets *cluster.OffsetsStore
	txns    *txn.Coordinator
	txnLog  *cluster.OffsetsStore
}

// New returns a handler.
func New(cfg Config, c *cluster.Cluster, groups *group.Coordinator, offsets *cluster.OffsetsStore, txns *txn.Coordinator, txnLog *cluster.OffsetsStore) *Handler {
	return &Handler{cfg: cfg, cluster: c, groups: groups, offsets: offsets, txns: txns, txnLog: txnLog}
}

// connInfo is what handlers may know of the connection a request came on.
type connInfo struct {
	clientID string
	host     string
}

// SplitHostPort parses an advertised address.
func SplitHostPort(addr string) (string, int32, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, err
	}
	return host, int32(p), nil
}

// response is one answer in a connection's queue.
type response struct {
	corr int32
	msg  kmsg.Response
	// finish, if set, computes msg in the writer goroutine; it may block
	// until ctx (the connection's) is done.
	finish func(ctx context.Context) kmsg.Response
	// release, if set, is called once the response has been written.
	release func()
}

// handle dispatches one request. ok=false means no response is sent
// (acks=0 produce).
func (h *Handler) handle(ctx context.Context, req kmsg.Request, ci connInfo) (response, bool) {
	switch r := req.(type) {
	case *kmsg.OffsetCommitRequest:
		return response{msg: h.offsetCommit(r)}, true
	case *kmsg.OffsetFetchRequest:
		return response{msg: h.groups.OffsetFetch(r)}, true
	case *kmsg.JoinGroupRequest:
		return h.joinGroup(r, ci), true
	case *kmsg.HeartbeatRequest:
		return response{msg: h.groups.Heartbeat(r)}, true
	case *kmsg.LeaveGroupRequest:
		return response{msg: h.groups.Leave(r)}, true
	case *kmsg.SyncGroupRequest:
		return h.syncGroup(r), true
	case *kmsg.DescribeGroupsRequest:
		return response{msg: h.groups.DescribeGroups(r)}, true
	case *kmsg.ListGroupsRequest:
		return response{msg: h.groups.ListGroups(r)}, true
	case *kmsg.DeleteGroupsRequest:
		return response{msg: h.groups.DeleteGroups(r)}, true
	case *kmsg.OffsetDeleteRequest:
		return response{msg: h.groups.OffsetDelete(r)}, true
	case *kmsg.ProduceRequest:
		return h.produce(r)
	case *kmsg.FetchRequest:
		return h.fetch(r), true
	case *kmsg.ListOffsetsRequest:
		return response{msg: h.listOffsets(r)}, true
	case *kmsg.MetadataRequest:
		return response{msg: h.metadata(r)}, true
	case *kmsg.FindCoordinatorRequest:
		return response{msg: h.findCoordinator(r)}, true
	case *kmsg.ApiVersionsRequest:
		return response{msg: h.apiVersions(r)}, true
	case *kmsg.CreateTopicsRequest:
		return response{msg: h.createTopics(r)}, true
	case *kmsg.DeleteTopicsRequest:
		return response{msg: h.deleteTopics(r)}, true
	case *kmsg.DeleteRecordsRequest:
		return response{msg: h.deleteRecords(r)}, true
	case *kmsg.InitProducerIDRequest:
		return response{msg: h.initProducerID(r)}, true
	case *kmsg.DescribeConfigsRequest:
		return response{msg: h.describeConfigs(r)}, true
	case *kmsg.AlterConfigsRequest:
		return response{msg: h.alterConfigs(r)}, true
	case *kmsg.CreatePartitionsRequest:
		return response{msg: h.createPartitions(r)}, true
	case *kmsg.AddPartitionsToTxnRequest:
		return response{msg: h.txns.AddPartitionsToTxn(r)}, true
	case *kmsg.AddOffsetsToTxnRequest:
		return response{msg: h.txns.AddOffsetsToTxn(r)}, true
	case *kmsg.EndTxnRequest:
		return response{msg: h.txns.EndTxn(r)}, true
	case *kmsg.TxnOffsetCommitRequest:
		return response{msg: h.txnOffsetCommit(r)}, true
	case *kmsg.IncrementalAlterConfigsRequest:
		return response{msg: h.incrementalAlterConfigs(r)}, true
	}
	// Unreachable: conn.go only dispatches advertised keys.
	panic("handler: no handler for " + kmsg.NameForKey(req.Key()))
}

// errCode maps an error from the cluster, log or records packages to a
// Kafka error code. This is the one place where internal errors become wire
// codes.
func errCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, cluster.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, cluster.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, cluster.ErrInvalidTopic):
		return kerr.InvalidTopicException.Code
	case errors.Is(err, cluster.ErrInvalidPartitions):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, cluster.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, cluster.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, configs.ErrInvalid):
		return kerr.InvalidConfig.Code
	case errors.Is(err, log.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, log.ErrRecordTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, records.ErrCorrupt):
		return kerr.CorruptMessage.Code
	case errors.Is(err, records.ErrInvalidRecord), errors.Is(err, records.ErrUnsupportedMagic):
		return kerr.InvalidRecord.Code
	case errors.Is(err, records.ErrUnsupportedCompression):
		return kerr.UnsupportedCompressionType.Code
	case errors.Is(err, log.ErrClosed), errors.Is(err, cluster.ErrClosed):
		return kerr.NotLeaderForPartition.Code
	}
	if ke, ok := errors.AsType[*kerr.Error](err); ok {
		return ke.Code
	}
	return kerr.KafkaStorageError.Code
}

func errMsg(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
