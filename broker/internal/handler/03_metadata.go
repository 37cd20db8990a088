package handler

import (
	"errors"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/broker/internal/cluster"
)

// authorizedOpsUnknown is Kafka's "not requested" value (INT32_MIN).
const authorizedOpsUnknown = math.MinInt32

func (h *Handler) metadata(req *kmsg.MetadataRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: h.cfg.NodeID, Host: h.cfg.AdvertiseHost, Port: h.cfg.AdvertisePort}}
	cid := h.cluster.ClusterID()
	resp.ClusterID = &cid
	resp.ControllerID = h.cfg.NodeID
	resp.AuthorizedOperations = authorizedOpsUnknown

	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		for _, t := range h.cluster.Topics() {
			resp.Topics = append(resp.Topics, h.topicMetadata(t))
		}
		return resp
	}
	autoCreate := h.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		if rt.Topic == nil {
			st := kmsg.NewMetadataResponseTopic()
			st.ErrorCode = kerr.InvalidTopicException.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		name := *rt.Topic
		t, ok := h.cluster.Topic(name)
		if !ok && autoCreate {
			var err error
			t, err = h.cluster.CreateTopic(name, h.cfg.DefaultPartitions, nil, false)
			if errors.Is(err, cluster.ErrTopicExists) { // created concurrently
				t, ok = h.cluster.Topic(name)
				err = nil
			}
			if err != nil {
				st := kmsg.NewMetadataResponseTopic()
				st.Topic = &name
				st.ErrorCode = errCode(err)
				resp.Topics = append(resp.Topics, st)
				continue
			}
			ok = t != nil
		}
		if !ok {
			st := kmsg.NewMetadataResponseTopic()
			st.Topic = &name
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if cluster.ValidateTopicName(name) != nil {
				st.ErrorCode = kerr.InvalidTopicException.Code
			}
			resp.Topics = append(resp.Topics, st)
			continue
		}
		resp.Topics = append(resp.Topics, h.topicMetadata(t))
	}
	return resp
}

func (h *Handler) topicMetadata(t *cluster.Topic) kmsg.MetadataResponseTopic {
	st := kmsg.NewMetadataResponseTopic()
	name := t.Name
	st.Topic = &name
	st.TopicID = t.ID
	st.IsInternal = t.Internal
	st.AuthorizedOperations = authorizedOpsUnknown
	node := []int32{h.cfg.NodeID}
	st.Partitions = make([]kmsg.MetadataResponseTopicPartition, len(t.Partitions))
	for i := range t.Partitions {
		sp := kmsg.NewMetadataResponseTopicPartition()
		sp.Partition = int32(i)
		sp.Leader = h.cfg.NodeID
		sp.LeaderEpoch = leaderEpoch
		sp.Replicas = node
		sp.ISR = node
		st.Partitions[i] = sp
	}
	return st
}
