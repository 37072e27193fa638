// Package raftstore is Tern's replicated state machine: the commands every
// node applies in the same order, the state they build, snapshots of it,
// and the Store that runs it on github.com/hashicorp/raft with its log in
// bbolt (raft-boltdb/v2). What the state means for a member's health is
// package health's to decide.
//
// # State
//
// The FSM holds, per cluster:
//   - the desired configuration as a Manifest (the YAML file and the zone
//     files it names, path -> SHA-256 of the content), versioned: each
//     accepted manifest gets the next version number and its hash, with
//     when (the proposer's clock), its Origin (bootstrap, apply or
//     rollback; the proposing node; the API client's address) and the
//     operator's comment; the last few versions are kept (10 unless the
//     command says otherwise) so that a rollback can re-apply one as a
//     new version;
//   - the content of those files, each once however many versions name it,
//     as files made of chunks named by their SHA-256 (see Content below);
//   - per zone, the serial each version serves (see Serials) and the last
//     one served, so that a zone that leaves and comes back does not start
//     lower;
//   - member admin states, (pool, member) -> up|down|drain (auto is the
//     default and is not stored);
//   - each node's latest observation of each kind of each member (kind
//     health: its verdict, 1 up or 0 down; kind load: the smoothed load a
//     load check read; the set is open to kinds to come), with the time
//     of the probe that made it (the proposer's clock, carried in the
//     command), held as health.Observation in a persistent trie (one
//     batch copies the paths it touches, whatever the state holds);
//   - the node registry, node ID -> Raft and API addresses, so that any node
//     can find the leader's API to forward a write.
//
// Readers get a *State through an atomic pointer: it never changes after it
// is published (Apply builds a new one, copying only the maps it touches),
// so a reader takes no lock and a node compiles its serving snapshot from
// one consistent view. FSM.Watch hands out the current view and a channel
// closed at the next apply, so a node recompiles only when the state moved;
// FSM.ChangedSince names the members whose observations or admin state
// changed since the view it read last, so that it recomputes those alone.
//
// # Commands
//
// A command is one JSON envelope, decoded strictly (unknown fields, trailing
// data, a wrong version or type are errors):
//
//	{"v":3,"type":"observations","body":{"node":"n1","reports":[...]}}
//
// The types are config.apply, config.rollback, blob.put, admin.set,
// observations, node.register, node.forget and member.forget (see the
// Body types in command.go and blobs.go). A command that does not decode or does not validate
// is rejected whole: Apply returns an error value and the state is the one
// before it. Apply never reads a clock, never draws a random number and
// never lets map order reach the state.
//
// A configuration change (config.apply, config.rollback) carries Base, the
// version its proposer based it on (0: none yet). The FSM refuses it with
// ErrStale when Base is not the current version, unless Force: the check
// runs where the order is decided, so it is free of races, and a stale
// file can never silently replace a newer version. A change whose bundle
// is the current version's changes nothing whatever its base (a retried
// proposal that already went in is not refused).
//
// Envelope versions 1 (written before changes carried a base) and 2
// (before file content was stored apart) are still read, so that an old
// log replays to the state an old snapshot restores to (testdata/v1,
// testdata/v2): their config.apply and config.rollback bodies become the
// current types with their old meaning (if_version as Base; none as
// Force; the inline bundle as content the version carries, one chunk a
// file). Other command types are the same in every version. A node of
// this version writes version 3, which older nodes refuse: upgrade every
// node before the first change.
//
// # Content
//
// A config.apply names its files by hash; every one must be held whole
// (ErrMissingBlob otherwise). Content arrives by blob.put (PutBlobs:
// chunks, each checked against its hash, then files, each its size, hash
// and chunk list, checked against the chunks held) or inside the
// config.apply itself (its Blobs). State.Upload plans a change on top of
// a state: the files it lacks, cut by a content-defined chunker (a gear
// hash, FastCDC's, about 320 KiB a chunk, 64 KiB to 1 MiB) so that an
// edit changes the chunks near it only, in commands of about 1 MiB of
// chunks, the last batch and the main file inside the version. A file is
// kept while a kept version names it, a chunk while a held file names it,
// and anything uploaded for UploadLifetime (10,000) log entries after the
// last command that carried it, so that an upload in progress survives
// and an abandoned one does not. The FSM sweeps what falls out as it
// applies the first command at or after that index (any command, refused
// ones too), so every node drops the same content at the same entry.
// Limits: MaxConfigSize (1 GiB) of files in one version, MaxFileSize
// (1 GiB) in one file, MaxStoredBytes (2 GiB) held in all, MaxPutBytes
// (8 MiB) of chunks in one command.
//
// health.verdicts and load.report, the commands of verdicts and load
// reports before every kind of observation was one, are still read, in
// either envelope version, as Observations of kind health and load (the
// capacity a load report carried is dropped: nothing read it), so that an
// old log replays to the same observations (testdata/reports). Every
// kind merges by one rule (health.Supersedes): an older or identical
// observation changes nothing, and of two at the same time the greater
// value is kept, whatever order they arrive in (the old rule kept the
// later one in the log).
//
// # Serials
//
// A configuration change carries, per zone, a ZoneStamp: the zone file's
// serial and a fingerprint of the content it serves, which the proposer
// computes from the bundle (any node would compute the same; a rollback
// without stamps takes those the version recorded). The FSM derives each
// zone's served serial from the stamps and the last served serial
// (NextSerials: kept while the stamp is unchanged, else the file's serial
// when newer in RFC 1982 arithmetic, else the last + 1) as it makes the
// version, and records it in the version, so every node serves the same
// serial for the same version and none ever goes backwards, rollbacks
// included. A version made before serials were kept has none: nodes serve
// the file's serial plus the version number, as they did, and the first
// version after it starts from that. raftstore reads stamps as numbers and
// hashes only; what a zone is stays the node's business.
//
// # Snapshots
//
// FSM.Snapshot captures the current *State (a pointer copy: chunks are
// never written once held); Persist streams it as JSON lines in sorted
// order, each chunk's bytes raw after its line, ending with the state's
// SHA-256, while Apply goes on (format 3, see snapshot.go). Restore
// decodes a whole new state, checks that hash and every chunk's, and only
// then swaps it in: a corrupt snapshot is an error and leaves the state as
// it was. Older formats still restore, their hash checked over the lines
// as written: format 1 (versions with their files inline, verdict and
// load records) and both format 2s, each written by one line of
// development with one of format 3's changes (files by hash and chunks,
// or obs records), told apart by the kinds of record they hold.
//
// # Store
//
// Open starts a node from its data directory (node-id, raft.db,
// snapshots/) on a TCP transport (mutual TLS with Options.TLS). It bootstraps a new cluster only when
// Options.Bootstrap is set and the directory is empty; another node's
// directory, a corrupt or lost raft.db or a lost node-id is an error, never
// a silent new cluster. Reads are local (Store.State). Writes go through
// Store.Apply on the leader; elsewhere Apply returns a *NotLeaderError
// (errors.Is ErrNotLeader) carrying the leader's API address from the node
// registry, and the caller forwards the encoded command there
// (Store.ApplyEncoded), then waits with WaitApplied for the returned index
// to reach its own FSM. Join, Remove, Members and Status serve the cluster
// commands; Run keeps the leader's own registry entry current.
//
// # Raft over TLS
//
// With Options.TLS (node.tls: cert, key, ca, optional server_name) the
// transport is hashicorp/raft's NetworkTransport on a StreamLayer of our
// own (tls.go) instead of NewTCPTransport: TLS 1.3 only, no session
// resumption, and both ends present their certificate and verify the
// other's against the CA. The dialling node also checks the peer's name:
// the host of the Raft address it dials (nodes are usually addressed by
// IP, so a node's certificate carries the IP SAN of its advertised Raft
// address), or server_name when set (every node's certificate carries that
// one DNS name; any certificate from the CA can then stand for any node).
// The accepting node checks the chain only. A node's certificate therefore
// needs both serverAuth and clientAuth (or no extended key usage).
//
// In TLS 1.3 a client's handshake ends before the server has judged the
// client's certificate, so the accepting side writes one byte (0x01) once
// it has, and Dial waits for it: a refused node learns so while dialling,
// with the peer's alert as the reason. The accepting side runs the
// handshake in the connection's own goroutine and logs a refusal (no
// certificate, another CA, expired, plain TCP) with the peer's address.
//
// Join dials the new node over TLS before AddVoter: a node whose
// certificate does not verify (or that does not accept ours) is refused
// with ErrPeerTLS and never enters the configuration, where it would count
// against the quorum it cannot join.
//
// The files are read again when a connection is made, at most once a
// second, and a changed set is used for new connections; connections
// already up keep the identity they were made with (Raft pools them, so
// a removed CA takes full effect after a restart or once they break). A
// set that does not load (a certificate written before its key, an
// expired one) is logged and the previous one kept. Open refuses to start
// with files that do not load, naming the file at fault.
//
// Without Options.TLS the transport is raft.NewTCPTransport, as before.
//
// # Imports
//
// Tern packages: config (for Bundle helpers), health (the observation
// type and its merge rule), internal/mix (the hash of its observation
// trie). It knows nothing of DNS wire
// format, zones, selectors or probes; forwarding a write to the leader is
// node's.
package raftstore
