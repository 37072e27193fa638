package health

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The errors of this package.
var (
	// ErrAdmin is an admin state that is not auto, up, down, drain or
	// shed:PERCENT.
	ErrAdmin = errors.New("write auto, up, down, drain or shed:PERCENT (1 to 100)")
	// ErrDuplicateMember is a member listed twice in one pool.
	ErrDuplicateMember = errors.New("member listed twice")
)

// NodeID names a Tern node, as the node registry does.
type NodeID string

// Key names a pool member: its pool and its address as the configuration
// writes it.
type Key struct {
	Pool   string
	Member string
}

func (k Key) String() string { return k.Pool + "/" + k.Member }

// Admin is an operator's state of a member.
type Admin uint8

const (
	AdminAuto  Admin = iota // the probes decide
	AdminUp                 // forced up, whatever the probes say
	AdminDown               // forced down, whatever the probes say
	AdminDrain              // keeps its health, gets no new answers
)

// adminShed is the first of the shed states: AdminShed(p) is
// adminShed+p for p in 1..99 (100 is AdminDrain, 0 AdminAuto).
const adminShed Admin = 100

// AdminShed is the admin state that sends percent of a member's clients
// (chosen by a hash of their subnet, so each keeps its answer) to other
// members: 0 is AdminAuto, 100 or more AdminDrain.
func AdminShed(percent int) Admin {
	switch {
	case percent <= 0:
		return AdminAuto
	case percent >= 100:
		return AdminDrain
	}
	return adminShed + Admin(percent)
}

// Shed is the share of clients a admin state sends elsewhere: 0 to 1
// (drain 1).
func (a Admin) Shed() float64 {
	switch {
	case a == AdminDrain:
		return 1
	case a > adminShed && a < adminShed+100:
		return float64(a-adminShed) / 100
	}
	return 0
}

var adminNames = [...]string{AdminAuto: "auto", AdminUp: "up", AdminDown: "down", AdminDrain: "drain"}

func (a Admin) String() string {
	if int(a) < len(adminNames) {
		return adminNames[a]
	}
	if a > adminShed && a < adminShed+100 {
		return "shed:" + strconv.Itoa(int(a-adminShed))
	}
	return fmt.Sprintf("Admin(%d)", uint8(a))
}

// forced reports whether a decides Up by itself.
func (a Admin) forced() bool { return a == AdminUp || a == AdminDown }

// ParseAdmin parses auto, up, down, drain or shed:PERCENT (1 to 100;
// shed:100 is drain); "" is auto.
func ParseAdmin(s string) (Admin, error) {
	if s == "" {
		return AdminAuto, nil
	}
	if p, ok := strings.CutPrefix(s, "shed:"); ok {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 100 {
			return 0, fmt.Errorf("admin state %q: %w", s, ErrAdmin)
		}
		return AdminShed(n), nil
	}
	for i, n := range adminNames {
		if s == n {
			return Admin(i), nil
		}
	}
	return 0, fmt.Errorf("admin state %q: %w", s, ErrAdmin)
}

// Member is one configured pool member, as health resolution needs it.
type Member struct {
	Key
	// CheckType is the type of its pool's check ("" when the pool has
	// none: the member keeps its configured state). A member of a pool
	// checked by type "load" serves its probers' load.
	CheckType string
	// Admin is the configuration's admin: value (standalone: the run-time
	// one, which replaces it).
	Admin Admin
	// InitialUp is its pool's initial state, in force until a first probe
	// result.
	InitialUp bool
	// Reporters: the member's probers are the nodes that hold a health
	// observation of it, not those Probers chooses, and a split between
	// them resolves up (a quorum of half, rounded up). For members only
	// some nodes can probe and no node list names: a dispatcher's servers,
	// probed by the nodes that run that dispatcher.
	Reporters bool
}

func (m Member) checked() bool   { return m.CheckType != "" }
func (m Member) loadCheck() bool { return m.CheckType == "load" }

