package node

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dnsserver"
	"github.com/ternlb/tern/health"
	"github.com/ternlb/tern/probes"
	"github.com/ternlb/tern/raftstore"
	"github.com/ternlb/tern/selector"
)

// The node's health resolution and the snapshot built from it. One
// health.Resolver decides every member's state for the node's life; the
// probe observer, the FSM watcher and run-time admin changes tell it which
// members changed, and only the pools holding a member whose served state
// changed are rebuilt into the last snapshot. The snapshot, /v1/pools, the
// events, `tern status` and the dispatcher (in a cluster) all read the
// Resolver's states, so none can disagree with what DNS answers.

// healthView is guarded by Node.mu.
type healthView struct {
	r   *health.Resolver
	src healthSource
	// clock is the time observations age by, and whether this node is in
	// quorum (out of it the clock stands; see Node.clockLocked).
	clock func() (time.Time, bool)
	// fsm tells which members changed since the state src.st was read at
	// index since (nil standalone).
	fsm   *raftstore.FSM
	since uint64

	g       *generation // whose pools snap serves
	members []health.Member
	byKey   map[health.Key]int     // index in members
	pools   map[string]int         // g's pools by name: index in g.base.Pools
	fb      *selector.Fallbacks    // g's pools' fallback graph
	disp    map[string]config.Pool // the dispatcher's server pools (nil without)
	// dispChecks are the checks the dispatcher's pools name: the local
	// file's, which the dispatcher runs, not the replicated ones.
	dispChecks map[string]config.Check
	snap       *dnsserver.Snapshot // the last one built
	// up and total count the members of g's pools, up (not drained) and
	// all, in snap.
	up, total int
	// rebuilds counts the snapshots built; tests read it.
	rebuilds int
	// dispChanged is closed when a dispatcher server's state changes.
	dispChanged chan struct{}
}

// healthSource is health.Source over the node's prober and replicated
// state.
type healthSource struct {
	cluster bool
	prober  *probes.Prober
	st      *raftstore.State            // cluster: the replicated state last read
	admin   map[health.Key]health.Admin // standalone: run-time admin states
	disp    map[health.Key]health.Own   // the dispatcher's own verdicts of its servers
}

var _ health.Source = (*healthSource)(nil)

func (s *healthSource) Own(k health.Key) health.Own {
	if o, ok := s.disp[k]; ok {
		return o
	}
	v, err := s.prober.Verdict(k.Pool, k.Member)
	if err != nil {
		return health.Own{}
	}
	return ownOf(v)
}

// ownOf is a prober's verdict as health reads it: the probes' own verdict
// (admin states are health's to apply).
func ownOf(v probes.Verdict) health.Own {
	o := health.Own{Probed: v.Probed, Up: v.ProbeUp, Load: v.Load, HasLoad: v.HasLoad, Err: v.Err, At: v.Checked,
		Latency: v.Latency.Seconds(), HasLatency: v.HasLatency}
	if v.Unprobed != "" {
		o.NotAllowed, o.Err = true, v.Unprobed
	}
	return o
}

func (s *healthSource) Admin(k health.Key) (health.Admin, bool) {
	if !s.cluster {
		a, ok := s.admin[k]
		return a, ok
	}
	switch s.st.Admin(k.Pool, k.Member) {
	case raftstore.AdminUp:
		return health.AdminUp, true
	case raftstore.AdminDown:
		return health.AdminDown, true
	case raftstore.AdminDrain:
		return health.AdminDrain, true
	}
	if a, err := health.ParseAdmin(string(s.st.Admin(k.Pool, k.Member))); err == nil && a.Shed() > 0 {
		return a, true // shed:N
	}
	return health.AdminAuto, false
}

func (s *healthSource) Observations(dst []health.Observation, k health.Key, kind health.Kind) []health.Observation {
	if s.st == nil {
		return dst
	}
	return s.st.Observations(dst, k.Pool, k.Member, kind)
}

func newHealthView(self health.NodeID, cluster bool, maxAge time.Duration, clock func() (time.Time, bool)) *healthView {
	if !cluster {
		maxAge = 0 // standalone, this node's own verdict never ages out
	}
	return &healthView{
		r:           health.NewResolver(health.Options{Self: self, Cluster: cluster, MaxAge: maxAge}),
		clock:       clock,
		src:         healthSource{cluster: cluster, admin: map[health.Key]health.Admin{}, disp: map[health.Key]health.Own{}},
		dispChanged: make(chan struct{}),
	}
}

