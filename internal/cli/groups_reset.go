package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ResetMode says where `groups reset-offsets` moves a group's offsets.
type ResetMode int

const (
	// ResetUnset is the zero ResetMode: no --to-* flag was given.
	ResetUnset ResetMode = iota
	// ResetEarliest moves to the log start offset (--to-earliest).
	ResetEarliest
	// ResetLatest moves to the log end offset (--to-latest).
	ResetLatest
	// ResetToOffset moves to ResetTarget.Offset, clamped to the log's
	// start and end (--to-offset).
	ResetToOffset
	// ResetToDatetime moves to the first offset whose timestamp is at or
	// after ResetTarget.Time, or to the end if there is none
	// (--to-datetime).
	ResetToDatetime
	// ResetShiftBy moves the committed offset by ResetTarget.Offset
	// (negative: back), clamped to the log's start and end (--shift-by).
	ResetShiftBy
)

// ResetTarget is where to move offsets: a mode and its argument.
type ResetTarget struct {
	Mode   ResetMode
	Offset int64     // the offset for ResetToOffset, the shift for ResetShiftBy
	Time   time.Time // for ResetToDatetime
}

// String describes t the way its flag is spelled.
func (t ResetTarget) String() string {
	switch t.Mode {
	case ResetEarliest:
		return "--to-earliest"
	case ResetLatest:
		return "--to-latest"
	case ResetToOffset:
		return "--to-offset " + strconv.FormatInt(t.Offset, 10)
	case ResetToDatetime:
		return "--to-datetime " + t.Time.Format(time.RFC3339Nano)
	case ResetShiftBy:
		return "--shift-by " + strconv.FormatInt(t.Offset, 10)
	}
	return "(no target)"
}

// ResetSpec says which offsets of which group `groups reset-offsets` moves.
type ResetSpec struct {
	Group string
	// Topics are the partitions to reset; a nil Partitions means every
	// partition of the topic.
	Topics []TopicPartitions
	// AllTopics resets every partition the group has committed offsets for
	// (instead of Topics).
	AllTopics bool
	Target    ResetTarget
}

// ParseTopicPartitions parses a --topic value: "T" (every partition of T) or
// "T:P,P,..." (those partitions).
func ParseTopicPartitions(s string) (TopicPartitions, error) {
	name, ps, hasParts := strings.Cut(s, ":")
	if name == "" {
		return TopicPartitions{}, fmt.Errorf("invalid --topic %q: want TOPIC or TOPIC:PARTITION,PARTITION,...", s)
	}
	tp := TopicPartitions{Topic: name}
	if !hasParts {
		return tp, nil
	}
	for p := range strings.SplitSeq(ps, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
		if err != nil || n < 0 {
			return TopicPartitions{}, fmt.Errorf("invalid --topic %q: partition %q is not a number >= 0 (want TOPIC:0,1,2)", s, p)
		}
		tp.Partitions = append(tp.Partitions, int32(n))
	}
	slices.Sort(tp.Partitions)
	tp.Partitions = slices.Compact(tp.Partitions)
	return tp, nil
}

// DatetimeHelp describes the formats ParseDatetime accepts.
const DatetimeHelp = "RFC 3339 (2024-05-01T12:00:00Z, 2024-05-01T14:00:00+02:00) or local time (2024-05-01T12:00:00, 2024-05-01)"

// ParseDatetime parses a --to-datetime value: RFC 3339 with a zone, or
// 2006-01-02T15:04:05 or 2006-01-02 without one, which are taken in loc
// (time.Local for the command). Fractional seconds are allowed.
func ParseDatetime(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid --to-datetime %q: want %s", s, DatetimeHelp)
}

// PlannedOffset is one partition of a ResetPlan.
type PlannedOffset struct {
	Topic         string `json:"topic"`
	Partition     int32  `json:"partition"`
	CurrentOffset int64  `json:"current_offset"` // -1 if the group committed none
	NewOffset     int64  `json:"new_offset"`
}

