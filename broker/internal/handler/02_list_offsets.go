package handler

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (h *Handler) listOffsets(req *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.ListOffsetsResponseTopic{Topic: rt.Topic}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset = -1, -1
			st.Partitions = append(st.Partitions, sp)
			last := &st.Partitions[len(st.Partitions)-1]
			p, ok := h.cluster.Partition(rt.Topic, rp.Partition)
			if !ok {
				last.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			if e := rp.CurrentLeaderEpoch; e != -1 && e != leaderEpoch {
				if e > leaderEpoch {
					last.ErrorCode = kerr.UnknownLeaderEpoch.Code
				} else {
					last.ErrorCode = kerr.FencedLeaderEpoch.Code
				}
				continue
			}
			last.LeaderEpoch = leaderEpoch
			l := p.Log()
			switch ts := rp.Timestamp; {
			case ts == -1: // latest: the high watermark, or the last stable offset for read_committed
				last.Offset = l.EndOffset()
				if req.IsolationLevel == 1 {
					last.Offset = p.LastStableOffset()
				}
			case ts == -2: // earliest
				last.Offset = l.StartOffset()
			case ts == -3 && req.Version >= 7: // max timestamp (KIP-734)
				last.Offset, last.Timestamp = l.MaxTimestamp()
			case ts >= 0:
				off, t, found, err := l.OffsetForTime(ts)
				switch {
				case err != nil:
					last.ErrorCode = errCode(err)
				case found && req.IsolationLevel == 1 && off >= p.LastStableOffset():
					// Not yet visible to read_committed consumers.
				case found:
					last.Offset, last.Timestamp = off, t
				}
			default:
				last.ErrorCode = kerr.InvalidRequest.Code
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
