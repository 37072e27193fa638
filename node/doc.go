// Package node is the composition root of one Tern node: it compiles a
// configuration and the replicated state into the immutable snapshot the
// DNS server answers from, starts the parts in order and stops them in
// reverse, and swaps in a new snapshot only when the whole new
// configuration is valid.
//
// # Standalone and cluster
//
// Without node.raft a node runs standalone: its configuration is its local
// file, SIGHUP (Reload) swaps in a new one, admin states are its own, and
// its zones' served serials are kept in node.data (serials.go).
//
// With node.raft it is a Raft cluster node (package raftstore, data in
// node.data). The node settings (name, dns, api, raft, data, bootstrap,
// join, tls) always come from the local file. The cluster-wide part
// (pools, checks, zones, geo maps, sites) comes from the FSM's current
// configuration version once there is one, and from the local file (as
// its bundle: localBundle) until then. A version's geo.database is opened
// on this host: the local file's
// database when it names one, else the version's path resolved against the
// local file's folder.
//
// Starting: a node with node.bootstrap on an empty data directory starts
// the cluster and, once it leads, proposes as version 1 (based on no
// version) the bundle New built from the bytes it read, validated and
// serves, never the files as they are a moment later; a failed proposal
// is logged, reported (Status.LastConfigError) and retried with backoff
// until it lands or another version is there. A node with node.join asks those API addresses in turn,
// with backoff, to add it (POST /v1/cluster/join; a follower forwards to
// the leader) until one does; a node already in the Raft configuration (a
// restart) skips it, and joining again with the same ID and address
// changes nothing. Lost data is an error, never a new cluster: a corrupt
// or unreadable raft.db stops Open (raftstore); a node whose log is empty
// but whose ID the cluster still lists is refused at join (it must be
// removed first: a voter that forgot its log must not vote); a bootstrap
// node with an empty directory first asks its node.join peers and refuses
// to start when one of them already belongs to a cluster.
//
// Following the FSM: Run watches the FSM. A new configuration version is
// loaded and compiled into a new generation (config + snapshot + prober +
// geo database); one that fails here (it was validated before it was
// proposed, but this node's geo database may differ) is logged and the
// previous generation keeps serving.
//
// Health (health.go): one health.Resolver decides every member's state
// for the node's life, by package health's rules (see its doc: an admin
// state, replicated in a cluster and set at run time standalone, replaces
// the configuration's; then the agreement of the member's probers' fresh
// verdicts; while they do not agree, this node's own verdict; before any
// probe, the pool's initial state; a load check serves the median of the
// probers' fresh loads). It is fed what changed: the prober's changed
// verdicts, the members raftstore.FSM.ChangedSince names after each apply
// (and every member when it cannot), the node list when it changes, a
// run-time admin state. Only pools holding a member whose served state
// (up, drain, load) changed are rebuilt, into a copy of the last snapshot
// whose other pools are shared (selector.Fallbacks.Relink repoints the
// all_down fallbacks that reach them); a new configuration rebuilds all.
// The served snapshot, /v1/pools, the events, `tern status` and the
// dispatcher read the Resolver's states, so none can disagree with what
// DNS answers. Between changes the watcher sleeps until the clock alone
// would change a state (an observation turning stale: Resolver.Next);
// nothing is rebuilt while nothing changes. A node out of quorum ages
// observations by the time it was last in quorum, so the state it serves
// while cut off stays the last agreed one; it looks once a second for the
// quorum to come back.
//
// Probe assignment: a cluster node probes only the members assigned to it
// (probes.Options.Filter with health.Assigned over the registered nodes,
// itself counted in): every member by every node up to five nodes, by
// three beyond. The filter reads the node list the FSM watcher keeps,
// so a membership change takes effect at each member's next probe slot;
// an unassigned member gets no probe traffic from this node, is not
// awaited by the first round, and keeps the last verdict this node had.
//
// Observations: a node proposes, on the members assigned to it, its
// observations of every kind (health verdicts, and for pools whose check
// is of type load its smoothed loads) in one raftstore.Observations batch
// (report.go: health.OwnReports, then health.Pending against what the FSM
// holds of this node): a change or one never proposed as soon as the
// prober reports it, and unchanged ones again every VerdictRefresh when a
// newer probe confirms them (a quarter period early, so that one look at
// every member proposes the refreshes of the next quarter period). An
// observation carries the time of the probe that made it and counts for
// nothing once older than VerdictMaxAge (default three times the longest
// check interval, at least 30s; refresh default a third of it). A batch
// that finds no leader is proposed again a second later. The leader
// forgets the observations and admin states of members the current
// configuration no longer has, so that a member added back starts afresh.
//
// Dispatcher: a cluster node's dispatcher (dispatcher: section) forwards
// by the cluster's agreed health of its servers (dispatcher.Health,
// dispatcherHealth): its own probes' verdicts are reported like any
// member's, resolved with every other node's that runs a dispatcher for
// them (health.Member.Reporters: the nodes that report are the probers,
// a split resolves up), so both dispatchers of a pair build the same
// Maglev tables. Standalone, its own probes decide.
//
// Writes: `tern apply`, rollback, member admin states, observations, join and
// remove reach any node's API. An apply or a rollback names the version it
// was based on (api.Change: Base, Force, Comment); the FSM refuses it when
// that is no longer current (raftstore.ErrStale, 409 through apiError),
// and the proposing node records itself and the client's address as the
// version's Origin and the zones' stamps for their serials. The node applies them on the leader, or
// forwards the encoded command to the leader's API (POST /v1/raft/apply,
// write token), retrying while an election runs, and waits until its own
// FSM has applied the returned index before it answers, so the client
// gets the committed version and reads its own write. An apply is first
// validated by compiling it as this node would serve it; a configuration
// with problems changes nothing and the error lists file:line: message.
// A configuration is proposed by proposeBundle: the content the FSM lacks
// (raftstore.State.Upload), each piece its own command with its own
// deadline, forwarded like any other, then the version; a version the
// leader refuses for content it no longer holds (this node's view lagged)
// is uploaded whole once more.
//
// Compiling: a node keeps the zones of its last two compiles (zoneCache,
// compile.go) by zone file path and display name, origin and the content
// hash of every file each zone read ($INCLUDEs too), and takes a zone
// whose key and files' hashes match instead of parsing it, its POOL
// records resolved against the new pool list (zones.Zone.Repool: a copy
// when a pool's index moved, a parse only when a pool it names is gone);
// a replicated version's
// hashes come from its manifest, without reading the file. So a new
// version re-parses only the zone files that changed, on every node. A
// zone's stamp (its transfer fingerprint) is the hash of its files'
// content hashes and of the members of the pools it names
// (cachedZone.fingerprint): no record is hashed for it, so a pool edit or
// another zone's edit costs an unchanged zone nothing.
// What a zone with a problem returns is zones.Load's own word. A cluster
// node compiles its local file as the bundle `tern apply` would send
// (paths and names relative to its folder), so that the same files in a
// replicated version are found in the cache.
//
// SIGHUP in a cluster re-reads the local file and, once it validates,
// takes in its node settings and DNS protection settings (rrl, tsig,
// transfer); it never proposes the file. When the file's cluster-wide part
// (clusterDigest: the YAML decoded without node, rrl, tsig and transfer,
// and the zone files by content hash)
// differs from the cluster's current version, the node logs that it is not
// applied and Status.LocalFileDiffers says so. A version holds the whole
// file, node section included, so the same cluster-wide part applied from
// two nodes' files makes two versions.
//
// Failures: no failure to propose or take in a configuration stops a
// node. A rejected reload, a bootstrap proposal that fails, a replicated
// version that does not load or compile here: each is logged and kept as
// Status.LastConfigError until the next success, while the last good
// configuration keeps serving. The fatal cluster task errors are a join
// the cluster refuses (the node lost its data) and a log entry or
// snapshot from a newer Tern (raftstore.ErrNewerFormat: upgrade the node).
//
// Serials: a cluster node serves the serials the FSM recorded in the
// version (setVersion); proposals carry the zones' stamps (zoneCache.stamps;
// dnsserver.VersionSerials for a zone compiled without the cache). A standalone node derives them with the same
// rule against the last served ones it keeps in node.data/serials.json
// (written atomically); when that directory cannot be written, or the
// configuration is embedded (--dev), they live in memory and a restart
// serves the files' serials again.
//
// Status and readiness: /v1/status reports the Raft state, term, applied
// index, leader, whether the node is in quorum, the configuration version
// and hash it serves, how many members it serves up, whether its local
// file's cluster-wide part differs from the cluster's, and the last
// configuration error; /readyz is 503 while the node does not serve yet,
// is out of quorum (it still answers DNS from its last state then), or
// serves its local file instead of the cluster's version (one that never
// compiled here). A node that serves an older good version while a newer
// one failed stays ready: it answers as it did, and status says why it is
// behind. /v1/explain answers from the snapshot
// being served.
//
// API security: the API's token is --api-token (Options.APIToken) when
// given, else node.api_token or the trimmed content of
// node.api_token_file (read by config.Load); writes need it, and reads too
// with node.api_read_token (refused at start without a token), /metrics
// then too unless node.api_public_metrics. New refuses node.api beyond
// loopback without a token (api.ErrInsecure, at node.api's line) before
// it opens anything. Every inline secret (config.SecretPaths) is replaced
// by config.Redacted on its own line in every bundle a node proposes and
// in every command it accepts to forward (redactSecrets, redactCommand),
// and again in every version the API shows, so none is in the Raft log
// or an API answer; a secret that cannot be replaced in place fails the
// proposal. The DNS server's TSIG keys and the dispatcher's key always
// come from the local file. With node.tls the API serves HTTPS with the
// node certificate and asks clients for one: a certificate node.tls.ca
// signed admits joins and forwarded commands; this node's own API
// clients (join, the bootstrap check, forwarding to the leader) verify
// peers against node.tls.ca (by server_name when set, else by the host
// dialled) and present the node certificate.
//
// Exec checks: the prober runs them only when the local file's node
// section says node.allow_exec_checks (clusterConfig always puts the
// local node section in a replicated configuration); members it does not
// probe keep their initial state and say why (/v1/pools, /v1/status
// warnings, tern_probe_not_allowed).
//
// Lifecycle: Run is one internal/run.Group. It starts, in order, the
// Raft store (closed last), the prober (one first round before DNS
// serves; a new generation's prober replaces it in the same part), DNS,
// the API, the dispatcher, the query-rate sampler and the re-signer, and
// in a cluster the Raft, FSM watch, report, join and seed tasks; it stops
// them in reverse, and the first part to fail stops the rest.
//
// # Imports
//
// Tern packages: api, config, dispatcher, dnssec, dnsserver, geo, health,
// internal/run, probes, raftstore, selector, zones. node is the only
// package that knows all the servers; it reaches the dispatcher's rooms
// through dispatcher alone.
package node