// ResetPlan is what `groups reset-offsets` would do, or did when Executed.
type ResetPlan struct {
	Group      string          `json:"group"`
	Target     string          `json:"target"`
	Executed   bool            `json:"executed"`
	Partitions []PlannedOffset `json:"partitions"`
}

// PlanReset works out the new offsets for spec without changing anything.
// It refuses (a *GroupError wrapping kerr.NonEmptyGroup) while the group has
// active members, as Kafka would refuse the commit. A missing topic is a
// *TopicError.
func PlanReset(ctx context.Context, adm *kadm.Client, spec ResetSpec) (ResetPlan, error) {
	if spec.Target.Mode == ResetUnset {
		return ResetPlan{}, errors.New("no reset target: give one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by")
	}
	if err := checkInactive(ctx, adm, spec.Group, "reset offsets of"); err != nil {
		return ResetPlan{}, err
	}
	committed, err := fetchCommitted(ctx, adm, spec.Group)
	if err != nil {
		return ResetPlan{}, err
	}
	parts, err := resetPartitions(ctx, adm, spec, committed)
	if err != nil {
		return ResetPlan{}, err
	}
	topics := make([]string, 0, len(parts))
	for t := range parts {
		topics = append(topics, t)
	}
	slices.Sort(topics)

	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return ResetPlan{}, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return ResetPlan{}, fmt.Errorf("list end offsets: %w", err)
	}
	var byTime kadm.ListedOffsets
	if spec.Target.Mode == ResetToDatetime {
		if byTime, err = adm.ListOffsetsAfterMilli(ctx, spec.Target.Time.UnixMilli(), topics...); err != nil {
			return ResetPlan{}, fmt.Errorf("list offsets by time: %w", err)
		}
	}

	plan := ResetPlan{Group: spec.Group, Target: spec.Target.String(), Partitions: []PlannedOffset{}}
	for _, t := range topics {
		for _, p := range parts[t] {
			cur := int64(-1)
			if c, ok := committed.Lookup(t, p); ok && c.Err == nil {
				cur = c.At
			}
			start, err := listed(starts, t, p)
			if err != nil {
				return ResetPlan{}, err
			}
			end, err := listed(ends, t, p)
			if err != nil {
				return ResetPlan{}, err
			}
			var next int64
			switch spec.Target.Mode {
			case ResetEarliest:
				next = start
			case ResetLatest:
				next = end
			case ResetToOffset:
				next = min(max(spec.Target.Offset, start), end)
			case ResetShiftBy:
				if cur < 0 {
					return ResetPlan{}, fmt.Errorf("cannot shift %s[%d]: group %s has no committed offset there to shift from (use --to-offset, --to-earliest or --to-latest)", t, p, spec.Group)
				}
				next = min(max(cur+spec.Target.Offset, start), end)
			case ResetToDatetime:
				o, ok := byTime.Lookup(t, p)
				switch {
				case !ok || o.Offset < 0:
					next = end // no record at or after the time
				case o.Err != nil:
					return ResetPlan{}, fmt.Errorf("list offsets by time for %s[%d]: %s", t, p, describe(o.Err))
				default:
					next = min(max(o.Offset, start), end)
				}
			}
			plan.Partitions = append(plan.Partitions, PlannedOffset{Topic: t, Partition: p, CurrentOffset: cur, NewOffset: next})
		}
	}
	return plan, nil
}

// listed returns the offset of t[p] in offs, or an error saying why there is
// none.
func listed(offs kadm.ListedOffsets, t string, p int32) (int64, error) {
	o, ok := offs.Lookup(t, p)
	if !ok {
		if te, ok := offs.Lookup(t, -1); ok && te.Err != nil {
			return 0, topicErr("list offsets of", t, te.Err, "")
		}
		return 0, fmt.Errorf("list offsets: the broker did not return %s[%d]", t, p)
	}
	if o.Err != nil {
		return 0, fmt.Errorf("list offsets of %s[%d]: %s", t, p, describe(o.Err))
	}
	return o.Offset, nil
}

