package handler

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/broker/internal/configs"
)

func (h *Handler) createTopics(req *kmsg.CreateTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		fail := func(code int16, msg string) {
			st.ErrorCode = code
			st.ErrorMessage = &msg
		}
		n, rf := rt.NumPartitions, rt.ReplicationFactor
		switch {
		case seen[rt.Topic] > 1:
			fail(kerr.InvalidRequest.Code, fmt.Sprintf("topic %q appears more than once in the request", rt.Topic))
		case len(rt.ReplicaAssignment) > 0 && (n != -1 || rf != -1):
			fail(kerr.InvalidRequest.Code, "both a replica assignment and a partition count or replication factor were given")
		case len(rt.ReplicaAssignment) == 0 && (n == 0 || n < -1):
			fail(kerr.InvalidPartitions.Code, fmt.Sprintf("number of partitions must be larger than 0, or -1 for the default, not %d", n))
		case len(rt.ReplicaAssignment) == 0 && (rf == 0 || rf < -1):
			fail(kerr.InvalidReplicationFactor.Code, fmt.Sprintf("replication factor must be larger than 0, or -1 for the default, not %d", rf))
		case rf > 1:
			fail(kerr.InvalidReplicationFactor.Code, fmt.Sprintf("unable to replicate the partition %d time(s): the target replication factor of %d cannot be reached because only 1 broker is registered", rf, rf))
		}
		if st.ErrorCode == 0 && len(rt.ReplicaAssignment) > 0 {
			n = int32(len(rt.ReplicaAssignment))
			for i, a := range rt.ReplicaAssignment {
				if a.Partition != int32(i) || len(a.Replicas) != 1 || a.Replicas[0] != h.cfg.NodeID {
					fail(kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("replica assignment of partition %d must be [%d]: this cluster has one broker", a.Partition, h.cfg.NodeID))
					break
				}
			}
		}
		if n == -1 {
			n = h.cfg.DefaultPartitions
		}
		var overrides map[string]string
		if st.ErrorCode == 0 {
			m := map[string]string{}
			for _, c := range rt.Configs {
				if c.Value != nil {
					m[c.Name] = *c.Value
				}
			}
			var err error
			if overrides, err = configs.ValidateAll(m); err != nil {
				fail(errCode(err), err.Error())
			}
		}
		if st.ErrorCode == 0 {
			t, err := h.cluster.CreateTopic(rt.Topic, n, overrides, req.ValidateOnly)
			if err != nil {
				fail(errCode(err), err.Error())
			} else {
				st.TopicID = t.ID
				st.NumPartitions = n
				st.ReplicationFactor = 1
				st.Configs = h.createTopicConfigs(overrides)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func (h *Handler) createTopicConfigs(overrides map[string]string) []kmsg.CreateTopicsResponseTopicConfig {
	var out []kmsg.CreateTopicsResponseTopicConfig
	r := h.cluster.Resolver()
	for _, d := range configs.Defs() {
		v, src := r.Value(overrides, d.Name)
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name = d.Name
		c.Value = &v
		c.Source = int8(src)
		out = append(out, c)
	}
	return out
}
