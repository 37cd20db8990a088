package handler

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (h *Handler) createPartitions(req *kmsg.CreatePartitionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		for _, a := range rt.Assignment {
			if len(a.Replicas) != 1 || a.Replicas[0] != h.cfg.NodeID {
				st.ErrorCode = kerr.InvalidReplicaAssignment.Code
				msg := fmt.Sprintf("each new partition's replicas must be [%d]: this cluster has one broker", h.cfg.NodeID)
				st.ErrorMessage = &msg
			}
		}
		if st.ErrorCode == 0 {
			if err := h.cluster.AddPartitions(rt.Topic, rt.Count, req.ValidateOnly); err != nil {
				st.ErrorCode = errCode(err)
				st.ErrorMessage = errMsg(err)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
