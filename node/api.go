package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/health"
	"github.com/ternlb/tern/probes"
	"github.com/ternlb/tern/raftstore"
)

// The node serves these parts of the API; cluster membership,
// configuration versions and forwarded writes only with a Raft store.
var (
	_ api.StatusSource = (*Node)(nil)
	_ api.Pools        = apiPools{}
	_ api.Explainer    = (*Node)(nil)
	_ api.Cluster      = apiCluster{}
	_ api.Configs      = apiConfigs{}
	_ api.Forwarder    = apiForwarder{}
)

// Status reports this node's state: what it serves, and in a cluster its
// Raft view, all from local memory.
func (n *Node) Status(context.Context) (api.Status, error) {
	n.mu.Lock()
	g := n.gen
	s := api.Status{Node: g.cfg.Node.Name, ConfigHash: g.base.Version, InQuorum: true, MembersUp: n.hv.up, MembersTotal: n.hv.total, LastConfigError: n.configErr}
	if n.store != nil {
		s.LocalFileDiffers, s.LocalFileHash = n.localDiffersLocked(n.store.State())
	}
	n.mu.Unlock()
	s.Warnings = unprobedWarnings(g.prober.Verdicts())
	select {
	case <-n.dns.Ready():
		s.Serving = true
	default:
	}
	if n.store != nil {
		rs := n.store.Status()
		s.RaftState, s.Term, s.AppliedIndex = rs.State, rs.Term, rs.AppliedIndex
		s.Leader, s.InQuorum = string(rs.LeaderID), rs.InQuorum
		// The version this node serves, which is the FSM's unless that
		// one did not compile here.
		s.ConfigVersion = g.cv.Version
		if g.cv.Version > 0 {
			s.ConfigHash = g.cv.Hash.String()
		}
	}
	return s, nil
}

// Ready is nil once the node serves a snapshot and, in a cluster, while it
// is in quorum and serves a version of the cluster's configuration. A node
// always starts with a configuration (New refuses one that does not
// validate), but a cluster node whose replicated configuration does not
// compile here serves its local file instead, which may answer unlike
// the rest of the cluster: not ready, with the reason. A node that serves
// an older good version while a newer one failed here stays ready (it
// answers as it did) and Status.LastConfigError says what failed.
func (n *Node) Ready(context.Context) error {
	select {
	case <-n.dns.Ready():
	default:
		return errors.New("not serving yet: waiting for the first probe round")
	}
	if n.store == nil {
		return nil
	}
	n.mu.Lock()
	g, cerr := n.gen, n.configErr
	n.mu.Unlock()
	if cur, ok := n.store.State().Config(); ok && g.cv.Version == 0 {
		return fmt.Errorf("not serving the cluster's configuration (version %d) but the local file: %s", cur.Version, orNone(cerr))
	} else if ok && g.cv.Version != cur.Version && cerr != "" {
		// The cluster moved on to a version this node rejected: it
		// serves an older one.
		return fmt.Errorf("not serving the cluster's configuration (version %d) but version %d: %s", cur.Version, g.cv.Version, cerr)
	}
	if rs := n.store.Status(); !rs.InQuorum {
		if rs.LastContact.IsZero() {
			return fmt.Errorf("not in quorum (raft %s, no leader): serving the last known state", rs.State)
		}
		return fmt.Errorf("not in quorum (raft %s, last leader contact %s ago): serving the last known state", rs.State, time.Since(rs.LastContact).Round(time.Second))
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "not taken in yet"
	}
	return s
}