// membersOf lists pools' members as health resolves them, pools in names'
// order, members in configuration order.
func membersOf(names []string, pools map[string]config.Pool, checks map[string]config.Check, reporters bool) []health.Member {
	var out []health.Member
	for _, name := range names {
		p := pools[name]
		check := ""
		if p.Check != "" {
			check = checks[p.Check].Type
			if check == "" {
				check = p.Check // a check must have a type; any name says "checked"
			}
		}
		for _, m := range p.Members {
			a, err := health.ParseAdmin(m.Admin)
			if err != nil {
				a = health.AdminAuto // config validation refused it already
			}
			out = append(out, health.Member{Key: health.Key{Pool: name, Member: m.Address}, CheckType: check,
				Admin: a, InitialUp: p.Initial != "down", Reporters: reporters})
		}
	}
	return out
}

// install makes g's members (and the dispatcher's servers) the ones
// resolved, resolves every one and builds the whole snapshot. It returns
// the members whose served state changed from the previous
// configuration's, or an error and changes nothing.
func (h *healthView) install(g *generation, cfg *config.Config) ([]health.Change, error) {
	ms := membersOf(cfg.PoolNames(), cfg.Pools, cfg.Checks, false)
	if len(h.disp) > 0 {
		names := make([]string, 0, len(h.disp))
		for name := range h.disp {
			names = append(names, name)
		}
		slices.Sort(names)
		ms = append(ms, membersOf(names, h.disp, h.dispChecks, true)...)
	}
	if err := h.r.SetMembers(ms); err != nil {
		return nil, fmt.Errorf("health: %w", err)
	}
	h.g, h.members = g, ms
	h.src.prober = g.prober
	h.byKey = make(map[health.Key]int, len(ms))
	for i, m := range ms {
		h.byKey[m.Key] = i
	}
	h.pools = make(map[string]int, g.base.Pools.Len())
	for i, p := range g.base.Pools.All() {
		h.pools[p.Name] = i
	}
	fb, err := selector.NewFallbacks(g.base.Pools)
	if err != nil {
		fb = nil // compile linked these pools: only a bug gets here; serve without fallbacks' current health
	}
	h.fb = fb
	clock, _ := h.clock()
	ch := h.r.Resolve(&h.src, nil, clock)
	all := make([]int, g.base.Pools.Len())
	for i := range all {
		all[i] = i
	}
	h.snap = nil
	h.rebuild(all)
	h.up, h.total = 0, 0
	for _, p := range h.snap.Pools.All() {
		for i := range p.Members {
			h.total++
			if st := p.Status(i); st.Up && !st.Drain {
				h.up++
			}
		}
	}
	h.notifyDispatcher()
	return ch.Served, nil
}

// resolve re-resolves the members in keys and those the Resolver made due
// (at the clock), and rebuilds the pools of those whose served state
// changed. It returns the changes (nil when nothing changed) and whether
// a new snapshot was built.
func (h *healthView) resolve(keys []health.Key) ([]health.Change, bool) {
	clock, _ := h.clock()
	ch := h.r.Resolve(&h.src, keys, clock)
	if len(ch.Served) == 0 {
		return nil, false
	}
	var idx []int
	disp := false
	for _, name := range ch.Pools {
		if i, ok := h.pools[name]; ok {
			idx = append(idx, i)
		} else if _, ok := h.disp[name]; ok {
			disp = true
		}
	}
	for _, c := range ch.Served {
		if _, ok := h.pools[c.Now.Pool]; !ok || c.Was.Key == (health.Key{}) {
			continue
		}
		h.up += served(c.Now) - served(c.Was)
	}
	if disp {
		h.notifyDispatcher()
	}
	if len(idx) == 0 {
		return ch.Served, false
	}
	h.rebuild(idx)
	return ch.Served, true
}

func served(s health.State) int {
	if s.Up && !s.Drain {
		return 1
	}
	return 0
}

// rebuild makes a new snapshot from the last one with the pools at idx
// (indexes in g.base.Pools) rebuilt from their members' states, and the
// fallbacks that reach them repointed. nil snap: every pool is in idx.
func (h *healthView) rebuild(idx []int) {
	var snap dnsserver.Snapshot
	if h.snap == nil {
		snap = *h.g.base
	} else {
		snap = *h.snap
	}
	pools := snap.Pools.Edit() // shares every chunk of pools not in idx
	for _, i := range idx {
		p := h.g.base.Pools.At(i)
		states := h.r.Pool(p.Name)
		st := make([]selector.Status, len(states))
		for j, s := range states {
			st[j] = selector.Status{Up: s.Up, Drain: s.Drain, Load: s.Load, Shed: s.Shed}
			for _, o := range s.Latency {
				st[j].RTT = append(st[j].RTT, selector.RTT{Node: string(o.Node), Seconds: o.Value})
			}
		}
		pools.Set(i, p.WithStatus(st))
	}
	if h.fb != nil {
		h.fb.Relink(pools, idx)
	}
	snap.Pools = pools.Table()
	h.snap = &snap
	h.rebuilds++
}

