package ha

import (
	"fmt"
	"time"
)

// Group is a set of VIPs owned together, as this dispatcher sees it.
type Group struct {
	Name string
	// Priority is this dispatcher's claim, 1-255; the highest alive holds.
	Priority uint8
	// Preempt lets this dispatcher take the group from a holder of lower
	// rank; without it a holder keeps the group until it fails.
	Preempt bool
}

// MachineConfig configures a Machine.
type MachineConfig struct {
	// ID names this dispatcher; between equal priorities the higher ID
	// (compared as strings) wins. Every dispatcher needs a distinct ID.
	ID       string
	Groups   []Group
	Interval time.Duration // between heartbeats
	// DeadAfter is how many of a peer's intervals without a heartbeat make
	// it dead; the same wait applies at start before taking any group, so
	// a restarted dispatcher first hears who holds what.
	DeadAfter int
}

// GroupState is one group's entry in a heartbeat.
type GroupState struct {
	Name string
	// Priority is the sender's claim; 0 means it is not a candidate
	// (faulty or leaving).
	Priority uint8
	Holding  bool
}

// Heartbeat is what a dispatcher tells its peers.
type Heartbeat struct {
	ID       string
	Seq      uint64    // set by the sender's Agent
	Time     time.Time // set by the sender's Agent
	Interval time.Duration
	// Config is a digest of the sender's forwarding configuration (set
	// by its Agent; 0 means none): peers whose digests differ would
	// compute different Maglev tables, and flows would change server at
	// takeover.
	Config uint64
	Groups []GroupState
}

// ActionKind is what the Agent must do for a group.
type ActionKind uint8

const (
	// Take: add the group's VIPs, announce them, start forwarding.
	Take ActionKind = iota + 1
	// Release: stop forwarding and remove the group's VIPs.
	Release
	// Announce: send gratuitous ARP again for a group still held (a peer
	// of lower rank claimed it too and may have drawn its traffic away).
	Announce
)

func (k ActionKind) String() string {
	switch k {
	case Take:
		return "take"
	case Release:
		return "release"
	case Announce:
		return "announce"
	}
	return fmt.Sprintf("action(%d)", uint8(k))
}

// Action is one decision of the Machine.
type Action struct {
	Group  string
	Kind   ActionKind
	Reason string // for the log
}

type peerGroup struct {
	prio    uint8
	holding bool
}

type peer struct {
	last     time.Time
	interval time.Duration
	groups   map[string]peerGroup
}

// Machine is the pure decision core: it holds what this dispatcher knows of
// its peers and which groups it holds, and turns events into actions. It is
// not safe for concurrent use; the Agent serialises calls.
type Machine struct {
	cfg      MachineConfig
	start    time.Time
	peers    map[string]*peer
	holding  map[string]bool
	conflict map[string]bool // a lower-ranked peer claims a group we hold
	reachOK  bool
	resigned bool
}

// NewMachine returns a Machine that starts at now holding nothing.
func NewMachine(cfg MachineConfig, now time.Time) *Machine {
	if cfg.DeadAfter < 1 {
		cfg.DeadAfter = 3
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 200 * time.Millisecond
	}
	return &Machine{
		cfg:      cfg,
		start:    now,
		peers:    map[string]*peer{},
		holding:  map[string]bool{},
		conflict: map[string]bool{},
		reachOK:  true,
	}
}

// Holding reports whether this dispatcher holds group.
func (m *Machine) Holding(group string) bool { return m.holding[group] }

// Heartbeat returns this dispatcher's current claims, to be sent.
func (m *Machine) Heartbeat() Heartbeat {
	hb := Heartbeat{ID: m.cfg.ID, Interval: m.cfg.Interval, Groups: make([]GroupState, len(m.cfg.Groups))}
	for i, g := range m.cfg.Groups {
		p := g.Priority
		if !m.candidate() {
			p = 0
		}
		hb.Groups[i] = GroupState{Name: g.Name, Priority: p, Holding: m.holding[g.Name]}
	}
	return hb
}

