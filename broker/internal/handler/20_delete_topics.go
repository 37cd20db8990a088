package handler

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/broker/internal/cluster"
)

func (h *Handler) deleteTopics(req *kmsg.DeleteTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	for _, name := range req.TopicNames {
		st := kmsg.NewDeleteTopicsResponseTopic()
		n := name
		st.Topic = &n
		if cluster.IsInternal(name) {
			st.ErrorCode = kerr.InvalidRequest.Code
			st.ErrorMessage = errMsg(fmt.Errorf("the internal topic %s cannot be deleted", name))
		} else if err := h.cluster.DeleteTopic(name); err != nil {
			st.ErrorCode = errCode(err)
			st.ErrorMessage = errMsg(err)
		} else if err := h.groups.DeleteTopicOffsets(name); err != nil {
			h.cfg.Logger.Error("delete committed offsets of a deleted topic", "topic", name, "err", err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