// notifyDispatcher wakes whoever follows the dispatcher servers' agreed
// health.
func (h *healthView) notifyDispatcher() {
	close(h.dispChanged)
	h.dispChanged = make(chan struct{})
}

// memberKeys converts the FSM's member keys.
func memberKeys(ks []raftstore.MemberKey) []health.Key {
	out := make([]health.Key, len(ks))
	for i, k := range ks {
		out[i] = health.Key{Pool: k.Pool, Member: k.Member}
	}
	return out
}

// servedState names a member's state as answers see it.
func servedState(s health.State) string {
	switch {
	case s.Drain:
		return "drain"
	case s.Up:
		return "up"
	}
	return "down"
}

// resolveLocked re-resolves keys (and what the Resolver made due) and
// serves the new snapshot when a served state changed.
func (n *Node) resolveLocked(keys []health.Key) {
	ch, rebuilt := n.hv.resolve(keys)
	n.recordServedLocked(ch, time.Now())
	if rebuilt {
		n.serveLocked()
	}
}

// serveLocked makes the last snapshot built the one answers come from.
func (n *Node) serveLocked() {
	snap := n.hv.snap
	if n.served.Load() == snap {
		return
	}
	n.served.Store(snap)
	if n.dns != nil {
		n.dns.Store(snap)
	}
	if n.log.Enabled(context.Background(), slog.LevelDebug) {
		n.log.Debug("snapshot swapped in", "version", snap.Version, "pools", snap.Pools.Len(), "members_up", n.hv.up, "members", n.hv.total)
	}
}

// installHealthLocked makes g the generation health is resolved for.
func (n *Node) installHealthLocked(g *generation) error {
	ch, err := n.hv.install(g, g.cfg)
	if err != nil {
		return err
	}
	n.recordServedLocked(ch, time.Now())
	return nil
}

// followStateLocked takes in st, the FSM's current state: its node list,
// and the members whose observations or admin state changed since the
// state read before it.
func (n *Node) followStateLocked(st *raftstore.State) {
	h := n.hv
	if h.src.st != st {
		prev := h.src.st
		keys, ok := h.fsm.ChangedSince(h.since)
		h.src.st, h.since = st, st.Index()
		if prev == nil || prev.Indexes().Nodes != st.Indexes().Nodes {
			h.r.SetNodes(healthNodes(st))
			n.reportAllLocked()
		}
		if !ok {
			h.r.TouchAll()
		}
		n.resolveLocked(memberKeys(keys))
		return
	}
	n.resolveLocked(nil) // nothing new: what the clock made due
}

// healthNodes are the registered nodes, as health names them.
func healthNodes(st *raftstore.State) []health.NodeID {
	ns := st.Nodes()
	out := make([]health.NodeID, len(ns))
	for i, x := range ns {
		out[i] = health.NodeID(x.ID)
	}
	return out
}

// nextResolveLocked is how long the watcher may sleep before the clock
// alone changes a member's state (no deadline: until the FSM changes).
// Out of quorum the clock stands, so nothing comes due: the watcher polls
// every tick only to notice the quorum come back.
func (n *Node) nextResolveLocked() (time.Duration, bool) {
	clock, inQuorum := n.hv.clock()
	if !inQuorum {
		return tick, true
	}
	at, ok := n.hv.r.Next()
	if !ok {
		return 0, false
	}
	return max(at.Sub(clock), 0), true
}

// recordServedLocked adds an event for every member of a pool whose
// served state changed; a member resolved for the first time (a new
// configuration's, or at start) records nothing: there is nothing it
// changed from.
func (n *Node) recordServedLocked(changes []health.Change, now time.Time) {
	for _, c := range changes {
		if c.Was.Key == (health.Key{}) {
			continue
		}
		if _, ok := n.hv.pools[c.Now.Pool]; !ok {
			continue // a dispatcher's server: the dispatcher logs it
		}
		from, to := servedState(c.Was), servedState(c.Now)
		if from == to {
			continue
		}
		n.events.Add(api.Event{At: now, Pool: c.Now.Pool, Member: c.Now.Member, From: from, To: to, Why: c.Now.Why})
	}
}