// Receive takes a peer's authenticated heartbeat, received at now.
func (m *Machine) Receive(now time.Time, hb Heartbeat) []Action {
	if hb.ID == m.cfg.ID {
		return nil // our own, looped back or a copy of our ID: ignore
	}
	p := m.peers[hb.ID]
	if p == nil {
		p = &peer{}
		m.peers[hb.ID] = p
	}
	p.last = now
	p.interval = hb.Interval
	if p.interval <= 0 {
		p.interval = m.cfg.Interval
	}
	p.groups = make(map[string]peerGroup, len(hb.Groups))
	for _, g := range hb.Groups {
		p.groups[g.Name] = peerGroup{prio: g.Priority, holding: g.Holding}
	}
	return m.evaluate(now)
}

// Tick re-evaluates at now: peers whose heartbeats stopped die, the start
// wait ends.
func (m *Machine) Tick(now time.Time) []Action { return m.evaluate(now) }

// SetReach records whether the reach targets answer; a dispatcher that
// cannot reach them holds nothing.
func (m *Machine) SetReach(now time.Time, ok bool) []Action {
	m.reachOK = ok
	return m.evaluate(now)
}

// Resign gives up every group for good (shutdown): the next heartbeat
// says priority 0 so peers take over at once instead of waiting.
func (m *Machine) Resign(now time.Time) []Action {
	m.resigned = true
	return m.evaluate(now)
}

// Deadline returns when time alone next changes a decision: the end of
// the start wait or the moment a live peer is to be declared dead. The
// zero Time means nothing is pending.
func (m *Machine) Deadline(now time.Time) time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	consider(m.start.Add(time.Duration(m.cfg.DeadAfter) * m.cfg.Interval))
	for _, p := range m.peers {
		consider(p.last.Add(time.Duration(m.cfg.DeadAfter) * p.interval))
	}
	return next
}

func (m *Machine) candidate() bool { return m.reachOK && !m.resigned }

func (m *Machine) alive(p *peer, now time.Time) bool {
	return now.Sub(p.last) < time.Duration(m.cfg.DeadAfter)*p.interval
}

// outranks reports whether (pa, a) ranks above (pb, b).
func outranks(pa uint8, a string, pb uint8, b string) bool {
	if pa != pb {
		return pa > pb
	}
	return a > b
}

func (m *Machine) evaluate(now time.Time) []Action {
	var acts []Action
	starting := now.Sub(m.start) < time.Duration(m.cfg.DeadAfter)*m.cfg.Interval
	for _, g := range m.cfg.Groups {
		me := g.Priority
		var (
			higherHolder string // a live peer above us that holds g
			lowerHolder  string // a live peer below us that holds g
			anyHolder    string
			higher       string // a live candidate above us
		)
		for id, p := range m.peers {
			if !m.alive(p, now) {
				continue
			}
			pg, ok := p.groups[g.Name]
			if !ok || pg.prio == 0 {
				continue
			}
			above := outranks(pg.prio, id, me, m.cfg.ID)
			if above && (higher == "" || id > higher) {
				higher = id
			}
			if pg.holding {
				anyHolder = id
				if above {
					higherHolder = id
				} else {
					lowerHolder = id
				}
			}
		}
		held := m.holding[g.Name]
		switch {
		case held && !m.candidate():
			why := "reach targets unreachable"
			if m.resigned {
				why = "shutting down"
			}
			acts = append(acts, m.set(g.Name, Release, why))
		case held && higherHolder != "":
			acts = append(acts, m.set(g.Name, Release, fmt.Sprintf("peer %s of higher rank holds it", higherHolder)))
		case held:
			if lowerHolder != "" && !m.conflict[g.Name] {
				acts = append(acts, Action{Group: g.Name, Kind: Announce, Reason: fmt.Sprintf("peer %s of lower rank claims it too", lowerHolder)})
			}
			m.conflict[g.Name] = lowerHolder != ""
		case !m.candidate() || starting:
		case anyHolder == "" && higher == "":
			acts = append(acts, m.set(g.Name, Take, "no live peer of higher rank holds it"))
		case anyHolder != "" && higherHolder == "" && higher == "" && g.Preempt:
			acts = append(acts, m.set(g.Name, Take, fmt.Sprintf("preempting peer %s of lower rank", anyHolder)))
		}
	}
	return acts
}

func (m *Machine) set(group string, kind ActionKind, reason string) Action {
	m.holding[group] = kind == Take
	m.conflict[group] = false
	return Action{Group: group, Kind: kind, Reason: reason}
}
