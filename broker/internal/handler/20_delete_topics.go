package handler

import "github.com/twmb/franz-go/pkg/kmsg"

func (h *Handler) deleteTopics(req *kmsg.DeleteTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	for _, name := range req.TopicNames {
		st := kmsg.NewDeleteTopicsResponseTopic()
		n := name
		st.Topic = &n
		if err := h.cluster.DeleteTopic(name); err != nil {
			st.ErrorCode = errCode(err)
			st.ErrorMessage = errMsg(err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