// Own is this node's latest observation of a member: its probes' verdict
// after rise and fall, and its smoothed load.
type Own struct {
	// Probed is false until a first probe result; Up is meaningless until
	// then (the member's initial state stands).
	Probed bool
	Up     bool
	// Load is the smoothed load as last passed on; HasLoad is false until
	// a first report.
	Load    float64
	HasLoad bool
	// Latency is the smoothed round-trip time of the probes, in seconds,
	// as last passed on; HasLatency is false until a first success.
	Latency    float64
	HasLatency bool
	// Err is the latest probe's failure ("" when it succeeded); with
	// NotAllowed, why this node does not probe the member.
	Err string
	// At is when the latest probe started (zero before the first).
	At time.Time
	// NotAllowed: this node may not run the member's check (an exec check
	// on a node without node.allow_exec_checks). It never probes the
	// member and says so; its unprobed state is not carried over from a
	// previous configuration, since no probe will ever replace it.
	NotAllowed bool
}

// Kind is the kind of an observation: what its value measures.
type Kind string

// The kinds health resolution reads. The set is open: an observation of
// another kind (latency, next) merges and is proposed by the same rules.
const (
	KindHealth Kind = "health" // 1: the probes pass, 0: they fail
	KindLoad   Kind = "load"   // the smoothed load a load check read
	// KindLatency is the smoothed round-trip time of a member's probes
	// from one node, in seconds: for the latency stage, by vantage node.
	KindLatency Kind = "latency"
)

// Observation is one node's latest observation of one kind of one member,
// as the replicated state holds it.
type Observation struct {
	Node  NodeID
	Kind  Kind
	Value float64
	At    time.Time // when the probe that made it started
}

// Up reads a health observation: a value above 0 is up.
func (o Observation) Up() bool { return o.Value > 0 }

// HealthValue is the value of a health observation.
func HealthValue(up bool) float64 {
	if up {
		return 1
	}
	return 0
}

// State is a member's resolved state: what answers follow, and why.
type State struct {
	Key
	// Up is the member's health as answers follow it; a drained member
	// keeps its health (for the connections that hold it) but gets no new
	// answers.
	Up    bool
	Drain bool
	// Forced is true when an admin state up or down decided Up.
	Forced bool
	// Admin is the admin state in force: the replicated one when set, else
	// the configuration's.
	Admin Admin
	// Load is the served load: in a cluster, for a load check, the median
	// of the probers' fresh reports, else this node's own. HasLoad is
	// false while there is none.
	Load    float64
	HasLoad bool
	// Shed is the share of clients an admin shed state sends elsewhere
	// (0 to 1; a drain is Drain, not Shed).
	Shed float64
	// Latency are the fresh smoothed RTTs of the member's probes, one per
	// node, by node (cluster: the replicated ones; standalone: this
	// node's own). Value is in seconds.
	Latency []Observation
	// Why says in a few words why the member is in or out of answers.
	Why string
	// Probers are the nodes whose verdicts decide the member (by ID; none
	// standalone).
	Probers []NodeID
	// Vantages are what each node said of the member: health, then load
	// for a load check, each by node. Standalone, this node's own verdict
	// once probed.
	Vantages []Vantage
}

// served reports whether a and b differ in what answers see.
func (s State) served(b State) bool {
	return s.Up != b.Up || s.Drain != b.Drain || s.Load != b.Load || s.Shed != b.Shed ||
		!slices.EqualFunc(s.Latency, b.Latency, func(x, y Observation) bool { return x.Node == y.Node && x.Value == y.Value })
}

// Vantage is one node's word on a member.
type Vantage struct {
	Observation
	// Observed is false for a node that has said nothing and says why not
	// in Reason (this node, when it may not run the check).
	Observed bool
	// Stale: older (or further ahead) than the max age, by the clock the
	// state was resolved with; it counts for nothing.
	Stale bool
	// Prober: the node is one of the member's probers; only probers count.
	Prober bool
	Reason string
}
