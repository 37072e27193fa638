// Package dnsserver is Tern's authoritative DNS front end: UDP and TCP
// listeners, the query handler, EDNS0 and EDNS Client Subnet, truncation,
// response rate limiting, zone transfers out with TSIG, NOTIFY, metrics.
//
// The server answers from an immutable Snapshot (zones, compiled pools, the
// node's name) that the node swaps in with Store. A query loads the
// snapshot once through an atomic pointer, takes no lock, does no I/O and
// packs its response into buffers its worker owns; a panic while answering
// one query is recovered, logged and answered SERVFAIL.
//
// Wire behaviour, in short:
//   - Only opcode QUERY (others: NOTIMP); QDCOUNT must be 1 and the message
//     well formed (else FORMERR); messages with QR=1 are dropped.
//   - Before the first Store every query gets SERVFAIL: a resolver then
//     tries another server instead of caching a refusal.
//   - Names outside the served zones and classes other than IN and CH get
//     REFUSED; RD is ignored and RA is never set (Tern never recurses).
//   - NOTIFY and UPDATE get NOTIMP: Tern is a primary only, and its zones
//     change through its configuration, never through DNS.
//   - Minimal ANY (RFC 8482 4.1), over UDP and TCP alike: one RRset of the
//     name, the one of the lowest type code; at a POOL name, the pool's A
//     answer (AAAA when it has no IPv4 member to give).
//   - CHAOS TXT id.server. and hostname.bind. answer the node name;
//     version.bind., version.server. and every other CHAOS name get
//     REFUSED (a version string helps attackers more than operators).
//   - EDNS0 (RFC 6891): the OPT RR is echoed with Options.UDPSize, DO is
//     copied, BADVERS answers versions above 0, unknown options are
//     ignored, NSID (RFC 5001) answers the node name.
//   - Truncation drops whole RRsets, additional first, then authority, then
//     answer, and sets TC=1.
//   - ECS (RFC 7871) is parsed strictly; POOL answers echo the scope the
//     selector reports (capped at the source prefix), other answers scope 0.
//
// Sockets: every listen address gets Options.UDPSockets UDP sockets bound
// with SO_REUSEPORT (the kernel spreads clients over them) and one TCP
// listener on the same port. A UDP socket is blocking and outside Go's
// netpoller: one goroutine per socket takes up to 16 queued queries per
// recvmmsg and sends their answers with one sendmmsg, the loop gdnsd runs.
// On an unspecified address, answers leave from the address the query was
// sent to (IP_PKTINFO). TCP answers pipelined queries in order, closes a
// connection idle for Options.TCPIdle and refuses connections beyond
// Options.TCPMaxConns.
//
// # Response rate limiting (RRL)
//
// Options.RRL limits UDP responses the way BIND and Knot do: an account
// per client network (a /24 or /56 by default), response kind (answer,
// NXDOMAIN, NODATA or referral, error) and name (the query name; for
// NXDOMAIN the zone, so that random names share one account; none for
// errors). An account holds one second's worth of responses, refills at
// ResponsesPerSecond and goes into debt down to Window's worth: a network
// that floods stays limited until its average over the window is under
// the rate, so a sustained flood gets fewer answers than rate × time.
// Every Slip-th limited response goes out empty with TC=1 (a real
// resolver retries over TCP, a spoofed victim gets no amplification); the
// rest are dropped. TCP is never limited; Exempt networks neither.
// Accounts live in a fixed table (TableSize) updated by compare-and-swap:
// no lock, no allocation, memory bounded; a new account evicts the
// longest idle of four slots.
//
// # Zone transfers, TSIG and NOTIFY
//
// AXFR and IXFR are served over TCP only (REFUSED over UDP), to clients
// an entry of Options.TransferAllow admits (address and/or TSIG key),
// REFUSED otherwise; NOTAUTH for a name that is not a zone apex served
// here (RFC 5936 2.2.1). A TSIG-signed request (RFC 8945) is verified
// first: an unknown key or algorithm gets NOTAUTH with TSIG error BADKEY,
// a wrong MAC BADSIG (both unsigned), a time outside the fudge BADTIME
// (signed); every answer to a good signed request is signed, each
// message of a transfer after the first with timers only.
//
// A transfer carries the zone in canonical order between two copies of
// its SOA, in messages of at most 64 KiB. A POOL name transfers as the
// static view of its pool: the A and AAAA records of every address
// member, up or down (a secondary cannot probe), with the POOL record's
// TTL; a pool of host-name members only, as a CNAME to its first member
// when nothing else is at the name. The private POOL type never leaves.
// IXFR gets the SOA alone when the client's serial is ours (or newer),
// else the whole zone, as RFC 1995 4 allows: Tern keeps no history.
//
// # SOA serials
//
// Secondaries notice change by the serial, so Store derives the serial
// each zone is served with (in SOA answers, negative answers and
// transfers): Snapshot.Serials[origin] when the node gives one; else
// the file's serial at the first Store; the previous one while the
// transferred content (POOL names expanded, health ignored) is unchanged;
// the file's serial when it is newer (RFC 1982) than the previous one;
// else the previous one + 1. Limits of the derived serial: it lives in
// memory, so after a restart a node serves the file's serial again, which
// can be older than what a secondary holds (raise the file's serial past
// it); and nodes of a cluster that saw different sequences of versions
// may derive different serials for the same content. A node should
// therefore fill Snapshot.Serials from state that outlives it (the
// replicated configuration version in a cluster, the data directory
// standalone): VersionSerials gives each zone's file serial and a
// fingerprint of its transferred content, from which the node derives
// serials that never go backwards, the same on every node.
//
// On every serial change (and at the first Store) a NOTIFY (RFC 1996)
// goes to each Options.Notify target over UDP, TSIG-signed when the
// target names a key, retried with doubling waits (2s, 4s...) up to 5
// tries until the secondary answers; a newer serial stops the retries
// of an older one. Run owns the sending goroutines.
//
// # Metrics
//
// Collectors returns a prometheus.Collector that reads atomic counters
// at scrape time: tern_dns_queries_total{zone,qtype,rcode} (zone: a
// served origin or "none"; qtype: a fixed set or "other"),
// tern_dns_pool_answers_total{pool,member},
// tern_dns_response_seconds (handler time histogram),
// tern_dns_rrl_responses_total{action}, tern_dns_transfers_total{result},
// tern_dns_notifies_total{result} and tern_dns_zone_serial{zone}. The
// query path only adds to atomics: still no allocation.
//
// Options from the configuration: OptionsFrom(cfg) reads node, rrl, tsig
// and transfer. Reconfigure applies new RRL, TSIG, allow list and NOTIFY
// settings to a running server (listeners need a new one); a limiter
// whose settings did not change keeps its accounts.
//
// dnsserver imports config, zones, selector and geo; never raftstore.
package dnsserver
