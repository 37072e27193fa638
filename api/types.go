package api

import "time"

// Status is one node's view of itself and the cluster.
type Status struct {
	Node          string `json:"node"`
	RaftState     string `json:"raft_state,omitempty"`
	Term          uint64 `json:"term,omitempty"`
	AppliedIndex  uint64 `json:"applied_index,omitempty"`
	Leader        string `json:"leader,omitempty"`
	InQuorum      bool   `json:"in_quorum"`
	ConfigVersion uint64 `json:"config_version,omitempty"`
	ConfigHash    string `json:"config_hash,omitempty"`
	Serving       bool   `json:"serving"`
	MembersUp     int    `json:"members_up"`
	MembersTotal  int    `json:"members_total"`
	// Warnings are what an operator should know of this node's own
	// settings: members it does not probe, and why.
	Warnings []string `json:"warnings,omitempty"`
	// LocalFileDiffers: in a cluster, the node's own file's cluster-wide
	// part (everything but node, rrl, tsig and transfer, which a node
	// always takes from its own file) is not the cluster's current
	// version. SIGHUP never proposes it; `tern apply` does. LocalFileHash
	// is the digest of that part (the YAML decoded without those keys,
	// and the zone files), empty when the file does not load.
	LocalFileDiffers bool   `json:"local_file_differs,omitempty"`
	LocalFileHash    string `json:"local_file_hash,omitempty"`
	// LastConfigError is the last failure to propose, load or compile a
	// configuration (a reload, the bootstrap proposal, a replicated
	// version this node cannot serve), cleared by the next success. The
	// node keeps serving its last good configuration meanwhile.
	LastConfigError string `json:"last_config_error,omitempty"`
}

// ClusterMember is one Raft server.
type ClusterMember struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr,omitempty"`
	Voter    bool   `json:"voter"`
	Leader   bool   `json:"leader"`
	// Reachable: the node answering reached this member's API just now
	// (itself: always). A dead peer is still a Raft member, but no
	// follower: Unreachable says why it was not reached.
	Reachable   bool   `json:"reachable"`
	Unreachable string `json:"unreachable,omitempty"`
}

// JoinRequest asks the leader to add a node.
type JoinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
	// Fresh says the joining node's Raft log is empty. A cluster that
	// already lists its ID refuses it (409): that node lost its data, and
	// a voter that forgot its log must not vote as if it had it.
	Fresh bool `json:"fresh,omitempty"`
}

// Pool is a pool with each member's state.
type Pool struct {
	Name string `json:"name"`
	// Policy is the pool's preset (roundrobin, weighted, ...) or its
	// chain of stages ("geo > priority > weighted").
	Policy string `json:"policy,omitempty"`
	// Check names the pool's check and CheckType its type ("" without).
	Check     string `json:"check,omitempty"`
	CheckType string `json:"check_type,omitempty"`
	// SpillAt is the fraction of a declared capacity past which a member
	// or site sheds clients (spill_at); set when some member has a
	// capacity.
	SpillAt float64      `json:"spill_at,omitempty"`
	Members []PoolMember `json:"members"`
}

// PoolMember is one member's state as the node serves it: whether answers
// hold it, whether an admin state forces it, why, its served load, and
// what each vantage node saw.
type PoolMember struct {
	Address string  `json:"address"`
	Up      bool    `json:"up"`
	Admin   string  `json:"admin"`
	Forced  bool    `json:"forced"`
	Why     string  `json:"why,omitempty"`
	Load    float64 `json:"load,omitempty"`
	// Site, Weight and Priority are the member's configuration.
	Site     string `json:"site,omitempty"`
	Weight   int    `json:"weight,omitempty"`
	Priority int    `json:"priority,omitempty"`
	// Answers counts the answers this node gave the member since it
	// started (tern_dns_pool_answers_total).
	Answers uint64 `json:"answers"`
	// LastCheck is this node's latest probe of the member (nil: this
	// node has not probed it, or does not).
	LastCheck *CheckResult `json:"last_check,omitempty"`
	Verdicts  []Verdict    `json:"verdicts,omitempty"`
	// Loads are the load reports of a member of a pool checked by type
	// load, by node.
	Loads []LoadReport `json:"loads,omitempty"`
	// RTTs are the smoothed round-trip times of the member's probes, by
	// vantage node.
	RTTs []RTTReport `json:"rtts,omitempty"`
	// Capacity is the declared capacity the member's spill-over is
	// measured against: its site's when the site declares one, else the
	// member's own; CapacityOf says which ("site", "member"; "" and 0:
	// none declared). CapacityLoad is the load held against it: the
	// served loads of the site's members up in this pool, summed, or the
	// member's own. Spill is the share of the member's clients (0 to 1)
	// sent elsewhere because CapacityLoad passes SpillAt of Capacity; an
	// operator's shed is Admin's (shed:N), and the larger of the two
	// counts.
	Capacity     float64 `json:"capacity,omitempty"`
	CapacityOf   string  `json:"capacity_of,omitempty"`
	CapacityLoad float64 `json:"capacity_load,omitempty"`
	Spill        float64 `json:"spill,omitempty"`
}

