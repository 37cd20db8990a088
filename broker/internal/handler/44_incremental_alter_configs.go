package handler

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/broker/internal/cluster"
	"github.com/sluicehq/sluice/broker/internal/configs"
)

func (h *Handler) incrementalAlterConfigs(req *kmsg.IncrementalAlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType = rr.ResourceType
		sr.ResourceName = rr.ResourceName
		err := h.alterTopicConfigs(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(cur map[string]string) error {
			for _, c := range rr.Configs {
				if _, ok := configs.Lookup(c.Name); !ok {
					return fmt.Errorf("%w: unknown topic config %q", configs.ErrInvalid, c.Name)
				}
				switch c.Op {
				case kmsg.IncrementalAlterConfigOpSet:
					if c.Value == nil {
						return fmt.Errorf("%w: %s: SET needs a value", configs.ErrInvalid, c.Name)
					}
					cur[c.Name] = *c.Value
				case kmsg.IncrementalAlterConfigOpDelete:
					delete(cur, c.Name)
				case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
					d, _ := configs.Lookup(c.Name)
					if d.Type != configs.TypeList {
						return fmt.Errorf("%w: %s is not a list: APPEND and SUBTRACT need a list config", configs.ErrInvalid, c.Name)
					}
					if c.Value == nil {
						return fmt.Errorf("%w: %s: %s needs a value", configs.ErrInvalid, c.Name, c.Op)
					}
					v, _ := h.cluster.Resolver().Value(cur, c.Name)
					items := strings.Split(v, ",")
					for it := range strings.SplitSeq(*c.Value, ",") {
						it = strings.TrimSpace(it)
						if c.Op == kmsg.IncrementalAlterConfigOpAppend {
							if !slices.Contains(items, it) {
								items = append(items, it)
							}
						} else {
							items = slices.DeleteFunc(items, func(s string) bool { return s == it })
						}
					}
					cur[c.Name] = strings.Join(items, ",")
				default:
					return fmt.Errorf("%w: %s: unknown operation %d", configs.ErrInvalid, c.Name, c.Op)
				}
			}
			return nil
		})
		sr.ErrorCode, sr.ErrorMessage = errCode(err), errMsg(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

func (h *Handler) alterConfigs(req *kmsg.AlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType = rr.ResourceType
		sr.ResourceName = rr.ResourceName
		err := h.alterTopicConfigs(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(cur map[string]string) error {
			clear(cur) // AlterConfigs replaces the whole set
			for _, c := range rr.Configs {
				if c.Value != nil {
					cur[c.Name] = *c.Value
				}
			}
			return nil
		})
		sr.ErrorCode, sr.ErrorMessage = errCode(err), errMsg(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

// errNoBrokerAlter is returned for broker resources, whose configs are
// static (set when the broker starts).
var errNoBrokerAlter = fmt.Errorf("%w: broker configs are static: set them when starting the broker", kerr.InvalidRequest)

func (h *Handler) alterTopicConfigs(typ kmsg.ConfigResourceType, name string, validateOnly bool, edit func(map[string]string) error) error {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
	case kmsg.ConfigResourceTypeBroker:
		return errNoBrokerAlter
	default:
		return fmt.Errorf("%w: resource type %d has no configs here", kerr.InvalidRequest, typ)
	}
	t, ok := h.cluster.Topic(name)
	if !ok {
		return fmt.Errorf("%w: topic %q", cluster.ErrUnknownTopic, name)
	}
	cur := maps.Clone(t.Configs)
	if err := edit(cur); err != nil {
		return err
	}
	valid, err := configs.ValidateAll(cur)
	if err != nil || validateOnly {
		return err
	}
	return h.cluster.SetConfigs(name, valid)
}
