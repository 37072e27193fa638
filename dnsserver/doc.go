// Package dnsserver is Tern's authoritative DNS front end: UDP and TCP
// listeners, the query handler, EDNS0 and EDNS Client Subnet, DNS
// Cookies, TSIG, truncation, response rate limiting, zone transfers out,
// NOTIFY, metrics.
//
// The server answers from an immutable Snapshot (zones, compiled pools, the
// node's name) that the node swaps in with Store. A query loads the
// snapshot once through an atomic pointer, takes no lock, does no I/O and
// packs its response into buffers its worker owns; a panic while answering
// one query is recovered, logged and answered SERVFAIL.
//
// Store derives an index from each snapshot: counters per zone and per
// pool member, the served serials, each zone's transfer state. A snapshot
// with the same zones, given serials and pools' members as the stored one
// (a health change: only pool states differ) keeps that index; the answer
// counters are known by each pool's first member, which every WithStatus
// copy shares. Reindexed counts the Stores that built it afresh.
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
//     ignored, NSID (RFC 5001) answers the node name. Every answer to a
//     query with an OPT carries one, errors too (NOTIMP, REFUSED,
//     FORMERR, NOTAUTH; RFC 6891 6.1.1), but for a FORMERR about the OPT
//     record itself; an error's OPT carries no options.
//   - Additional-section processing (RFC 1035 3.3.9, 3.3.11, 4.3.2 step
//     6): an answer of NS, MX or SRV records carries the A and AAAA
//     records the server has for their targets, as Knot, NSD and BIND
//     do; zones precomputes them per RRset (see zones.Result.Additional),
//     so the query only copies. A target that is a POOL name is left
//     out: its answer depends on health and on the client, so the
//     resolver asks for it. Positive answers carry no NS in the authority
//     section (NSD and Knot add none by default either).
//   - Answers are written from the zones' wire rdata, copied. Names in
//     the rdata of the types RFC 1035 defines (NS, CNAME, MX, SOA, PTR,
//     MINFO, MB, MD, MF, MG, MR) are compressed, which RFC 3597 4
//     allows for those types only. Uncompressed would be legal too, but
//     every target would then cost its whole name, and so would each
//     address record owned by it, making referrals and NS and MX
//     answers larger than miekg/dns (or BIND, Knot, NSD) makes them.
//     SRV targets are written whole (RFC 2782) but later names may
//     point into them; other types' rdata is copied as it is. Names
//     compare without regard to case when compressed, so a name that
//     is the question's points into the question and keeps its case.
//   - Truncation drops whole RRsets. Required data (answer, authority, a
//     referral's in-domain glue, RFC 9471) that does not fit ends the
//     message and sets TC=1; optional data (additional addresses, sibling
//     glue) that does not fit is left out alone, never setting TC.
//   - ECS (RFC 7871) is parsed strictly; POOL answers echo the scope the
//     selector reports (capped at the source prefix), other answers scope 0.
//
// Sockets: every listen address gets Options.UDPSockets UDP sockets bound
// with SO_REUSEPORT (the kernel spreads clients over them) and one TCP
// listener on the same port. On Linux a UDP socket is blocking and
// outside Go's netpoller: one goroutine per socket, locked to its thread,
// takes whatever queries are queued (up to 16) per recvmmsg and sends
// their answers with one sendmmsg, the loop gdnsd runs. Its system calls
// are raw (the scheduler never hands its P off while it waits), so Run
// raises GOMAXPROCS by one per UDP socket while it serves and lowers it
// again when it returns. Elsewhere, and on Linux built with -tags
// portableudp, a UDP socket is a net.UDPConn read one query at a time
// through the netpoller. On an unspecified address, answers leave from
// the address the query was sent to (IP_PKTINFO, IPV6_PKTINFO; an IPv4
// query on a dual-stack socket gets an IPv4 source). TCP answers pipelined queries in order, closes a
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
// # TSIG
//
// Every request may be TSIG-signed (RFC 8945), over UDP and TCP,
// ordinary queries as well as transfers, with a key of Options.TSIGKeys
// (HMAC-SHA256, SHA-1, SHA-224, SHA-384, SHA-512; the key name in any
// case). The worker verifies it before anything else but parsing, in
// the order of RFC 8945 5.2: a TSIG record that is not the last one, or
// a MAC longer than the hash or shorter than 10 octets or half the
// hash, is FORMERR; an unknown key or algorithm gets NOTAUTH with TSIG
// error BADKEY, a wrong MAC BADSIG, a truncated MAC BADTRUNC (Tern takes
// full-length MACs only), each with an unsigned TSIG record (empty MAC);
// a time outside the fudge gets NOTAUTH with BADTIME, signed, the
// client's time in Time Signed and ours in Other Data (5.2.3). Every
// answer to a good signed request is signed, NOTIMP, REFUSED and
// truncated UDP answers included: the TSIG record's room is kept like
// the OPT's. Verification and signing write into the worker's buffers
// and reuse the last key's HMAC: unsigned queries allocate nothing, and
// signed ones do not either once a worker has used the key.
//
// # Zone transfers and NOTIFY
//
// AXFR and IXFR are served over TCP only (REFUSED over UDP), to clients
// an entry of Options.TransferAllow admits (address and/or TSIG key),
// REFUSED otherwise; NOTAUTH for a name that is not a zone apex served
// here (RFC 5936 2.2.1). The request's TSIG is verified as any query's
// (above); every message of a signed transfer is signed, each after the
// first with timers only.
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
// # DNS Cookies
//
// DNS Cookies (RFC 7873) with interoperable server cookies (RFC 9018):
// version 1, three reserved bytes, a 32-bit timestamp and the
// SipHash-2-4 of client cookie, version, reserved, timestamp and client
// address under Options.CookieSecret. A query with a client cookie alone
// gets a server cookie; a valid server cookie (made under the secret for
// that client cookie and address, no more than an hour old or five
// minutes ahead) is echoed, or renewed once older than half an hour
// (RFC 9018 4.3); an invalid or stale one is treated as none: a fresh
// server cookie, and the query answered as usual. A COOKIE option whose
// length is not 8 or 16 to 40 bytes, or a second one, gets FORMERR (RFC
// 7873 5.2.2). Tern never answers BADCOOKIE: RFC 7873 5.2.3 allows it
// for UDP queries without a valid server cookie, but BIND
// (require-server-cookie no) and Knot (its cookies module off) do not by
// default either, and a resolver that cannot keep cookies must still be
// answered; a cookie makes off-path spoofing of answers harder all the
// same. Making and checking a cookie allocates nothing.
//
// Any node of a cluster must accept a cookie another made, so all of
// them need the same secret. The node fills Options.CookieSecret (at New
// and, when it changes, through Reconfigure) with 16 bytes that every
// node derives alike from a secret each already holds and the cluster
// requires to be equal, such as the first 16 bytes of
// HMAC-SHA256(API token, "tern dns cookie secret"), so that the cookie
// secret itself never goes through the Raft log or the API. A zero
// secret makes New pick a random one of this server's own (a single
// node, tests) and Reconfigure keep the current one. Changing the secret
// is harmless: cookies are not enforced, and a client whose cookie no
// longer verifies gets a new one.
//
// # Metrics
//
// Collectors returns a prometheus.Collector that reads atomic counters
// at scrape time: tern_dns_queries_total{zone,qtype,rcode} (zone: a
// served origin or "none"; qtype: a fixed set or "other"),
// tern_dns_pool_answers_total{pool,member},
// tern_dns_response_seconds (handler time histogram, of one query in
// timeEvery per worker and every query the query log takes),
// tern_dns_rrl_responses_total{action}, tern_dns_transfers_total{result},
// tern_dns_notifies_total{result} and tern_dns_zone_serial{zone}. The
// query path only adds to atomics: still no allocation.
//
// Options from the configuration: OptionsFrom(cfg) reads node, rrl, tsig
// and transfer (not CookieSecret: see DNS Cookies). Reconfigure applies
// new RRL, TSIG, allow list, NOTIFY and cookie settings to a running
// server (listeners need a new one); a limiter whose settings did not
// change keeps its accounts.
//
// # Query log
//
// With Options.QueryLogSample above 0, a sample of the queries answered is
// logged, one info record each (querylog.go): the worker draws from its
// own random generator and sends a fixed-size copy of the query's fields
// on a bounded channel without blocking; Run's goroutine writes the
// records. A full channel drops the entry and counts it
// (tern_dns_query_log_dropped_total). Reconfigure turns it on and off.
//
// # Imports
//
// Tern packages: config, dnssec, selector, zones. Never raftstore: the
// serving snapshot is handed to it.
package dnsserver
