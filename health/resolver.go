package health

import (
	"fmt"
	"slices"
	"time"
)

// Source is where a Resolver reads a member's inputs when it resolves it:
// this node's prober and the replicated state, as they are at that call.
type Source interface {
	// Own is this node's latest observation of the member.
	Own(k Key) Own
	// Admin is the operator's admin state of the member, ok false when
	// none is set: in a cluster the replicated one (never auto),
	// standalone the one set at run time.
	Admin(k Key) (a Admin, ok bool)
	// Observations appends to dst the replicated observations of kind of
	// the member, one per node, in any order.
	Observations(dst []Observation, k Key, kind Kind) []Observation
}

// Options configure a Resolver.
type Options struct {
	Self    NodeID
	Cluster bool
	MaxAge  time.Duration
	// Probers is how many nodes probe a member; 0: DefaultProbers.
	Probers int
	// Quorum is how many fresh verdicts decide; 0: Majority.
	Quorum int
}

// Change is one member whose served state changed: Was is the zero State
// for a member resolved for the first time.
type Change struct {
	Was, Now State
}

// Changes are what one Resolve changed in what answers see.
type Changes struct {
	// Served lists the members whose up, drain or load changed, in the
	// order they were resolved.
	Served []Change
	// Pools are the pools holding them, each once, sorted: the ones to
	// rebuild.
	Pools []string
}

// Resolver keeps every member's resolved state and re-resolves only what
// its inputs or the clock changed. It is not safe for concurrent use; the
// States it returns are never modified afterwards and may be shared.
type Resolver struct {
	opts    Options
	members []member
	index   map[Key]int32
	pools   map[string][]int32
	nodes   []NodeID // registered, sorted, unique
	all     bool     // every member is due
	dirty   []int32
	epoch   uint32
	clock   time.Time
	due     deadlines

	rank    ranker
	dec     decider
	health  []Observation
	load    []Observation
	latency []Observation
}

type member struct {
	m     Member
	carry Own // the previous configuration's last probed observation
	last  Own // the latest own observation read
	st    State
	done  bool // st has been resolved
	seen  uint32
}

// NewResolver returns a Resolver with no members.
func NewResolver(o Options) *Resolver {
	return &Resolver{opts: o, index: map[Key]int32{}, pools: map[string][]int32{}}
}

// SetMembers makes ms the members, in the order States and Pool return
// them (a new configuration). A member kept from the previous list keeps
// its state until the next Resolve and carries its last probed observation
// over while the new configuration's probes have none (chained across
// configurations that never probed it). Every member is due at the next
// Resolve, whose Changes then list the members new or changed in what
// answers see; the caller rebuilds every pool anyway.
func (r *Resolver) SetMembers(ms []Member) error {
	index := make(map[Key]int32, len(ms))
	for i, m := range ms {
		if _, ok := index[m.Key]; ok {
			return fmt.Errorf("pool %q member %q: %w", m.Pool, m.Member, ErrDuplicateMember)
		}
		index[m.Key] = int32(i)
	}
	members := make([]member, len(ms))
	pools := map[string][]int32{}
	for i, m := range ms {
		nm := member{m: m}
		if j, ok := r.index[m.Key]; ok {
			old := r.members[j]
			nm.st, nm.done, nm.carry, nm.last = old.st, old.done, old.carry, old.last
			if old.last.Probed && !old.last.NotAllowed {
				nm.carry = old.last
			}
		}
		members[i] = nm
		pools[m.Pool] = append(pools[m.Pool], int32(i))
	}
	r.members, r.index, r.pools = members, index, pools
	r.due.reset(len(ms))
	r.dirty = r.dirty[:0]
	r.all = true
	return nil
}

// SetNodes sets the registered nodes, from which every member's probers
// are chosen. A change makes every member due (cluster only).
func (r *Resolver) SetNodes(nodes []NodeID) {
	ns := uniq(nodes)
	if slices.Equal(ns, r.nodes) {
		return
	}
	r.nodes = ns
	if r.opts.Cluster {
		r.all = true
	}
}

