package handler

import "github.com/twmb/franz-go/pkg/kmsg"

// versionRange is an advertised [min, max] of one API key, and the lowest
// version actually served (requests in [min, serveMin) get an
// UNSUPPORTED_VERSION answer instead of a closed connection, as Kafka 4.0
// does for Produce v0-2).
type versionRange struct {
	key      int16
	min, max int16
	serveMin int16
}

// advertised lists every API the broker implements, with the ranges that
// serve the clients in ../shared/COMPAT.md without topic ids. Never add a
// key here that is not implemented: clients switch features on by what is
// advertised.
var advertised = []versionRange{
	{key: 0, min: 0, max: 9, serveMin: 3},  // Produce
	{key: 1, min: 4, max: 12, serveMin: 4}, // Fetch
	{key: 2, min: 1, max: 7, serveMin: 1},  // ListOffsets
	{key: 3, min: 0, max: 9, serveMin: 0},  // Metadata
	{key: 8, min: 2, max: 8, serveMin: 2},  // OffsetCommit
	{key: 9, min: 1, max: 8, serveMin: 1},  // OffsetFetch
	{key: 10, min: 0, max: 4, serveMin: 0}, // FindCoordinator
	{key: 11, min: 0, max: 7, serveMin: 0}, // JoinGroup
	{key: 12, min: 0, max: 4, serveMin: 0}, // Heartbeat
	{key: 13, min: 0, max: 4, serveMin: 0}, // LeaveGroup
	{key: 14, min: 0, max: 5, serveMin: 0}, // SyncGroup
	{key: 15, min: 0, max: 5, serveMin: 0}, // DescribeGroups
	{key: 16, min: 0, max: 4, serveMin: 0}, // ListGroups
	{key: 18, min: 0, max: 3, serveMin: 0}, // ApiVersions
	{key: 19, min: 0, max: 5, serveMin: 0}, // CreateTopics
	{key: 20, min: 0, max: 5, serveMin: 0}, // DeleteTopics
	{key: 21, min: 0, max: 2, serveMin: 0}, // DeleteRecords
	{key: 22, min: 0, max: 4, serveMin: 0}, // InitProducerId
	{key: 24, min: 0, max: 3, serveMin: 0}, // AddPartitionsToTxn
	{key: 25, min: 0, max: 3, serveMin: 0}, // AddOffsetsToTxn
	{key: 26, min: 0, max: 3, serveMin: 0}, // EndTxn
	{key: 28, min: 0, max: 3, serveMin: 0}, // TxnOffsetCommit
	{key: 32, min: 0, max: 4, serveMin: 0}, // DescribeConfigs
	{key: 33, min: 0, max: 2, serveMin: 0}, // AlterConfigs
	{key: 37, min: 0, max: 3, serveMin: 0}, // CreatePartitions
	{key: 42, min: 0, max: 2, serveMin: 0}, // DeleteGroups
	{key: 44, min: 0, max: 1, serveMin: 0}, // IncrementalAlterConfigs
	{key: 47, min: 0, max: 0, serveMin: 0}, // OffsetDelete
}

var rangeByKey = func() map[int16]versionRange {
	m := make(map[int16]versionRange, len(advertised))
	for _, r := range advertised {
		m[r.key] = r
	}
	return m
}()

func (h *Handler) apiVersions(req *kmsg.ApiVersionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	appendKeys(resp)
	return resp
}

func appendKeys(resp *kmsg.ApiVersionsResponse) {
	for _, r := range advertised {
		resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: r.key, MinVersion: r.min, MaxVersion: r.max})
	}
}
