package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// GroupError is a broker's refusal of an operation on one consumer group,
// worded for people. Err is the Kafka error (a *kerr.Error when the broker
// sent a code), so errors.Is(err, kerr.NonEmptyGroup) works on it.
type GroupError struct {
	Group string
	Op    string // "describe", "delete", "reset offsets of", ...
	Err   error
	// Members is the number of active members, when known (> 0), for
	// refusals because the group is in use.
	Members int
	Detail  string // the broker's error message, if it sent one
}

// Error explains the failure and, when there is one, the usual remedy.
func (e *GroupError) Error() string {
	var msg string
	switch {
	case errors.Is(e.Err, kerr.GroupIDNotFound):
		msg = fmt.Sprintf("group %s does not exist (see `sluice groups list`)", e.Group)
	case errors.Is(e.Err, kerr.NonEmptyGroup) && e.Members > 0:
		msg = fmt.Sprintf("group %s has %d active %s; stop them first (see `sluice groups describe %s`)",
			e.Group, e.Members, plural(e.Members, "member", "members"), e.Group)
	case errors.Is(e.Err, kerr.NonEmptyGroup), errors.Is(e.Err, kerr.UnknownMemberID):
		msg = fmt.Sprintf("group %s still has members; stop its consumers first (see `sluice groups describe %s`)",
			e.Group, e.Group)
	case errors.Is(e.Err, kerr.GroupSubscribedToTopic):
		msg = fmt.Sprintf("cannot %s group %s: its members still consume the topic; stop them first", e.Op, e.Group)
	case errors.Is(e.Err, kerr.InvalidGroupID):
		msg = fmt.Sprintf("invalid group name %q", e.Group)
	case errors.Is(e.Err, kerr.GroupAuthorizationFailed):
		msg = fmt.Sprintf("not authorized to %s group %s", e.Op, e.Group)
	case errors.Is(e.Err, kerr.CoordinatorNotAvailable), errors.Is(e.Err, kerr.CoordinatorLoadInProgress),
		errors.Is(e.Err, kerr.NotCoordinator):
		msg = fmt.Sprintf("cannot %s group %s: %s (the group coordinator is not ready; try again shortly)",
			e.Op, e.Group, describe(e.Err))
	default:
		msg = fmt.Sprintf("cannot %s group %s: %s", e.Op, e.Group, describe(e.Err))
	}
	if e.Detail != "" && (e.Err == nil || e.Detail != e.Err.Error()) {
		msg += ": " + e.Detail
	}
	return msg
}

// Unwrap returns the Kafka error.
func (e *GroupError) Unwrap() error { return e.Err }

// groupErr wraps err as a *GroupError, or returns nil when err is nil.
func groupErr(op, group string, err error, detail string) error {
	if err == nil {
		return nil
	}
	return &GroupError{Group: group, Op: op, Err: err, Detail: detail}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// UnsupportedError reports that no broker of the cluster implements API, so
// the cluster cannot serve the command at all (for example a broker without
// a group coordinator). Err is the client's original error.
type UnsupportedError struct {
	API string // the Kafka request name, e.g. "ListGroups"
	Err error
}

// Error names the missing request and says what it means.
func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("the broker does not support %s: it has no consumer group coordinator (use a broker or cluster that does)", e.API)
}

// Unwrap returns the client's error.
func (e *UnsupportedError) Unwrap() error { return e.Err }

// unsupported returns an *UnsupportedError wrapping err if no broker
// advertises key in ApiVersions, and nil otherwise (also when it cannot
// tell). franz-go's own message for this case ("broker is too old")
// suggests an upgrade that may not exist.
func unsupported(ctx context.Context, adm *kadm.Client, key kmsg.Key, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	vs, verr := adm.ApiVersions(ctx)
	if verr != nil || len(vs) == 0 {
		return nil
	}
	for _, v := range vs {
		if v.Err != nil {
			return nil
		}
		if _, ok := v.KeyMaxVersion(int16(key)); ok {
			return nil
		}
	}
	return &UnsupportedError{API: key.Name(), Err: err}
}

// GroupSummary is one line of `groups list`.
type GroupSummary struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Members      int    `json:"members"` // -1 if the group could not be described
	Coordinator  int32  `json:"coordinator"`
}