// Touch marks members due at the next Resolve (their inputs changed and
// the caller resolves later).
func (r *Resolver) Touch(keys ...Key) {
	for _, k := range keys {
		if i, ok := r.index[k]; ok {
			r.dirty = append(r.dirty, i)
		}
	}
}

// TouchAll makes every member due at the next Resolve: for a caller that
// knows some inputs changed but not whose.
func (r *Resolver) TouchAll() { r.all = true }

// Resolve re-resolves, reading their inputs from src at clock, the
// members named in changed (keys of no member are ignored), those made
// due by SetMembers, SetNodes, Touch or TouchAll, and those whose state
// the clock may have changed since (an observation turned fresh or stale:
// see Next). A clock that went back makes every member due. Its cost
// follows the number of members it re-resolves, not the number of
// members (but for a heap update, logarithmic in them).
func (r *Resolver) Resolve(src Source, changed []Key, clock time.Time) Changes {
	if clock.Before(r.clock) {
		r.all = true
	}
	r.clock = clock
	var ch Changes
	p := Params{Self: r.opts.Self, Cluster: r.opts.Cluster, Clock: clock, MaxAge: r.opts.MaxAge, Quorum: r.opts.Quorum}
	if r.all {
		for i := range r.members {
			r.resolve(int32(i), src, p, &ch)
		}
		r.all, r.dirty = false, r.dirty[:0]
	} else {
		r.epoch++
		if r.epoch == 0 { // wrapped: no member may look seen
			for i := range r.members {
				r.members[i].seen = 0
			}
			r.epoch = 1
		}
		visit := func(i int32) {
			if r.members[i].seen != r.epoch {
				r.members[i].seen = r.epoch
				r.resolve(i, src, p, &ch)
			}
		}
		for _, k := range changed {
			if i, ok := r.index[k]; ok {
				visit(i)
			}
		}
		for _, i := range r.dirty {
			visit(i)
		}
		r.dirty = r.dirty[:0]
		// A member resolved at clock is due after clock, so this ends.
		for i, at, ok := r.due.min(); ok && !at.After(clock); i, at, ok = r.due.min() {
			r.members[i].seen = r.epoch
			r.resolve(i, src, p, &ch)
		}
	}
	if len(ch.Pools) > 1 {
		slices.Sort(ch.Pools)
		ch.Pools = slices.Compact(ch.Pools)
	}
	return ch
}

func (r *Resolver) resolve(i int32, src Source, p Params, ch *Changes) {
	mb := &r.members[i]
	k := mb.m.Key
	own := src.Own(k)
	in := Inputs{Member: mb.m, Own: own, Carry: mb.carry}
	if own.Probed || own.NotAllowed {
		mb.carry = Own{} // this configuration has its own word now
	}
	mb.last = own
	in.Admin, in.AdminSet = src.Admin(k)
	if r.opts.Cluster {
		r.health = src.Observations(r.health[:0], k, KindHealth)
		in.Health = r.health
		if mb.m.loadCheck() {
			r.load = src.Observations(r.load[:0], k, KindLoad)
			in.Load = r.load
		}
		if mb.m.checked() {
			r.latency = src.Observations(r.latency[:0], k, KindLatency)
			in.Latency = r.latency
		}
		if !mb.m.Reporters {
			in.Probers = r.rank.probers(k, r.nodes, r.opts.Probers)
		}
	}
	st := r.dec.decide(in, p)
	if !mb.done || st.served(mb.st) {
		ch.Served = append(ch.Served, Change{Was: mb.st, Now: st})
		ch.Pools = append(ch.Pools, k.Pool)
	}
	mb.st, mb.done = st, true
	if at, ok := nextFlip(st.Vantages, p.Clock, p.MaxAge); ok {
		r.due.set(i, at)
	} else {
		r.due.remove(i)
	}
}