// Explain explains a live decision from the snapshot being served.
func (n *Node) Explain(_ context.Context, name, client string) (api.Explanation, error) {
	snap := n.served.Load()
	if snap == nil {
		return api.Explanation{}, fmt.Errorf("%w: not serving yet", api.ErrUnavailable)
	}
	var b bytes.Buffer
	if err := Explain(&b, snap, name, client); err != nil {
		return api.Explanation{}, fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	return api.Explanation{Text: b.String()}, nil
}

// apiPools adapts the node to api.Pools (whose SetAdmin takes a context).
type apiPools struct{ n *Node }

// Pools lists every pool's members in the states the served snapshot was
// built from (the Resolver's, as last resolved), with what each node said.
func (p apiPools) Pools(context.Context) ([]api.Pool, error) {
	p.n.mu.Lock()
	defer p.n.mu.Unlock()
	return p.n.poolsLocked(), nil
}

func (n *Node) poolsLocked() []api.Pool {
	g := n.gen
	var answers map[[2]string]uint64
	if n.dns != nil { // nil in tests that build a node's parts alone
		answers = n.dns.PoolAnswers()
	}
	out := make([]api.Pool, 0, g.base.Pools.Len())
	for _, sp := range g.base.Pools.All() {
		cp := g.cfg.Pools[sp.Name]
		ap := api.Pool{Name: sp.Name, Policy: cp.Policy, Check: cp.Check}
		if len(cp.Chain) > 0 {
			ap.Policy = strings.Join(cp.Chain, " > ")
		}
		if cp.Check != "" {
			ap.CheckType = g.cfg.Checks[cp.Check].Type
		}
		for i, s := range n.hv.r.Pool(sp.Name) {
			m := poolMember(s)
			if i < len(cp.Members) && cp.Members[i].Address == s.Member {
				cm := cp.Members[i]
				m.Site, m.Weight, m.Priority = cm.Site, cm.Weight, cm.Priority
			}
			m.Answers = answers[[2]string{sp.Name, answerName(s.Member)}]
			if v, err := g.prober.Verdict(sp.Name, s.Member); err == nil && !v.Checked.IsZero() {
				m.LastCheck = &api.CheckResult{At: v.Checked, OK: v.Err == "", RTTMilli: float64(v.RTT) / float64(time.Millisecond), Error: v.Err}
			}
			ap.Members = append(ap.Members, m)
		}
		capacities(&ap, cp, g.cfg.Sites)
		out = append(out, ap)
	}
	return out
}

// capacities fills the capacity, the load held against it and the
// capacity spill-over share of each member of ap that has a capacity
// (its site's, else its own), as the selector's spill stage reckons
// them from the same states (selector/steer.go, precomputeSpill;
// TestSpillEndToEnd holds the two together): a site's load is the
// summed load of its members up, and past spill_at of capacity the
// excess share of the clients moves.
func capacities(ap *api.Pool, cp config.Pool, sites map[string]config.Site) {
	siteLoad := map[string]float64{}
	for _, m := range ap.Members {
		if m.Site != "" && m.Up {
			siteLoad[m.Site] += max(m.Load, 0)
		}
	}
	for i := range ap.Members {
		m := &ap.Members[i]
		switch {
		case sites[m.Site].Capacity > 0:
			m.Capacity, m.CapacityOf, m.CapacityLoad = sites[m.Site].Capacity, "site", siteLoad[m.Site]
		case i < len(cp.Members) && cp.Members[i].Address == m.Address && cp.Members[i].Capacity > 0:
			m.Capacity, m.CapacityOf, m.CapacityLoad = cp.Members[i].Capacity, "member", m.Load
		default:
			continue
		}
		ap.SpillAt = cp.SpillAt
		if lim := cp.SpillAt * m.Capacity; m.CapacityLoad > lim && m.CapacityLoad > 0 {
			m.Spill = 1 - lim/m.CapacityLoad
		}
	}
}

// answerName is the name the DNS server counts a member's answers by:
// an address in its canonical form, a host name as written.
func answerName(member string) string {
	if a, err := netip.ParseAddr(member); err == nil {
		return a.String()
	}
	return member
}

// poolMember is a member's resolved state as the API shows it.
func poolMember(s health.State) api.PoolMember {
	m := api.PoolMember{
		Address: s.Member,
		Up:      s.Up && !s.Drain,
		Admin:   s.Admin.String(),
		Forced:  s.Forced,
		Why:     s.Why,
		Load:    s.Load,
	}
	for _, v := range s.Vantages {
		switch v.Kind {
		case health.KindHealth:
			m.Verdicts = append(m.Verdicts, api.Verdict{Node: string(v.Node), Up: v.Up(), At: v.At, Stale: v.Stale && v.Observed, Prober: v.Prober, Reason: v.Reason})
		case health.KindLoad:
			m.Loads = append(m.Loads, api.LoadReport{Node: string(v.Node), Load: v.Value, At: v.At, Stale: v.Stale, Prober: v.Prober})
		case health.KindLatency:
			m.RTTs = append(m.RTTs, api.RTTReport{Node: string(v.Node), Seconds: v.Value, At: v.At, Stale: v.Stale})
		}
	}
	return m
}

// SetAdmin sets a member's admin state: on this node alone when it runs
// standalone, through Raft (forwarded to the leader) in a cluster.
func (p apiPools) SetAdmin(ctx context.Context, pool, address, state string) error {
	n := p.n
	if n.store == nil {
		return adminError(n.SetAdmin(pool, address, state))
	}
	a, err := raftstore.ParseAdminState(state)
	if err != nil {
		return fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	n.mu.Lock()
	g := n.gen
	n.mu.Unlock()
	v, err := g.prober.Verdict(pool, address)
	if err != nil {
		return adminError(err)
	}
	ctx, cancel := writeContext(ctx)
	defer cancel()
	_, err = n.propose(ctx, raftstore.SetAdmin{States: []raftstore.AdminChange{{Pool: v.Key.Pool, Member: v.Key.Member, State: a}}})
	if err != nil {
		return err
	}
	// The write is applied here: serve it before answering, so that the
	// caller reads its own write.
	n.mu.Lock()
	n.followStateLocked(n.store.State())
	n.mu.Unlock()
	return nil
}

// ShedSite sets shed:percent (auto for 0) on every member of site in
// every pool: on this node standalone, through Raft in one command in a
// cluster.
func (p apiPools) ShedSite(ctx context.Context, site string, percent int) (int, error) {
	n := p.n
	state := "auto"
	if percent > 0 {
		state = "shed:" + strconv.Itoa(percent)
	}
	n.mu.Lock()
	cfg := n.gen.cfg
	n.mu.Unlock()
	var keys []raftstore.AdminChange
	for _, name := range cfg.PoolNames() {
		for _, m := range cfg.Pools[name].Members {
			if m.Site == site {
				keys = append(keys, raftstore.AdminChange{Pool: name, Member: m.Address})
			}
		}
	}
	if len(keys) == 0 {
		return 0, fmt.Errorf("%w: no pool member is in site %q", api.ErrNotFound, site)
	}
	if n.store == nil {
		for _, k := range keys {
			if err := n.SetAdmin(k.Pool, k.Member, state); err != nil {
				return 0, adminError(err)
			}
		}
		return len(keys), nil
	}
	a, err := raftstore.ParseAdminState(state)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	for i := range keys {
		keys[i].State = a
	}
	ctx, cancel := writeContext(ctx)
	defer cancel()
	if _, err := n.propose(ctx, raftstore.SetAdmin{States: keys}); err != nil {
		return 0, err
	}
	n.mu.Lock()
	n.followStateLocked(n.store.State())
	n.mu.Unlock()
	return len(keys), nil
}

func adminError(err error) error {
	switch {
	case errors.Is(err, probes.ErrUnknownPool), errors.Is(err, probes.ErrUnknownMember):
		return fmt.Errorf("%w: %v", api.ErrNotFound, err)
	case errors.Is(err, probes.ErrAdmin):
		return fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	return err
}

// writeContext bounds an operator's write that has no deadline.
func writeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, writeTimeout)
}

// apiCluster serves Raft membership; joins and removals run on the leader
// and are forwarded to it from any other node.
type apiCluster struct{ n *Node }

func (c apiCluster) Members(ctx context.Context) ([]api.ClusterMember, error) {
	ms, err := c.n.store.Members()
	if err != nil {
		return nil, apiError(err)
	}
	out := make([]api.ClusterMember, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		out[i] = api.ClusterMember{ID: string(m.ID), RaftAddr: m.Raft, APIAddr: m.API, Voter: m.Voter, Leader: m.Leader}
		switch {
		case m.ID == c.n.store.ID():
			out[i].Reachable = true
		case m.API == "":
			out[i].Unreachable = "no API address registered"
		default:
			wg.Add(1)
			go func(cm *api.ClusterMember) {
				defer wg.Done()
				cm.Reachable, cm.Unreachable = c.n.reach(ctx, cm.APIAddr)
			}(&out[i])
		}
	}
	wg.Wait()
	return out, nil
}

// peerReachTimeout bounds how long Members waits for a peer's API.
const peerReachTimeout = time.Second

// reach reports whether the API at addr answers /healthz within
// peerReachTimeout, and if not why.
func (n *Node) reach(ctx context.Context, addr string) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, peerReachTimeout)
	defer cancel()
	if err := n.peer(addr).Alive(ctx); err != nil {
		if ctx.Err() != nil {
			return false, fmt.Sprintf("no answer within %s", peerReachTimeout)
		}
		return false, err.Error()
	}
	return true, ""
}

