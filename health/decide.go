package health

import (
	"cmp"
	"slices"
	"strconv"
	"time"
)

// Params are what every member of one resolution shares.
type Params struct {
	// Self is this node (the name its own vantage carries).
	Self NodeID
	// Cluster: replicated admin states and observations decide; false
	// (standalone) leaves this node's own observation and the
	// configuration's admin value alone.
	Cluster bool
	// Clock is the time observations age by: now while this node is in
	// quorum, else the last time it was (so that the state it serves while
	// cut off stays as it was instead of ageing out into its own view).
	Clock time.Time
	// MaxAge: an observation further than this from Clock, either way,
	// is stale and counts for nothing; <= 0: never stale.
	MaxAge time.Duration
	// Quorum is how many fresh verdicts decide; 0: Majority of the
	// probers (see Agree).
	Quorum int
}

// Inputs are everything one member's state is decided from.
type Inputs struct {
	Member Member
	// Own is this node's latest observation; Carry the last probed one of
	// the previous configuration, which stands in while Own is not probed
	// (a reload does not bring a down member back for a moment).
	Own, Carry Own
	// Admin is the operator's admin state, in force when AdminSet: the
	// replicated one in a cluster (set when not auto), the one set at run
	// time standalone (auto too). It replaces the configuration's value.
	Admin    Admin
	AdminSet bool
	// Health, Load and Latency are the replicated observations of the
	// member, of any node, in any order (cluster only).
	Health, Load, Latency []Observation
	// Probers are the member's probers (Probers over the registered
	// nodes), in any order; ignored for a member of Reporters.
	Probers []NodeID
}

// Decide resolves one member. The admin state in force is the
// operator's when set (replicated in a cluster, run-time standalone), else
// the configuration's. Then, in order of precedence:
//
//  1. an admin state up or down;
//  2. the agreement of the probers' fresh verdicts (cluster, checked
//     pools; see Agree; for Member.Reporters, of the nodes that reported);
//  3. this node's own verdict while the probers do not agree, and its
//     previous configuration's while it has not probed yet;
//  4. the pool's initial state (no check, or not probed).
//
// A drain keeps the member's health as above and takes it out of new
// answers. A member of a pool checked by type load serves the median of
// its probers' fresh load reports (see Median), else this node's own
// load. Decide neither modifies nor keeps any slice of in: the State's
// slices are its own.
func Decide(in Inputs, p Params) State {
	var d decider
	return d.decide(in, p)
}

// decider holds Decide's scratch space, so that a Resolver allocates only
// what a State keeps.
type decider struct {
	loads []float64
	ps    []NodeID
}

func (d *decider) decide(in Inputs, p Params) State {
	m := in.Member
	own := in.Own
	if !own.Probed && !own.NotAllowed && in.Carry.Probed {
		own = in.Carry
	}
	admin := m.Admin
	if in.AdminSet {
		admin = in.Admin
	}
	s := State{Key: m.Key, Admin: admin, Load: own.Load, HasLoad: own.HasLoad}
	probeUp := m.InitialUp
	if own.Probed {
		probeUp = own.Up
	}
	switch admin {
	case AdminUp, AdminDown:
		s.Up, s.Forced = admin == AdminUp, true
	default:
		s.Up, s.Drain = probeUp, admin == AdminDrain
		if !s.Drain {
			s.Shed = admin.Shed()
		}
	}
	s.Why = ownWhy(s, own)
	defer func() {
		if s.Shed > 0 {
			s.Why += "; " + strconv.Itoa(int(s.Shed*100+0.5)) + "% of its clients shed by an operator"
		}
	}()
	if !p.Cluster {
		if own.Probed {
			s.Vantages = []Vantage{{Observation: Observation{Node: p.Self, Kind: KindHealth, Value: HealthValue(own.Up), At: own.At},
				Observed: true, Prober: true, Reason: own.Err}}
			if own.HasLatency {
				o := Observation{Node: p.Self, Kind: KindLatency, Value: own.Latency, At: own.At}
				s.Latency = []Observation{o}
				s.Vantages = append(s.Vantages, Vantage{Observation: o, Observed: true, Prober: true})
			}
		}
		return s
	}
	q := p.Quorum
	d.ps = d.ps[:0]
	if m.Reporters {
		for _, o := range in.Health {
			if o.Kind == KindHealth {
				d.ps = append(d.ps, o.Node)
			}
		}
	} else {
		d.ps = append(d.ps, in.Probers...)
	}
	slices.Sort(d.ps)
	d.ps = slices.Compact(d.ps)
	if m.Reporters {
		q = (len(d.ps) + 1) / 2
	}
	if len(d.ps) > 0 {
		s.Probers = slices.Clone(d.ps)
	}
	s.Vantages = vantages(in, own, p, d.ps)
	for _, v := range s.Vantages {
		if v.Kind == KindLatency && !v.Stale {
			s.Latency = append(s.Latency, v.Observation)
		}
	}

	if m.checked() && !s.Forced {
		up, known := Agree(in.Health, d.ps, q, p.Clock, p.MaxAge)
		switch {
		case known:
			s.Up = up
			if !s.Drain {
				s.Why = agreementWhy(up, len(d.ps))
			}
		case !s.Drain:
			s.Why += " (this node's own verdict: its probers do not agree yet)"
		}
	}
	if m.loadCheck() {
		var l float64
		var ok bool
		if l, ok, d.loads = median(in.Load, d.ps, p.Clock, p.MaxAge, d.loads); ok {
			s.Load, s.HasLoad = l, true
		}
	}
	return s
}

