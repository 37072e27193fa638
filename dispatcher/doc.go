// Package dispatcher is Tern's in-site packet dispatcher: an XDP load
// balancer with direct server return, its Go loader, the control plane
// that keeps it in step with the configuration and health checks, and the
// high availability that moves its VIPs between dispatchers. `tern
// dispatch --config FILE` runs one (Run, Instance); so does `tern serve`
// when the configuration has a dispatcher: section, reading Load to weigh
// the site as a DNS pool member.
//
// It is in three rooms, as Katran and Cilium keep them: package
// dispatcher/datapath holds the BPF programs, their bindings and the
// loader; package dispatcher/control the spec, Maglev tables and map
// reconciliation; package dispatcher/ha the heartbeats and VIP takeover.
// This package composes them into an Instance: the datapath, its control
// plane, the servers' health checks (probes.NewTargets, keyed under
// CheckPoolPrefix) and the HA agent, run as one run.Group: started in
// that order, stopped in reverse (HA gives its VIPs away while the
// datapath still forwards), and the first part that fails stops the
// rest. The commands (`tern dispatch`, `tern decap`) are cmd/tern's.
//
// The model is the in-site Dispatcher of IBM's Edge Load Balancer (primary
// and backup exchanging heartbeats, mutual HA, a backup collocated on a
// server), rebuilt the way Katran and Cilium balance: stateless Maglev
// hashing in XDP, so that any dispatcher of a site sends a flow to the
// same server without sharing per-flow state.
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
// What HA needs from the network: the router (or the clients, on the
// same segment) must resolve the VIP on the link, by ARP, so that the
// gratuitous ARP of the new holder moves its neighbour entry at once. A
// router that routes the VIP via one dispatcher's own address (a static
// route, or a next hop learnt any other way) keeps sending to that
// dispatcher after a takeover, and HA cannot move the traffic. Both
// dispatchers must be on that segment, with the VIP's subnet (or a /32
// route to the link) on the router's interface facing them.
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
//   - IPv6: the dispatcher adds an IPv6 VIP without duplicate address
//     detection and deprecated (preferred lifetime 0), so it answers
//     neighbour solicitations at once but never becomes the source of the
//     dispatcher's own health checks (by longest match it would, and the
//     servers, holding it on lo, would answer themselves); a takeover
//     sends an unsolicited neighbour advertisement. Servers hold the VIP
//     on lo (IPv6 answers no solicitation for another interface's
//     address) and need a usable link-local address on the interface
//     facing the clients: replying from the VIP they solicit the client
//     from it, and send nothing while it is tentative (just after the
//     link came up, with DAD on).
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
// # Imports
//
// Tern packages: config, dispatcher/control, dispatcher/datapath,
// dispatcher/ha, internal/run, probes. The control plane reaches
// dispatcher/maglev; only node and cmd/tern import dispatcher.
package dispatcher
