// Package datapath is the dispatcher's packet path: the XDP programs (C
// in bpf/, compiled by bpf2go; the objects and their Go bindings are
// committed, so building Tern needs no clang: `make generate` rebuilds
// them), and the loader that attaches, pins and fills them (Open, LB,
// AttachDecap). It knows nothing of configurations, health or HA: the
// control plane (package dispatcher/control) writes desired state into it
// through LB's methods.
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
// (SYN without ACK, FIN, RST with ACK, RST without ACK); LB.Counters
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
// Open of the instance reuses the maps with their contents and
// swaps its program into the pinned link in one step, so a restart of
// `tern dispatch` forgets no flow and drops no packet: the tables are
// hashes, not connection state, and the pinned ones keep forwarding while
// the new process starts. Detach (--detach) removes everything. Maps whose
// sizes changed (max services or backends) cannot be reused: remove the
// directory or detach first. A map a newer version adds is created beside
// the pinned ones.
//
// The instance's identity includes its network namespace: a pinned map
// (tern_owner) beside the link holds the namespace (net:[inode]) the
// program is attached in. Interface indexes repeat across namespaces, so
// a dispatcher of another namespace finding the instance's link still
// attached is refused (ErrOtherNetns) instead of taking it over (which
// would leave its own interface with no program and the first one's
// maps rewritten): give each namespace its own --instance or bpffs.
//
// The pins need the host's bpffs (or any that outlives the process).
// Under `ip netns exec`, which gives the process a private mount namespace
// with a fresh /sys, the bpffs Open would mount at /sys/fs/bpf vanishes
// when the process exits, and the program with it: on SIGTERM it
// detaches, on kill -9 the VIP stays on an interface with no program.
// Open detects that it had to mount bpffs in a mount namespace other than
// its parent's and refuses (ErrPrivateBPFFS) unless Config.Ephemeral
// (`tern dispatch --ephemeral`, which warns); enter a namespace with
// `nsenter --net=/run/netns/NAME`, which keeps the host's mounts.
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
// differing sizes, batch map updates), run as root. Elsewhere Open and
// AttachDecap return ErrUnsupported, while the types build everywhere.
// VLAN-tagged frames are passed: attach to the VLAN interface instead.
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
// Tern packages: none. The standard library, cilium/ebpf and x/sys only.
package datapath