// RTTReport is one node's latest smoothed RTT of a member.
type RTTReport struct {
	Node    string    `json:"node"`
	Seconds float64   `json:"seconds"`
	At      time.Time `json:"at"`
	Stale   bool      `json:"stale,omitempty"`
}

// CheckResult is one probe's outcome: when it started, whether it passed,
// how long it took and, when it failed, why.
type CheckResult struct {
	At       time.Time `json:"at"`
	OK       bool      `json:"ok"`
	RTTMilli float64   `json:"rtt_ms"`
	Error    string    `json:"error,omitempty"`
}

// Verdict is one node's latest probe verdict on a member. A verdict with
// a Reason and no time is a node saying why it does not probe the member.
type Verdict struct {
	Node  string    `json:"node"`
	Up    bool      `json:"up"`
	At    time.Time `json:"at"`
	Stale bool      `json:"stale,omitempty"` // too old (or too far ahead) to count
	// Prober: the node is one of the member's probers; only theirs count.
	Prober bool   `json:"prober,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// LoadReport is one node's latest load report of a member.
type LoadReport struct {
	Node   string    `json:"node"`
	Load   float64   `json:"load"`
	At     time.Time `json:"at"`
	Stale  bool      `json:"stale,omitempty"`
	Prober bool      `json:"prober,omitempty"`
}

// ConfigVersion describes one applied configuration.
type ConfigVersion struct {
	Version uint64    `json:"version"`
	Hash    string    `json:"hash"`
	Current bool      `json:"current"`
	At      time.Time `json:"at,omitzero"` // by the proposing node's clock
	// Origin is how and where it was made; zero for versions made before
	// origins were kept.
	Origin     Origin `json:"origin,omitzero"`
	Comment    string `json:"comment,omitempty"`
	RollbackOf uint64 `json:"rollback_of,omitempty"`
	// Serials are the SOA serials its zones serve, by zone.
	Serials map[string]uint32 `json:"serials,omitempty"`
	Files   map[string]string `json:"files,omitempty"` // only when one version is shown
	Main    string            `json:"main,omitempty"`
}

// Origin says where a configuration version came from.
type Origin struct {
	Kind   string `json:"kind"`             // bootstrap, apply or rollback
	Node   string `json:"node,omitempty"`   // the node that validated and proposed it
	Client string `json:"client,omitempty"` // the API client's address (apply, rollback)
}

// ApplyRequest carries a whole configuration: the YAML file and the zone
// files it names, by their paths relative to the YAML file.
type ApplyRequest struct {
	Main  string            `json:"main"`
	Files map[string]string `json:"files"`
	// Change names the version the files were based on.
	Change
}

// RollbackRequest is a rollback's Change (the body of POST
// /v1/config/versions/{v}/rollback).
type RollbackRequest struct {
	Change
}

// Change is what every configuration change says besides its content.
type Change struct {
	// Base is the configuration version the change was based on (0: the
	// cluster has none yet). When it is no longer the current version
	// the change is refused with 409 Conflict, unless Force.
	Base    uint64 `json:"base"`
	Force   bool   `json:"force,omitempty"`
	Comment string `json:"comment,omitempty"`
	// Client is the sender's address, set by the server (never read
	// from the request).
	Client string `json:"-"`
}

// ApplyResult is the committed version; Changed is false when the
// configuration sent was the current version already.
type ApplyResult struct {
	Version uint64 `json:"version"`
	Hash    string `json:"hash"`
	Changed bool   `json:"changed"`
	// Replicated is how many bytes of Raft log the change took: the
	// content the cluster did not hold yet, and the version.
	Replicated int64 `json:"replicated,omitempty"`
}

// CommandResult is what the leader answers a forwarded command: the log
// index that carried it (the follower waits until it has applied it),
// whether it changed the state, and the configuration version after it.
type CommandResult struct {
	Index   uint64 `json:"index"`
	Changed bool   `json:"changed"`
	Version uint64 `json:"version"`
}

// AdminRequest sets a member's admin state: auto, up, down or drain.
type AdminRequest struct {
	// State is auto, up, down, drain or shed:PERCENT (1 to 100 of the
	// member's clients sent elsewhere; shed:100 is drain).
	State string `json:"state"`
}

// ShedRequest is the body of PUT /v1/sites/{site}/shed: the share of the
// site's clients to send elsewhere, 0 (none: every member back to auto)
// to 100 (drain).
type ShedRequest struct {
	Percent int `json:"percent"`
}

// ShedResult says how many members a site shed set.
type ShedResult struct {
	Site    string `json:"site"`
	Percent int    `json:"percent"`
	Members int    `json:"members"`
}

// Explanation is a live decision, stage by stage.
type Explanation struct {
	Text string `json:"text"`
}

// errorBody is every error's shape.
type errorBody struct {
	Error string `json:"error"`
}