// ownWhy says why a member has state s from its admin state and this
// node's own observation.
func ownWhy(s State, own Own) string {
	initial := "down"
	if s.Up {
		initial = "up"
	}
	switch {
	case s.Drain && s.Admin == AdminDrain:
		return "drained by an operator"
	case s.Forced:
		return "forced " + initial + " by an operator"
	case own.NotAllowed:
		return "not probed here: " + notAllowed(own) + "; initial state " + initial
	case !own.Probed && own.Err == "" && own.At.IsZero():
		if s.Up {
			return "not probed: up (no check, or initial state)"
		}
		return "not probed yet: initial state down"
	case s.Up:
		return "probes pass"
	case own.Err == "":
		return "probes fail"
	default:
		return "probes fail: " + own.Err
	}
}

// notAllowed is why this node does not probe a member it may not.
func notAllowed(own Own) string {
	if own.Err != "" {
		return own.Err
	}
	return "its check may not run on this node"
}

func agreementWhy(up bool, probers int) string {
	state := "down"
	if up {
		state = "up"
	}
	if probers == 1 {
		return state + " by agreement of 1 prober"
	}
	return state + " by agreement of " + strconv.Itoa(probers) + " probers"
}

// vantages lists what each node said of the member (health, load for a
// load check, and latency), one per node and kind, by node; this node, when it may
// not probe the member, says so.
func vantages(in Inputs, own Own, p Params, probers []NodeID) []Vantage {
	n := len(in.Health) + len(in.Latency)
	if in.Member.loadCheck() {
		n += len(in.Load)
	}
	if own.NotAllowed {
		n++
	}
	if n == 0 {
		return nil
	}
	out := make([]Vantage, 0, n)
	add := func(os []Observation, kind Kind) {
		start := len(out)
		for _, o := range os {
			if o.Kind != kind {
				continue
			}
			i := slices.IndexFunc(out[start:], func(v Vantage) bool { return v.Node == o.Node })
			if i >= 0 {
				if Supersedes(out[start+i].Observation, true, o) {
					out[start+i].Observation = o
				}
				continue
			}
			out = append(out, Vantage{Observation: o, Observed: true})
		}
		vs := out[start:]
		for i := range vs {
			vs[i].Stale = !Fresh(vs[i].At, p.Clock, p.MaxAge)
			_, vs[i].Prober = slices.BinarySearch(probers, vs[i].Node)
		}
		if kind == KindHealth && own.NotAllowed {
			i := slices.IndexFunc(vs, func(v Vantage) bool { return v.Node == p.Self })
			if i < 0 {
				_, prober := slices.BinarySearch(probers, p.Self)
				out = append(out, Vantage{Observation: Observation{Node: p.Self, Kind: KindHealth}, Prober: prober})
				vs = out[start:]
				i = len(vs) - 1
			}
			vs[i].Reason = notAllowed(own)
		}
		slices.SortFunc(vs, func(a, b Vantage) int { return cmp.Compare(a.Node, b.Node) })
	}
	add(in.Health, KindHealth)
	if in.Member.loadCheck() {
		add(in.Load, KindLoad)
	}
	add(in.Latency, KindLatency)
	return out
}