// resetPartitions resolves the partitions spec names, sorted, by topic.
func resetPartitions(ctx context.Context, adm *kadm.Client, spec ResetSpec, committed kadm.OffsetResponses) (map[string][]int32, error) {
	out := make(map[string][]int32)
	if spec.AllTopics {
		for _, o := range committed.Sorted() {
			out[o.Topic] = append(out[o.Topic], o.Partition)
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("group %s has no committed offsets, so --all-topics selects nothing; name the topics with --topic T", spec.Group)
		}
		return out, nil
	}
	if len(spec.Topics) == 0 {
		return nil, errors.New("no partitions selected: give --topic T[:P,P...] (repeatable) or --all-topics")
	}
	names := make([]string, 0, len(spec.Topics))
	for _, tp := range spec.Topics {
		names = append(names, tp.Topic)
	}
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("look up topics: %w", err)
	}
	for _, tp := range spec.Topics {
		d, ok := details[tp.Topic]
		if !ok {
			return nil, topicErr("look up", tp.Topic, kerr.UnknownTopicOrPartition, "")
		}
		if d.Err != nil {
			return nil, topicErr("look up", tp.Topic, d.Err, "")
		}
		if tp.Partitions == nil {
			out[tp.Topic] = append(out[tp.Topic], d.Partitions.Numbers()...)
		}
		for _, p := range tp.Partitions {
			if _, ok := d.Partitions[p]; !ok {
				return nil, fmt.Errorf("topic %s has no partition %d (it has %d: 0 to %d)", tp.Topic, p, len(d.Partitions), len(d.Partitions)-1)
			}
			out[tp.Topic] = append(out[tp.Topic], p)
		}
	}
	for t, ps := range out {
		slices.Sort(ps)
		out[t] = slices.Compact(ps)
	}
	return out, nil
}

// checkInactive returns a *GroupError wrapping kerr.NonEmptyGroup if group
// has members or is rebalancing. A group that does not exist is inactive.
func checkInactive(ctx context.Context, adm *kadm.Client, group, op string) error {
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil && len(described) == 0 {
		if u := unsupported(ctx, adm, kmsg.DescribeGroups, err); u != nil {
			return u
		}
		return fmt.Errorf("describe group %s: %w", group, err)
	}
	d, ok := described[group]
	if !ok {
		return fmt.Errorf("describe group %s: the broker did not return it", group)
	}
	if d.Err != nil && !errors.Is(d.Err, kerr.GroupIDNotFound) {
		return groupErr(op, group, d.Err, d.ErrMessage)
	}
	if d.Err == nil && (len(d.Members) > 0 || (d.State != "Empty" && d.State != "Dead" && d.State != "")) {
		return &GroupError{Group: group, Op: op, Err: kerr.NonEmptyGroup, Members: len(d.Members)}
	}
	return nil
}

// ExecuteReset commits the new offsets of plan and marks it Executed. It
// checks again that the group is inactive; a consumer joining in between
// makes the broker refuse the commit, reported as a *GroupError.
func ExecuteReset(ctx context.Context, adm *kadm.Client, plan *ResetPlan) error {
	if err := checkInactive(ctx, adm, plan.Group, "reset offsets of"); err != nil {
		return err
	}
	offs := make(kadm.Offsets)
	for _, p := range plan.Partitions {
		offs.Add(kadm.Offset{Topic: p.Topic, Partition: p.Partition, At: p.NewOffset, LeaderEpoch: -1})
	}
	resps, err := adm.CommitOffsets(ctx, plan.Group, offs)
	if err != nil {
		if u := unsupported(ctx, adm, kmsg.OffsetCommit, err); u != nil {
			return u
		}
		return groupErr("reset offsets of", plan.Group, err, "")
	}
	var errs []error
	for _, r := range resps.Sorted() {
		if r.Err == nil {
			continue
		}
		if errors.Is(r.Err, kerr.UnknownMemberID) || errors.Is(r.Err, kerr.IllegalGeneration) ||
			errors.Is(r.Err, kerr.RebalanceInProgress) {
			return groupErr("reset offsets of", plan.Group, kerr.NonEmptyGroup, "")
		}
		errs = append(errs, fmt.Errorf("commit %s[%d]: %s", r.Topic, r.Partition, describe(r.Err)))
	}
	if len(errs) > 0 {
		return fmt.Errorf("reset offsets of group %s: %w", plan.Group, errors.Join(errs...))
	}
	plan.Executed = true
	return nil
}