// ListGroups returns every group in the cluster sorted by name, with its
// member count (from DescribeGroups).
func ListGroups(ctx context.Context, adm *kadm.Client) ([]GroupSummary, error) {
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		if u := unsupported(ctx, adm, kmsg.ListGroups, err); u != nil {
			return nil, u
		}
		return nil, fmt.Errorf("list groups: %w", err)
	}
	out := make([]GroupSummary, 0, len(listed))
	for _, l := range listed.Sorted() {
		out = append(out, GroupSummary{
			Group: l.Group, State: l.State, ProtocolType: l.ProtocolType, Members: -1, Coordinator: l.Coordinator,
		})
	}
	if len(out) == 0 {
		return out, nil
	}
	// A failed describe only loses the member counts: the list is still
	// worth printing.
	described, _ := adm.DescribeGroups(ctx, listed.Groups()...)
	for i := range out {
		if d, ok := described[out[i].Group]; ok && d.Err == nil {
			out[i].Members = len(d.Members)
			if out[i].State == "" { // brokers before Kafka 2.6 list no state
				out[i].State = d.State
			}
		}
	}
	return out, nil
}

// WriteGroupList prints groups as a GROUP STATE PROTOCOL-TYPE MEMBERS table
// or as a JSON array.
func WriteGroupList(w io.Writer, out Output, groups []GroupSummary) error {
	if out == JSON {
		return writeJSON(w, groups)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tSTATE\tPROTOCOL-TYPE\tMEMBERS")
	for _, g := range groups {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Group, dash(g.State), dash(g.ProtocolType), offsetText(int64(g.Members)))
	}
	return tw.Flush()
}

// GroupMember is one member of a described group.
type GroupMember struct {
	MemberID   string `json:"member_id"`
	InstanceID string `json:"instance_id,omitempty"` // static membership (KIP-345)
	ClientID   string `json:"client_id"`
	Host       string `json:"host"`
	// Assignment is what the group leader assigned to this member; nil for
	// groups that are not consumer groups.
	Assignment []TopicPartitions `json:"assignment"`
}

// TopicPartitions is a set of partitions of one topic.
type TopicPartitions struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

// String formats tp as topic:p,p,p.
func (tp TopicPartitions) String() string { return tp.Topic + ":" + joinInt32(tp.Partitions) }

// PartitionLag is one partition of a described group: its committed offset,
// end offset and lag, and the member it is assigned to.
type PartitionLag struct {
	Topic         string `json:"topic"`
	Partition     int32  `json:"partition"`
	CurrentOffset int64  `json:"current_offset"` // -1 if the group committed none
	LogEndOffset  int64  `json:"log_end_offset"` // -1 if unknown
	Lag           int64  `json:"lag"`            // -1 if unknown
	MemberID      string `json:"member_id,omitempty"`
	Host          string `json:"host,omitempty"`
	ClientID      string `json:"client_id,omitempty"`
	Error         string `json:"error,omitempty"`
}

// GroupDescription is what `groups describe` shows for one group.
type GroupDescription struct {
	Group        string         `json:"group"`
	State        string         `json:"state"`
	ProtocolType string         `json:"protocol_type"`
	Protocol     string         `json:"protocol"` // the partition assignor, e.g. cooperative-sticky
	Coordinator  string         `json:"coordinator"`
	Members      []GroupMember  `json:"members"`
	Offsets      []PartitionLag `json:"offsets"`
}

// DescribeGroups describes each of groups (DescribeGroups, OffsetFetch and
// ListOffsets). It returns the descriptions of the groups that exist and,
// joined, a *GroupError for each that does not or cannot be described.
func DescribeGroups(ctx context.Context, adm *kadm.Client, groups ...string) ([]GroupDescription, error) {
	described, err := adm.DescribeGroups(ctx, groups...)
	if err != nil && len(described) == 0 {
		if u := unsupported(ctx, adm, kmsg.DescribeGroups, err); u != nil {
			return nil, u
		}
		return nil, fmt.Errorf("describe groups: %w", err)
	}
	var (
		out  []GroupDescription
		errs []error
	)
	for _, g := range groups {
		d, ok := described[g]
		if !ok {
			errs = append(errs, fmt.Errorf("describe group %s: the broker did not return it", g))
			continue
		}
		if err := groupExists(d); err != nil {
			errs = append(errs, err)
			continue
		}
		gd, err := describeGroup(ctx, adm, d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, gd)
	}
	return out, errors.Join(errs...)
}

