package node

import (
	"context"
	"slices"
	"time"

	"github.com/ternlb/tern/health"
	"github.com/ternlb/tern/raftstore"
)

// report proposes this node's observations of the members assigned to it,
// of every kind health.OwnReports makes (health verdicts, and loads of
// load checks), in one raftstore.Observations batch per look: those the
// FSM does not hold as this node's current ones (a change, or one never
// proposed), and those whose held one is about to be older than the
// refresh period when a newer probe confirms it (see health.Pending). It
// looks at the members whose own observation changed as soon as the
// prober says so, and at every member when the configuration or the node
// list changed, after a batch failed, and when the earliest refresh comes
// due; never on a tick of its own. A batch that cannot be committed (no
// leader) is proposed again a tick later.
func (n *Node) report(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-n.kick:
		case <-timer.C:
		}
		if n.store.IsLeader() {
			n.forgetGone(ctx)
		}
		now := time.Now()
		n.mu.Lock()
		b := n.reportBatchLocked(now)
		next := n.reportNext
		n.mu.Unlock()
		if b != nil {
			pctx, cancel := context.WithTimeout(ctx, reportTimeout)
			_, err := n.propose(pctx, b)
			cancel()
			if err != nil && ctx.Err() == nil {
				n.log.Debug("observations not proposed; will retry", "reports", len(b.Reports), "err", err)
				n.mu.Lock()
				n.reportAll = true
				n.mu.Unlock()
				next = now.Add(tick)
			} else if err == nil {
				n.log.Debug("observations proposed", "reports", len(b.Reports), "took", time.Since(now))
			}
		}
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), 0))
		}
	}
}

// reportLocked has the reporter look at keys, whose own observation
// changed.
func (n *Node) reportLocked(keys []health.Key) {
	if n.store == nil {
		return
	}
	for _, k := range keys {
		n.toReport[k] = true
	}
	n.kickReporter()
}

// reportAllLocked has the reporter look at every member.
func (n *Node) reportAllLocked() {
	n.reportAll = true
	n.kickReporter()
}

func (n *Node) kickReporter() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// reportBatchLocked is the batch this node must propose now (nil: none),
// from the members the reporter was asked to look at. A look at every
// member also sets reportNext, when the earliest refresh comes due.
func (n *Node) reportBatchLocked(now time.Time) *raftstore.Observations {
	h := n.hv
	self := n.store.ID()
	st := n.store.State()
	all := n.reportAll || (!n.reportNext.IsZero() && !now.Before(n.reportNext))
	in := reportInput{
		own: h.src.Own,
		assigned: func(m health.Member) bool {
			return m.Reporters || n.assignedLocked(m.Key)
		},
		held: func(k health.Key, kind health.Kind) (health.Observation, bool) {
			return st.Observation(self, k.Pool, k.Member, kind)
		},
		now:     now,
		refresh: n.verdictRefresh,
	}
	if all {
		in.members = h.members
	} else {
		for k := range n.toReport {
			if i, ok := h.byKey[k]; ok {
				in.members = append(in.members, h.members[i])
			}
		}
	}
	n.reportAll = false
	clear(n.toReport)
	out, next := reportBatch(in)
	if all {
		n.reportNext = next
	}
	if len(out) == 0 {
		return nil
	}
	b := &raftstore.Observations{Node: self, Reports: make([]raftstore.ObservationReport, len(out))}
	for i, r := range out {
		b.Reports[i] = raftstore.ObservationReport{Pool: r.Key.Pool, Member: r.Key.Member, Kind: r.Kind, Value: r.Value, At: r.At}
	}
	return b
}

// reportInput is what a batch is computed from.
type reportInput struct {
	members  []health.Member // those to look at
	own      func(health.Key) health.Own
	assigned func(health.Member) bool // this node reports on it
	// held is this node's observation of a member as the FSM holds it.
	held    func(health.Key, health.Kind) (health.Observation, bool)
	now     time.Time
	refresh time.Duration
}

// reportBatch returns the reports of in.members this node must propose
// (health.Pending of health.OwnReports), and when the earliest of them
// all is next due for a refresh once those went in (zero: nothing held).
// Refreshes come due a quarter period early, so that one look proposes
// those of the next quarter period too: a look at every member then comes
// about once a quarter period, not at each member's own moment.
func reportBatch(in reportInput) ([]health.Report, time.Time) {
	var mine []health.Report
	for _, m := range in.members {
		if in.assigned(m) {
			mine = health.OwnReports(mine, m, in.own(m.Key), in.now)
		}
	}
	slack := in.refresh / 4
	out := health.Pending(mine, in.held, health.PendingOptions{Now: in.now.Add(slack), Refresh: in.refresh})
	return out, refreshDue(mine, out, in.held, in.now, in.refresh-slack)
}

// refreshDue is when the earliest of mine is next due for a refresh once
// proposed (a subsequence of mine, as health.Pending returns it) went in:
// the duration every after its held time (its own time when it is being
// proposed); one whose moment passed waits for a newer probe, looked for
// a tick later. Zero: nothing is held.
func refreshDue(mine, proposed []health.Report, held func(health.Key, health.Kind) (health.Observation, bool), now time.Time, every time.Duration) time.Time {
	var next time.Time
	j := 0
	for _, r := range mine {
		at := r.At
		if j < len(proposed) && proposed[j] == r {
			j++
		} else {
			h, ok := held(r.Key, r.Kind)
			if !ok {
				continue
			}
			at = h.At
		}
		due := at.Add(every)
		if !due.After(now) {
			due = now.Add(tick)
		}
		if next.IsZero() || due.Before(next) {
			next = due
		}
	}
	return next
}

// assignedLocked reports whether this node is one of k's probers, as the
// Resolver last chose them among the registered nodes: the nodes that
// report on and agree about a member are the same ones.
func (n *Node) assignedLocked(k health.Key) bool {
	s, ok := n.hv.r.State(k)
	return ok && slices.Contains(s.Probers, health.NodeID(n.store.ID()))
}

// setProbeNodes makes st's registered nodes the ones the probe assignment
// is computed from, when they changed.
func (n *Node) setProbeNodes(st *raftstore.State) {
	ids := nodeIDs(st)
	if cur := n.probeNodes.Load(); cur != nil && slices.Equal(*cur, ids) {
		return
	}
	n.probeNodes.Store(&ids)
}

// assignFilter is the probes.Options.Filter of node self: a member is
// probed here when health.Assigned gives it to self among the nodes (read
// at each call, so a membership change takes effect at each member's next
// probe), self counted in (a node not yet registered, or alone, probes
// everything). The nodes that report on and agree about a member are the
// same ones (see assignedLocked).
func assignFilter(self raftstore.NodeID, nodes func() []raftstore.NodeID) func(pool, member string) bool {
	return func(pool, member string) bool {
		ns := nodes()
		ids := make([]health.NodeID, 0, len(ns)+1)
		for _, id := range ns {
			ids = append(ids, health.NodeID(id))
		}
		if !slices.Contains(ns, self) {
			ids = append(ids, health.NodeID(self))
		}
		return health.Assigned(health.NodeID(self), health.Key{Pool: pool, Member: member}, ids, 0)
	}
}