func (c apiCluster) Join(ctx context.Context, r api.JoinRequest) error {
	s := c.n.store
	ctx, cancel := writeContext(ctx)
	defer cancel()
	if r.Fresh && s.IsLeader() {
		if ms, err := s.Members(); err == nil {
			for _, m := range ms {
				if string(m.ID) == r.ID {
					return fmt.Errorf("%w: node %q is already a member of this cluster but joins with an empty Raft log: it lost its data directory. A voter that forgot its log must not vote as if it had it: run `tern cluster remove %s`, then start it again to join as a new member", api.ErrConflict, r.ID, r.ID)
				}
			}
		}
	}
	err := s.Join(ctx, raftstore.NodeID(r.ID), r.RaftAddr, r.APIAddr)
	var nl *raftstore.NotLeaderError
	if errors.As(err, &nl) && nl.LeaderAPI != "" && nl.LeaderID != s.ID() {
		if err := c.n.peer(nl.LeaderAPI).Join(ctx, r); err != nil {
			return fmt.Errorf("forward the join to the leader %s at %s: %w", nl.LeaderID, nl.LeaderAPI, apiError(err))
		}
		return nil
	}
	return apiError(err)
}

func (c apiCluster) Remove(ctx context.Context, id string) error {
	s := c.n.store
	ctx, cancel := writeContext(ctx)
	defer cancel()
	err := s.Remove(ctx, raftstore.NodeID(id))
	var nl *raftstore.NotLeaderError
	if errors.As(err, &nl) && nl.LeaderAPI != "" && nl.LeaderID != s.ID() {
		if err := c.n.peer(nl.LeaderAPI).Remove(ctx, id); err != nil {
			return fmt.Errorf("forward the removal to the leader %s at %s: %w", nl.LeaderID, nl.LeaderAPI, apiError(err))
		}
		return nil
	}
	return apiError(err)
}