// nextFlip is the first moment after clock at which one of vs turns fresh
// or stale.
func nextFlip(vs []Vantage, clock time.Time, maxAge time.Duration) (time.Time, bool) {
	if maxAge <= 0 {
		return time.Time{}, false
	}
	var next time.Time
	found := false
	for _, v := range vs {
		if !v.Observed {
			continue
		}
		var at time.Time
		switch lo, hi := v.At.Add(-maxAge), v.At.Add(maxAge); {
		case clock.Before(lo):
			at = lo // fresh from lo on
		case !clock.After(hi):
			at = hi.Add(time.Nanosecond) // stale just after hi
		default:
			continue // stale for good
		}
		if !found || at.Before(next) {
			next, found = at, true
		}
	}
	return next, found
}

// Next is the earliest clock at which a Resolve with no new input would
// change a state: when an observation turns stale (or, from a clock
// running ahead, fresh). It is on the clock's scale: while the clock
// stands (out of quorum) nothing comes due until it moves again. ok is
// false when no state can change by time alone.
func (r *Resolver) Next() (time.Time, bool) {
	_, at, ok := r.due.min()
	return at, ok
}

// State returns a member's state as last resolved.
func (r *Resolver) State(k Key) (State, bool) {
	i, ok := r.index[k]
	if !ok || !r.members[i].done {
		return State{}, false
	}
	return r.members[i].st, true
}

// Pool returns the states of pool's members in the order SetMembers gave
// them (nil for an unknown pool).
func (r *Resolver) Pool(pool string) []State {
	is := r.pools[pool]
	if len(is) == 0 {
		return nil
	}
	out := make([]State, len(is))
	for j, i := range is {
		out[j] = r.members[i].st
	}
	return out
}

// States returns every member's state in the order SetMembers gave them.
func (r *Resolver) States() []State {
	out := make([]State, len(r.members))
	for i := range r.members {
		out[i] = r.members[i].st
	}
	return out
}

// deadlines is a min-heap of member indexes by the time they are due.
type deadlines struct {
	heap []int32     // member indexes
	at   []time.Time // by member
	pos  []int32     // by member: its place in heap, -1 when absent
}

func (d *deadlines) reset(n int) {
	d.heap = d.heap[:0]
	d.at = make([]time.Time, n)
	d.pos = make([]int32, n)
	for i := range d.pos {
		d.pos[i] = -1
	}
}

func (d *deadlines) min() (int32, time.Time, bool) {
	if len(d.heap) == 0 {
		return 0, time.Time{}, false
	}
	i := d.heap[0]
	return i, d.at[i], true
}

func (d *deadlines) set(i int32, at time.Time) {
	d.at[i] = at
	if d.pos[i] < 0 {
		d.pos[i] = int32(len(d.heap))
		d.heap = append(d.heap, i)
	}
	d.fix(int(d.pos[i]))
}

func (d *deadlines) remove(i int32) {
	p := int(d.pos[i])
	if p < 0 {
		return
	}
	last := len(d.heap) - 1
	d.swap(p, last)
	d.heap = d.heap[:last]
	d.pos[i] = -1
	if p < last {
		d.fix(p)
	}
}

func (d *deadlines) less(a, b int) bool { return d.at[d.heap[a]].Before(d.at[d.heap[b]]) }

func (d *deadlines) swap(a, b int) {
	d.heap[a], d.heap[b] = d.heap[b], d.heap[a]
	d.pos[d.heap[a]], d.pos[d.heap[b]] = int32(a), int32(b)
}

// fix restores the heap order around position p.
func (d *deadlines) fix(p int) {
	for p > 0 {
		up := (p - 1) / 2
		if !d.less(p, up) {
			break
		}
		d.swap(p, up)
		p = up
	}
	for {
		c := 2*p + 1
		if c >= len(d.heap) {
			return
		}
		if c+1 < len(d.heap) && d.less(c+1, c) {
			c++
		}
		if !d.less(c, p) {
			return
		}
		d.swap(p, c)
		p = c
	}
}
