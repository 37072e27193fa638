// Package health decides each pool member's state: whether answers hold
// it (up, drained, forced), the load they serve for it, why, and what each
// vantage node said. It is the one place these rules live; node feeds it
// and reads the result for the serving snapshot, the API, the events,
// `tern status` and, in a cluster, the dispatcher.
//
// # Rules
//
// Decide resolves one member from its inputs (see Inputs): this node's own
// observation, the previous configuration's, the replicated admin state,
// the replicated observations of every node, the member's probers and the
// clock. The operator's admin state (replicated in a cluster, set at run
// time standalone) replaces the configuration's admin value. Then, in
// order of precedence: an admin state up or down; the agreement of the
// probers' fresh verdicts (Agree: a majority of the probers, counted over
// fresh verdicts only); while they do not agree, this node's own verdict
// (and until it has probed, the previous configuration's); before any
// probe, or without a check, the pool's initial state. A drain keeps the
// health and takes the member out of new answers. A load check serves the
// median of the probers' fresh loads (Median), else this node's own.
//
// A member of Member.Reporters (a dispatcher's servers, which only the
// nodes running that dispatcher probe) has for probers the nodes that
// reported on it, and a split between them resolves up (a quorum of half,
// rounded up), so every such node decides alike.
//
// Probers chooses each member's probers by rendezvous hashing of (node,
// pool, member) over the registered nodes, the same hash raftstore used,
// so assignments do not move. An observation is fresh within the max age
// of the clock on either side (Fresh); a node out of quorum passes the
// time it was last in quorum as the clock, so what it serves while cut off
// stays as it was.
//
// # Incremental resolution
//
// A Resolver keeps every member's state and, at each Resolve, re-resolves
// only the members the caller names as changed (from a probe change or
// the replicated state's changed keys), those a new member list or node
// list made due, and those whose observations the clock turned stale or
// fresh. It returns which members changed in what answers see and which
// pools hold them, and Next tells when the clock alone will change a
// state, so the caller sleeps until then instead of rebuilding on a tick.
//
// # Observations
//
// Observation is generic: a node's latest value of one kind (health, load,
// and more kinds to come) for one member, with the time of the probe that
// made it. Supersedes and Merge are the replicated state's merge rule (an
// older or identical report changes nothing); OwnReports and Pending say
// which of this node's observations it must propose (changed, never
// proposed, or refreshed when older than the refresh period and confirmed
// by a newer probe), with optional hysteresis for numeric kinds.
//
// health is pure: no I/O, no goroutines, no clock of its own.
//
// # Imports
//
// Tern packages: internal/mix (the hash finalizer the prober choice
// shares). raftstore and node import health, never the reverse.
package health