// groupExists turns a described group's error, or the Dead state Kafka
// reports for groups it does not know, into a *GroupError.
func groupExists(d kadm.DescribedGroup) error {
	if d.Err != nil {
		return groupErr("describe", d.Group, d.Err, d.ErrMessage)
	}
	if d.State == "Dead" && len(d.Members) == 0 {
		return groupErr("describe", d.Group, kerr.GroupIDNotFound, "")
	}
	return nil
}

func describeGroup(ctx context.Context, adm *kadm.Client, d kadm.DescribedGroup) (GroupDescription, error) {
	gd := GroupDescription{
		Group: d.Group, State: d.State, ProtocolType: d.ProtocolType, Protocol: d.Protocol,
		Coordinator: fmt.Sprintf("%d (%s)", d.Coordinator.NodeID,
			netJoin(d.Coordinator.Host, d.Coordinator.Port)),
		Members: []GroupMember{},
		Offsets: []PartitionLag{},
	}
	type tp struct {
		t string
		p int32
	}
	rows := make(map[tp]*PartitionLag)
	row := func(t string, p int32) *PartitionLag {
		k := tp{t, p}
		if r, ok := rows[k]; ok {
			return r
		}
		r := &PartitionLag{Topic: t, Partition: p, CurrentOffset: -1, LogEndOffset: -1, Lag: -1}
		rows[k] = r
		return r
	}
	for _, m := range d.Members {
		gm := GroupMember{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost}
		if m.InstanceID != nil {
			gm.InstanceID = *m.InstanceID
		}
		if a, ok := m.Assigned.AsConsumer(); ok {
			gm.Assignment = []TopicPartitions{}
			for _, t := range a.Topics {
				ps := slices.Clone(t.Partitions)
				slices.Sort(ps)
				gm.Assignment = append(gm.Assignment, TopicPartitions{Topic: t.Topic, Partitions: ps})
				for _, p := range ps {
					r := row(t.Topic, p)
					r.MemberID, r.Host, r.ClientID = m.MemberID, m.ClientHost, m.ClientID
				}
			}
			slices.SortFunc(gm.Assignment, func(a, b TopicPartitions) int { return cmp.Compare(a.Topic, b.Topic) })
		}
		gd.Members = append(gd.Members, gm)
	}

	committed, err := fetchCommitted(ctx, adm, d.Group)
	if err != nil {
		return GroupDescription{}, err
	}
	for _, o := range committed.Sorted() {
		r := row(o.Topic, o.Partition)
		if o.Err != nil {
			r.Error = "offset fetch: " + describe(o.Err)
			continue
		}
		r.CurrentOffset = o.At
	}

	topics := make([]string, 0, len(rows))
	for k := range rows {
		topics = append(topics, k.t)
	}
	slices.Sort(topics)
	topics = slices.Compact(topics)
	var ends kadm.ListedOffsets
	var endErr error
	if len(topics) > 0 {
		ends, endErr = adm.ListEndOffsets(ctx, topics...)
	}
	for k, r := range rows {
		switch e, ok := ends.Lookup(k.t, k.p); {
		case endErr != nil:
			r.Error = joinText(r.Error, "list offsets: "+describe(endErr))
		case !ok:
			if e, ok := ends.Lookup(k.t, -1); ok && e.Err != nil {
				r.Error = joinText(r.Error, describe(e.Err)) // the topic is gone
			}
		case e.Err != nil:
			r.Error = joinText(r.Error, "list offsets: "+describe(e.Err))
		default:
			r.LogEndOffset = e.Offset
		}
		if r.CurrentOffset >= 0 && r.LogEndOffset >= 0 {
			r.Lag = max(r.LogEndOffset-r.CurrentOffset, 0)
		}
		gd.Offsets = append(gd.Offsets, *r)
	}
	slices.SortFunc(gd.Offsets, func(a, b PartitionLag) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return gd, nil
}

// fetchCommitted returns the committed offsets of group, leaving out
// partitions without a commit. A group the broker does not know has none.
func fetchCommitted(ctx context.Context, adm *kadm.Client, group string) (kadm.OffsetResponses, error) {
	committed, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return kadm.OffsetResponses{}, nil
	}
	if err != nil {
		if u := unsupported(ctx, adm, kmsg.OffsetFetch, err); u != nil {
			return nil, u
		}
		return nil, groupErr("fetch offsets of", group, err, "")
	}
	committed.DeleteFunc(func(o kadm.OffsetResponse) bool { return o.Err == nil && o.At < 0 })
	return committed, nil
}

