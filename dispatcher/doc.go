// Package dispatcher is Tern's in-site packet dispatcher: an XDP load
// balancer with direct server return, its Go loader, the control plane
// that keeps it in step with the configuration and health checks, and the
// high availability that moves its VIPs between dispatchers. `tern
// dispatch --config FILE` runs one (Command, Run, Instance); so does `tern
// serve` when the configuration has a dispatcher: section, reading Load to
// weigh the site as a DNS pool member.
//
// The model is the in-site Dispatcher of IBM's Edge Load Balancer (primary
// and backup exchanging heartbeats, mutual HA, a backup collocated on a
// server), rebuilt the way Katran and Cilium balance: stateless Maglev
// hashing in XDP, so that any dispatcher of a site sends a flow to the
// same server without sharing per-flow state.
//
// # Datapath
//
// bpf/lb.c is an XDP program attached to the interface VIP traffic arrives
// on. For an IPv4 or IPv6 TCP or UDP packet to a configured VIP:port it
// hashes the 5-tuple (lookup3 jhash, fixed seed, so a pair of dispatchers
// agree), picks a backend id from the service's Maglev table, and either
// rewrites the destination MAC to the backend's (mode mac; the backend
// shares the L2 segment and holds the VIP on lo with arp_ignore=1,
// arp_announce=2) or prepends an outer IPv4 header to the backend (mode
// ipip: protocol 4 for IPv4, 41 for IPv6 inside; outer source per service
// or global; TOS and DF copied from an inner IPv4 packet, DF always for
// IPv6; TTL 64; next hop MAC per backend or global), and transmits it with
// XDP_TX. Replies go from the backend straight to the client. ipip needs
// an IPv4 backend address; mac mode needs only the backend's MAC.
//
// ICMP fragmentation-needed (and ICMPv6 Packet Too Big) messages sent to a
// VIP about a packet from VIP:port (a backend's reply that met a small MTU)
// are forwarded to the backend of that flow: the embedded header is hashed
// reversed, which is the forward flow's hash, so path MTU discovery works.
//
// Everything else is XDP_PASS, untouched. Malformed or truncated packets
// (bad version, IHL below 5, total length beyond the frame or below the
// headers the program reads) are passed: the kernel validates and drops
// them; the program never transmits a packet it has not fully parsed. IP
// options are skipped over (IHL > 5 is balanced like any packet); IPv6
// packets with extension headers are passed. IP fragments are passed to
// the kernel, as non-first fragments carry no ports and could not follow
// their flow; first fragments to a service are counted
// (Counters.Fragments). A service with an empty table, or whose
// table names an unset backend, drops (Counters.NoBackend). A backend that
// is the dispatcher's own host (Backend.Local, or its MAC is the
// interface's) gets its packets by XDP_PASS.
//
// Per-CPU counters count packets and bytes per service and per backend,
// and per TCP service the client's segments that open or close a flow
// (SYN without ACK, FIN, RST with ACK, RST without ACK); Datapath.Counters
// sums them.
//
// Table swap: each service owns two slots of an array of maps. A change
// builds the new table as a fresh inner map, fills it, freezes it (no
// writes can reach a live table), stores it in the service's unused slot,
// then replaces the service entry (mode, tunnel source, table slot, table
// size) in one map update. The program reads the entry once per packet,
// so it sees the whole old state or the whole new one. The old table stays
// in its slot until the service's next change.
//
// Pinning and restart: the program's link and maps are pinned in
// /sys/fs/bpf/tern/<instance> (bpffs is mounted at /sys/fs/bpf if it is
// not; --bpffs and --instance choose another place and name). A flock on
// the directory lets one process at a time hold an instance; a new one
// waits up to 5s for the old to let go. Close (what `tern dispatch` does
// on SIGTERM) leaves the program attached and forwarding; the next
// OpenDatapath of the instance reuses the maps with their contents and
// swaps its program into the pinned link in one step, so a restart of
// `tern dispatch` forgets no flow and drops no packet: the tables are
// hashes, not connection state, and the pinned ones keep forwarding while
// the new process starts. Detach (--detach) removes everything. Maps whose
// sizes changed (max services or backends) cannot be reused: remove the
// directory or detach first. A map a newer version adds is created beside
// the pinned ones.
//
// XDP mode: generic (default) works on any interface and is the cheaper
// one on veth; native needs driver support, and on veth XDP_TX drops
// frames unless the peer veth also has an XDP program. Generic XDP copies
// every packet that is cloned or has less than 256 bytes of headroom (all
// that come from veth) into a fresh buffer first, a cost native XDP on a
// real NIC does not have. It sees GRO-merged packets as one; in ipip mode keep GRO off on the dispatcher's
// interface (ethtool -K IF gro off) so no merged packet gets encapsulated.
//
// Requirements: Linux 5.10 or later (bpf_link for XDP, inner maps of
// differing sizes, batch map updates), run as root.
// VLAN-tagged frames are passed: attach to the VLAN interface instead.
//
// # Control plane
//
// The configuration's dispatcher: section becomes a Spec (services, their
// servers, weights and checks; SpecFromConfig). Control holds the Spec,
// the servers' health verdicts (SetHealth, fed by package probes through
// one synthetic pool per check, with the same check definitions as DNS
// pools) and which VIPs this dispatcher forwards (SetOwned, fed by the HA
// agent), and reconciles the datapath to them through the Maps interface
// on every change (Run; failures are retried every second):
//
//   - A server down or drained (weight 0) gets weight 0 in the tables.
//     A server is up until its first verdict says otherwise, so a restart
//     does not drain servers while the first probes run.
//   - Each service's Maglev table (package dispatcher/maglev, default
//     size 65537, weighted) is keyed by server address, so every
//     dispatcher computes the same one and a flow keeps its server across
//     a takeover; a change of one server moves only its share of flows.
//     The table is built aside and swapped in whole (see Table swap).
//   - Backends are written before the tables that name them and deleted
//     after no table names them. Backend ids are numbered from the sorted
//     configuration at start, so a restarted dispatcher rewrites the very
//     tables its pinned maps hold.
//   - Until HA has decided, services a previous run left forwarding stay;
//     a VIP is added to the interface only after its services forward,
//     or the host's own stack would answer (and reset) the first
//     connections. Services the configuration no longer has are removed
//     at the first reconcile.
//
// Load reports per VIP the packets and bytes forwarded and their rates,
// the servers listed and serving, whether this dispatcher forwards the
// VIP, and its TCP flows: new ones, their rate, and an estimate of the
// active ones. `tern dispatch` logs it every --stats-interval ("dispatch:
// load" lines).
//
// # Active flows
//
// The dispatcher keeps no per-flow state, and with direct server return it
// sees only the client's direction of each flow: never a SYN-ACK, nor the
// server's FIN or RST. Active flows are therefore estimated per TCP
// service from the client's segments the datapath counted, at each sample
// (every 5s, or --stats-interval if shorter):
//
//	active += SYNs without ACK − (FINs + RSTs with ACK)
//	active  = clamp(active, 0, SYNs seen in the last --flow-lifetime)
//
// A client sends one FIN per flow it closes, or one RST with ACK when its
// application aborts the flow. A RST without ACK is the client's stack
// answering a segment of a flow it no longer has (data the server sent
// after the client's FIN or abort), so it mostly repeats a close already
// counted and is left out. The deltas are clamped at each step rather than
// taking opened − closed over all time, so an error does not live forever:
// surplus closes (retransmitted FINs, a FIN then an abort) are forgotten
// once the estimate reaches 0, and flows whose close the dispatcher never
// sees (reset by the server, a client that vanished, a flow another
// dispatcher took over) age out of the upper bound once they are older
// than the flow lifetime (default 15 minutes, the established-connection
// timeout of Linux IPVS and the stale timeout of IBM's Network
// Dispatcher). The cost of the bound is that a flow living longer than
// the lifetime stops being counted: set --flow-lifetime to the longest
// flows the site serves if their count matters more than forgetting lost
// ones. Retransmitted SYNs (a SYN flood, an overloaded server) raise the
// estimate, up to the bound. After a takeover, the flows the peer opened
// are not counted here (their closes only meet the clamp at 0). At a
// restart over pinned maps, the first
// sample takes opened − closed of the counters as they stand (the service's
// whole history) and lets it age out like flows opened then. UDP services
// report packets only. The clamps bound the error but do not remove a
// steady bias: if closes are over-counted by a few percent (many aborts
// after FIN), the estimate sinks towards 0; if closes go unseen (servers
// resetting idle flows), it rises towards the bound. It is for weighing
// sites against each other, not for accounting.
//
// # High availability
//
// With a dispatcher.ha: section, package dispatcher/ha shares the VIPs
// with peer dispatchers. Heartbeats go over UDP every 200ms by default
// (interval), authenticated with HMAC-SHA256 under a shared key (key or
// key_file, 16 bytes at least) and numbered against replay. VIPs are in
// groups (those no group names form group "default"); each dispatcher
// has a priority per group and the highest alive holds it. After
// dead_after missed heartbeats (3) a backup takes the group: Control
// forwards its services, then the VIPs are added to the interface and
// announced by gratuitous ARP, which clients replace their neighbour entry
// on at once. The old holder gives the group up when it sees a peer of
// higher rank; with preempt a dispatcher of higher priority takes its
// groups back. Mutual HA is two groups with opposite priorities, each
// dispatcher primary for one and backup for the other. Reach targets
// (reach:, e.g. the gateway) that stop answering make a dispatcher give up
// every group. On SIGTERM a dispatcher resigns: it removes its VIPs and
// tells its peers, which take over at once. Heartbeats carry a digest of
// the Spec (Spec.Digest): a peer whose tables would differ is logged, as
// its flows would change servers on takeover.
//
// A backup may be collocated on one of the servers (the low-cost layout):
// while backup it serves as a plain server, holding the VIP on lo; once it
// takes over, its own share of flows is passed to its local stack
// (Backend.Local, or a backend MAC equal to the interface's) and the rest
// forwarded.
//
// # Operations
//
//   - Clocks: a heartbeat whose time is more than 5s from the receiver's
//     clock is refused as stale (replay protection across restarts), so
//     run NTP (or chrony, systemd-timesyncd) on every dispatcher of a
//     site.
//   - Servers hold each VIP on lo with arp_ignore=1 and arp_announce=2 on
//     the interfaces facing the dispatcher, so that only the dispatcher
//     answers ARP for it.
//   - ipip mode: keep GRO off on the dispatcher's interface (ethtool -K IF
//     gro off) so no merged packet gets encapsulated, and mind the 20
//     bytes of the outer header: raise the path MTU or clamp the MSS the
//     servers advertise (advmss, see Decapsulation). Servers without the
//     ipip module run `tern decap`.
//   - bpffs must be mountable (it is mounted if absent); the process needs
//     root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN for the mount).
//   - On veth, native XDP needs an XDP program on the peer too, and TX
//     checksum offload on the traffic source leaves TCP checksums partial
//     (a real NIC fills them in).
//   - The datapath and decapsulator need Linux; elsewhere they return
//     ErrUnsupported, while the control plane and its tests still build.
//
// # Decapsulation
//
// bpf/decap.c, attached by AttachDecap or `tern decap --iface IF --vip
// VIP`, strips the outer header of IPv4-in-IPv4 and IPv6-in-IPv4 packets
// whose inner destination is a configured VIP and passes the inner packet up the stack: ipip mode for
// servers whose kernel has no ipip module. The encapsulation costs 20
// bytes: either raise the MTU of the path from dispatcher to servers by 20,
// or clamp the MSS the servers advertise on routes back to clients, e.g.
// `ip route change default via GW advmss 1440` (1500 - 20 - 40), so that
// clients never send full-sized segments that no longer fit once wrapped.
//
// # Imports
//
// The datapath files (datapath*.go, decap*.go) import only the standard
// library, cilium/ebpf, x/sys and urfave/cli (for `tern decap`). The
// control plane and Instance import config, probes and the subpackages
// maglev and ha (which import no other Tern package). Only node and
// cmd/tern import dispatcher.
package dispatcher