// WriteResetPlan prints plan as a TOPIC PARTITION CURRENT-OFFSET NEW-OFFSET
// table followed by what was done (or that nothing was), or as JSON.
func WriteResetPlan(w io.Writer, out Output, plan ResetPlan) error {
	if out == JSON {
		return writeJSON(w, plan)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT-OFFSET\tNEW-OFFSET")
	for _, p := range plan.Partitions {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", p.Topic, p.Partition, offsetText(p.CurrentOffset), p.NewOffset)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var err error
	if plan.Executed {
		_, err = fmt.Fprintf(w, "\nreset %d %s of group %s (%s)\n", len(plan.Partitions),
			plural(len(plan.Partitions), "partition", "partitions"), plan.Group, plan.Target)
	} else {
		_, err = fmt.Fprintln(w, "\ndry run: nothing changed; add --execute to apply")
	}
	return err
}

// DeleteOffsets deletes the committed offsets of group on the partitions tps
// name (OffsetDelete); a nil Partitions means every partition of the topic
// the group committed. The group must not be consuming those topics.
func DeleteOffsets(ctx context.Context, adm *kadm.Client, group string, tps []TopicPartitions) ([]PlannedOffset, error) {
	committed, err := fetchCommitted(ctx, adm, group)
	if err != nil {
		return nil, err
	}
	set := make(kadm.TopicsSet)
	for _, tp := range tps {
		ps := tp.Partitions
		if ps == nil {
			for p := range committed[tp.Topic] {
				ps = append(ps, p)
			}
			if len(ps) == 0 {
				return nil, fmt.Errorf("group %s has no committed offsets for topic %s (see `sluice groups describe %s`)", group, tp.Topic, group)
			}
		}
		set.Add(tp.Topic, ps...)
	}
	resps, err := adm.DeleteOffsets(ctx, group, set)
	if err != nil {
		if u := unsupported(ctx, adm, kmsg.OffsetDelete, err); u != nil {
			return nil, u
		}
		return nil, groupErr("delete offsets of", group, err, "")
	}
	var (
		done []PlannedOffset
		errs []error
	)
	for t, ps := range resps {
		for p, err := range ps {
			if err != nil {
				errs = append(errs, fmt.Errorf("%s[%d]: %w", t, p, groupErr("delete offsets of", group, err, "")))
				continue
			}
			cur := int64(-1)
			if c, ok := committed.Lookup(t, p); ok && c.Err == nil {
				cur = c.At
			}
			done = append(done, PlannedOffset{Topic: t, Partition: p, CurrentOffset: cur, NewOffset: -1})
		}
	}
	slices.SortFunc(done, func(a, b PlannedOffset) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return done, errors.Join(errs...)
}

// WriteDeletedOffsets prints the partitions whose offsets were deleted, or a
// JSON object {"group": ..., "deleted": [...]}.
func WriteDeletedOffsets(w io.Writer, out Output, group string, done []PlannedOffset) error {
	if out == JSON {
		type row struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			Offset    int64  `json:"previous_offset"`
		}
		rows := make([]row, len(done))
		for i, d := range done {
			rows[i] = row{d.Topic, d.Partition, d.CurrentOffset}
		}
		return writeJSON(w, struct {
			Group   string `json:"group"`
			Deleted []row  `json:"deleted"`
		}{group, rows})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tDELETED-OFFSET")
	for _, d := range done {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", d.Topic, d.Partition, offsetText(d.CurrentOffset))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\ndeleted the committed offsets of group %s on %d %s\n", group, len(done),
		plural(len(done), "partition", "partitions"))
	return err
}