// apiConfigs lists, applies and rolls back replicated configuration
// versions.
type apiConfigs struct{ n *Node }

func (c apiConfigs) Versions(context.Context) ([]api.ConfigVersion, error) {
	st := c.n.store.State()
	cur, _ := st.Config()
	var out []api.ConfigVersion
	for _, v := range st.ConfigVersions() {
		out = append(out, apiVersion(v, cur))
	}
	return out, nil
}

func (c apiConfigs) Version(_ context.Context, v uint64) (api.ConfigVersion, error) {
	st := c.n.store.State()
	cv, ok := st.ConfigVersion(v)
	if !ok {
		return api.ConfigVersion{}, fmt.Errorf("%w: configuration version %d is not kept", api.ErrNotFound, v)
	}
	// Bundles are redacted when proposed; one proposed before that (or by
	// a node that did not) is redacted on its way out all the same.
	b, err := st.Bundle(cv.Manifest)
	if err == nil {
		b, err = redactSecrets(b)
	}
	if err != nil {
		return api.ConfigVersion{}, fmt.Errorf("configuration version %d is not shown: %w", v, err)
	}
	cur, _ := st.Config()
	out := apiVersion(cv, cur)
	out.Main, out.Files = b.Main, map[string]string{}
	for p, data := range b.Files {
		out.Files[p] = string(data)
	}
	return out, nil
}

func apiVersion(v, cur raftstore.ConfigVersion) api.ConfigVersion {
	out := api.ConfigVersion{
		Version:    v.Version,
		Hash:       v.Hash.String(),
		Current:    v.Version == cur.Version,
		At:         v.At,
		Origin:     api.Origin{Kind: string(v.Origin.Kind), Node: string(v.Origin.Node), Client: v.Origin.Client},
		Comment:    v.Comment,
		RollbackOf: v.RollbackOf,
	}
	if len(v.Zones) > 0 {
		out.Serials = servedSerials(v.Zones)
	}
	return out
}

