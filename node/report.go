package node

import (
	"context"
	"slices"
	"time"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/probes"
	"github.com/ternlb/tern/raftstore"
)

// report proposes this node's observations of the members assigned to it,
// of every kind (health verdicts, load reports), each kind in one batch
// per look: those the FSM does not hold as this node's current one (a
// change, or one never proposed), and those whose held one is older than
// the refresh period when a newer probe confirms it. It looks after every
// probe change and every tick; a batch that cannot be committed (no
// leader) is proposed again at the next look.
func (n *Node) report(ctx context.Context) error {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-n.kick:
		case <-t.C:
		}
		if n.store.IsLeader() {
			n.forgetGone(ctx)
		}
		n.mu.Lock()
		g := n.gen
		n.mu.Unlock()
		in := reportInput{
			self:    n.store.ID(),
			st:      n.store.State(),
			cfg:     g.cfg,
			vs:      g.prober.Verdicts(),
			now:     time.Now(),
			refresh: n.verdictRefresh,
		}
		in.nodes = nodeIDs(in.st)
		for _, b := range []raftstore.Body{verdictBatch(in), loadBatch(in)} {
			if b == nil {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, reportTimeout)
			_, err := n.propose(pctx, b)
			cancel()
			if err != nil && ctx.Err() == nil {
				n.log.Debug("reports not proposed; will retry", "kind", b.Type(), "err", err)
			}
		}
	}
}

// reportInput is what a batch is computed from.
type reportInput struct {
	self    raftstore.NodeID
	nodes   []raftstore.NodeID // registered nodes
	st      *raftstore.State
	cfg     *config.Config
	vs      []probes.Verdict // this node's
	now     time.Time
	refresh time.Duration
}

// pending returns the reports of in.vs that this node must propose: of
// members assigned to it, those that report returns (ok), when the FSM
// holds none of this node's, holds a different one (same false), or holds
// one older than the refresh period and the probe is newer. report gets
// the time a report is made at (the latest probe, else now); held returns
// the FSM's report of this node for a member and its time.
func pending[R any](in reportInput,
	report func(v probes.Verdict, at time.Time) (R, bool),
	held func(k raftstore.MemberKey) (R, time.Time, bool),
	same func(a, b R) bool,
) []R {
	var out []R
	for _, v := range in.vs {
		key := raftstore.MemberKey{Pool: v.Key.Pool, Member: v.Key.Member}
		if !raftstore.Assigned(in.self, key, in.nodes, 0) {
			continue
		}
		at := v.Checked
		if at.IsZero() {
			at = in.now
		}
		r, ok := report(v, at.UTC())
		if !ok {
			continue
		}
		h, hAt, ok := held(key)
		switch {
		case !ok, !same(r, h):
		case in.now.Sub(hAt) >= in.refresh && at.After(hAt):
		default:
			continue
		}
		out = append(out, r)
	}
	return out
}

// verdictBatch is the Verdicts command this node must propose, nil when
// there is nothing to say.
func verdictBatch(in reportInput) raftstore.Body {
	vs := pending(in,
		func(v probes.Verdict, at time.Time) (raftstore.VerdictReport, bool) {
			h := raftstore.HealthDown
			if v.ProbeUp {
				h = raftstore.HealthUp
			}
			return raftstore.VerdictReport{Pool: v.Key.Pool, Member: v.Key.Member, Health: h, At: at}, v.Probed
		},
		func(k raftstore.MemberKey) (raftstore.VerdictReport, time.Time, bool) {
			v, ok := in.st.Verdict(in.self, k.Pool, k.Member)
			h := raftstore.HealthDown
			if v.Up {
				h = raftstore.HealthUp
			}
			return raftstore.VerdictReport{Health: h}, v.At, ok
		},
		func(a, b raftstore.VerdictReport) bool { return a.Health == b.Health })
	if len(vs) == 0 {
		return nil
	}
	return raftstore.Verdicts{Node: in.self, Verdicts: vs}
}

// loadBatch is the Loads command this node must propose (the smoothed
// load of members of pools whose check is of type load, once reported),
// nil when there is nothing to say.
func loadBatch(in reportInput) raftstore.Body {
	ls := pending(in,
		func(v probes.Verdict, at time.Time) (raftstore.LoadReport, bool) {
			p := in.cfg.Pools[v.Key.Pool]
			if !v.HasLoad || p.Check == "" || in.cfg.Checks[p.Check].Type != "load" {
				return raftstore.LoadReport{}, false
			}
			return raftstore.LoadReport{Pool: v.Key.Pool, Member: v.Key.Member, Load: v.Load, Capacity: v.Capacity, At: at}, true
		},
		func(k raftstore.MemberKey) (raftstore.LoadReport, time.Time, bool) {
			ls := in.st.Loads(k.Pool, k.Member)
			i := slices.IndexFunc(ls, func(l raftstore.Load) bool { return l.Node == in.self })
			if i < 0 {
				return raftstore.LoadReport{}, time.Time{}, false
			}
			l := ls[i]
			return raftstore.LoadReport{Load: l.Load, Capacity: l.Capacity}, l.At, true
		},
		func(a, b raftstore.LoadReport) bool { return a.Load == b.Load && a.Capacity == b.Capacity })
	if len(ls) == 0 {
		return nil
	}
	return raftstore.Loads{Node: in.self, Loads: ls}
}

// servedLoad is the load a cluster serves for a member: the median of the
// fresh load reports of its probers (ok false when none is fresh). The
// median, not the mean: the probers read the same agent a few seconds
// apart and normally agree, so the median is their common value, while
// one prober whose reports are off (a stale agent path, a node whose
// probes time out and keep an old smoothed value) moves it not at all
// with three probers, where it would drag a mean. With two fresh reports
// the median is their mean.
func servedLoad(st *raftstore.State, key raftstore.MemberKey, probers []raftstore.NodeID, now time.Time, maxAge time.Duration) (float64, bool) {
	var ls []float64
	for _, l := range st.Loads(key.Pool, key.Member) {
		if !slices.Contains(probers, l.Node) || !freshAt(l.At, now, maxAge) {
			continue
		}
		ls = append(ls, l.Load)
	}
	if len(ls) == 0 {
		return 0, false
	}
	slices.Sort(ls)
	m := len(ls) / 2
	if len(ls)%2 == 1 {
		return ls[m], true
	}
	return (ls[m-1] + ls[m]) / 2, true
}

// freshAt is raftstore's freshness rule for verdicts, applied to loads:
// within maxAge of now on either side; maxAge <= 0: never stale.
func freshAt(at, now time.Time, maxAge time.Duration) bool {
	if maxAge <= 0 {
		return true
	}
	d := now.Sub(at)
	return d <= maxAge && d >= -maxAge
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
// probed here when raftstore.Assigned gives it to self among the nodes
// (read at each call, so a membership change takes effect at each
// member's next probe), self counted in (a node not yet registered, or
// alone, probes everything). The nodes that report on and agree about a
// member are the same ones (see pending and agreeLocked).
func assignFilter(self raftstore.NodeID, nodes func() []raftstore.NodeID) func(pool, member string) bool {
	return func(pool, member string) bool {
		ns := nodes()
		if !slices.Contains(ns, self) {
			ns = append(slices.Clip(ns), self)
		}
		return raftstore.Assigned(self, raftstore.MemberKey{Pool: pool, Member: member}, ns, 0)
	}
}
