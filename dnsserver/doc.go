// Package dnsserver is Tern's authoritative DNS front end: UDP and TCP
// listeners, the query handler, EDNS0 and EDNS Client Subnet, truncation.
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
//   - Names outside the served zones, classes other than IN and CH, and
//     zone transfers get REFUSED; RD is ignored and RA is never set (Tern
//     never recurses).
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
// dnsserver imports config, zones, selector and geo; never raftstore.
package dnsserver