// Apply validates a configuration the way this node would serve it (the
// YAML, every zone file, the pools against the geo database) and only then
// proposes it, based on r.Base; a configuration with problems changes
// nothing and the error lists them as file:line: message.
func (c apiConfigs) Apply(ctx context.Context, r api.ApplyRequest) (api.ApplyResult, error) {
	b := raftstore.Bundle{Main: r.Main, Files: make(map[string][]byte, len(r.Files))}
	for p, data := range r.Files {
		b.Files[p] = []byte(data)
	}
	if err := b.Validate(); err != nil {
		return api.ApplyResult{}, fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	b, err := redactSecrets(b)
	if err != nil {
		return api.ApplyResult{}, fmt.Errorf("%w: nothing changed: %v", api.ErrInvalid, err)
	}
	cfg, err := c.n.bundleConfig(b)
	var stamps map[string]raftstore.ZoneStamp
	if err == nil {
		stamps, err = c.validate(cfg)
	}
	if err != nil {
		return api.ApplyResult{}, fmt.Errorf("%w: the configuration does not validate, nothing changed:\n%v", api.ErrInvalid, err)
	}
	ch := c.raftChange(raftstore.OriginApply, r.Change, stamps)
	return c.change(ctx, func(ctx context.Context) (raftstore.Result, int, error) {
		return c.n.proposeBundle(ctx, b, ch, c.n.propose)
	})
}

// Rollback re-applies kept version v, based on r.Base, once it has
// compiled here as Apply's configurations do.
func (c apiConfigs) Rollback(ctx context.Context, v uint64, r api.RollbackRequest) (api.ApplyResult, error) {
	st := c.n.store.State()
	cv, ok := st.ConfigVersion(v)
	if !ok {
		return api.ApplyResult{}, fmt.Errorf("%w: configuration version %d is not kept", api.ErrNotFound, v)
	}
	cfg, err := c.n.clusterConfig(st, cv)
	var stamps map[string]raftstore.ZoneStamp
	if err == nil {
		stamps, err = c.validate(cfg)
	}
	if err != nil {
		return api.ApplyResult{}, fmt.Errorf("%w: version %d does not validate here any more, nothing changed:\n%v", api.ErrInvalid, v, err)
	}
	body := raftstore.Rollback{Version: v, Change: c.raftChange(raftstore.OriginRollback, r.Change, stamps)}
	return c.change(ctx, func(ctx context.Context) (raftstore.Result, int, error) {
		ctx, cancel := writeContext(ctx)
		defer cancel()
		res, err := c.n.propose(ctx, body)
		return res, 0, err
	})
}

// validate compiles cfg as this node would serve it and returns its
// zones' stamps.
func (c apiConfigs) validate(cfg *config.Config) (map[string]raftstore.ZoneStamp, error) {
	n := c.n
	n.mu.Lock()
	g := n.gen
	n.mu.Unlock()
	_, snap, ps := n.compile(cfg, g.geo)
	if len(ps) > 0 {
		return nil, ps
	}
	return n.zones.stamps(cfg, snap), nil
}

// raftChange is what a proposal of an operator's change carries: its base,
// this node and the client as its origin, and the new version's zones.
func (c apiConfigs) raftChange(kind raftstore.OriginKind, ch api.Change, zones map[string]raftstore.ZoneStamp) raftstore.Change {
	return raftstore.Change{
		Base:    ch.Base,
		Force:   ch.Force,
		At:      time.Now().UTC(),
		Comment: ch.Comment,
		Origin:  raftstore.Origin{Kind: kind, Node: c.n.store.ID(), Client: ch.Client},
		Zones:   zones,
	}
}

// change runs propose (which returns the bytes of log it took) and
// answers with the version it made.
func (c apiConfigs) change(ctx context.Context, propose func(context.Context) (raftstore.Result, int, error)) (api.ApplyResult, error) {
	res, logBytes, err := propose(ctx)
	if err != nil {
		return api.ApplyResult{}, err
	}
	out := api.ApplyResult{Version: res.Version, Changed: res.Changed, Replicated: int64(logBytes)}
	if cv, ok := c.n.store.State().ConfigVersion(res.Version); ok {
		out.Hash = cv.Hash.String()
	}
	return out, nil
}

// apiForwarder applies a command another node forwarded here because this
// node leads.
type apiForwarder struct{ n *Node }

func (f apiForwarder) ApplyCommand(ctx context.Context, cmd []byte) (api.CommandResult, error) {
	cmd, err := redactCommand(cmd, f.n.store.State())
	if err != nil {
		return api.CommandResult{}, fmt.Errorf("%w: nothing changed: %v", api.ErrInvalid, err)
	}
	ctx, cancel := writeContext(ctx)
	defer cancel()
	idx, res, err := f.n.store.ApplyEncoded(ctx, cmd)
	if err != nil {
		return api.CommandResult{}, apiError(err)
	}
	if res.Index == 0 {
		res.Index = idx
	}
	return api.CommandResult{Index: res.Index, Changed: res.Changed, Version: res.Version}, nil
}

// unprobedWarnings says, for each reason this node does not probe members
// whose pool has a check, how many and in which pools.
func unprobedWarnings(vs []probes.Verdict) []string {
	type group struct {
		members int
		pools   []string
	}
	groups := map[string]*group{}
	var order []string
	for _, v := range vs {
		if v.Unprobed == "" {
			continue
		}
		g := groups[v.Unprobed]
		if g == nil {
			g = &group{}
			groups[v.Unprobed] = g
			order = append(order, v.Unprobed)
		}
		g.members++
		if len(g.pools) == 0 || g.pools[len(g.pools)-1] != v.Key.Pool {
			g.pools = append(g.pools, v.Key.Pool) // verdicts come in pool order
		}
	}
	var out []string
	for _, why := range order {
		g := groups[why]
		out = append(out, fmt.Sprintf("%s: %d members not probed here (pools %s)", why, g.members, strings.Join(g.pools, ", ")))
	}
	return out
}