// WriteGroupDescriptions prints ds as text (one block per group) or as a
// JSON array.
func WriteGroupDescriptions(w io.Writer, out Output, ds []GroupDescription) error {
	if out == JSON {
		if ds == nil {
			ds = []GroupDescription{}
		}
		return writeJSON(w, ds)
	}
	for i, d := range ds {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if err := writeGroupDescription(w, d); err != nil {
			return err
		}
	}
	return nil
}

func writeGroupDescription(w io.Writer, d GroupDescription) error {
	fmt.Fprintf(w, "Group: %s  State: %s  Protocol: %s  Assignor: %s  Coordinator: %s\n\n",
		d.Group, dash(d.State), dash(d.ProtocolType), dash(d.Protocol), d.Coordinator)
	if len(d.Members) == 0 {
		fmt.Fprintln(w, "Members: none (the group is inactive)")
	} else {
		fmt.Fprintf(w, "Members: %d\n", len(d.Members))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MEMBER-ID\tINSTANCE-ID\tCLIENT-ID\tHOST\tASSIGNMENT")
		for _, m := range d.Members {
			as := make([]string, len(m.Assignment))
			for i, a := range m.Assignment {
				as[i] = a.String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.MemberID, dash(m.InstanceID), dash(m.ClientID),
				dash(m.Host), dash(strings.Join(as, " ")))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	if len(d.Offsets) == 0 {
		_, err := fmt.Fprintln(w, "Offsets: none committed and no partitions assigned")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tCONSUMER-ID\tHOST\tCLIENT-ID")
	for _, o := range d.Offsets {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s", o.Topic, o.Partition,
			offsetText(o.CurrentOffset), offsetText(o.LogEndOffset), offsetText(o.Lag),
			dash(o.MemberID), dash(o.Host), dash(o.ClientID))
		if o.Error != "" {
			fmt.Fprintf(tw, "\t%s", o.Error)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// GroupResult is the outcome of deleting one group (or its offsets).
type GroupResult struct {
	Group  string `json:"group"`
	Result string `json:"result"`
}

// DeleteGroups deletes groups (DeleteGroups). It returns the groups deleted
// and, joined, a *GroupError for each that was not.
func DeleteGroups(ctx context.Context, adm *kadm.Client, groups ...string) ([]GroupResult, error) {
	resps, err := adm.DeleteGroups(ctx, groups...)
	if err != nil && len(resps) == 0 {
		if u := unsupported(ctx, adm, kmsg.DeleteGroups, err); u != nil {
			return nil, u
		}
		return nil, fmt.Errorf("delete groups: %w", err)
	}
	var (
		done []GroupResult
		errs []error
	)
	for _, g := range groups {
		r, ok := resps[g]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("delete group %s: the broker did not answer for it", g))
		case r.Err != nil:
			errs = append(errs, groupErr("delete", g, r.Err, r.ErrMessage))
		default:
			done = append(done, GroupResult{Group: g, Result: "deleted"})
		}
	}
	return done, errors.Join(errs...)
}

// WriteGroupResults prints one line per result ("deleted group g") or a
// JSON array.
func WriteGroupResults(w io.Writer, out Output, rs []GroupResult) error {
	if out == JSON {
		if rs == nil {
			rs = []GroupResult{}
		}
		return writeJSON(w, rs)
	}
	for _, r := range rs {
		if _, err := fmt.Fprintf(w, "%s group %s\n", r.Result, r.Group); err != nil {
			return err
		}
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func joinText(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func netJoin(host string, port int32) string {
	if host == "" {
		return "-"
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}
