package datapath

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Proto is an IP protocol number a service listens on.
type Proto uint8

// The protocols the datapath balances.
const (
	ProtoTCP Proto = 6
	ProtoUDP Proto = 17
)

// ParseProto reads "tcp" or "udp".
func ParseProto(s string) (Proto, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return ProtoTCP, nil
	case "udp":
		return ProtoUDP, nil
	}
	return 0, fmt.Errorf("protocol %q: want tcp or udp", s)
}

func (p Proto) String() string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

// Mode is how a packet reaches the chosen server.
type Mode uint8

// Forwarding modes.
const (
	// ModeMAC rewrites the frame's destination MAC to the server's and sends
	// it back out of the interface it came in on: the server shares the
	// dispatcher's L2 segment and holds the VIP on a loopback interface.
	ModeMAC Mode = 1
	// ModeIPIP prepends an outer IPv4 header addressed to the server (IP
	// protocol 4) and sends it to the next hop: the server may be routed
	// away, and decapsulates (kernel ipip or `tern decap`).
	ModeIPIP Mode = 2
)

// ParseMode reads "mac" or "ipip".
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(s) {
	case "mac":
		return ModeMAC, nil
	case "ipip":
		return ModeIPIP, nil
	}
	return 0, fmt.Errorf("forwarding mode %q: want mac or ipip", s)
}

func (m Mode) String() string {
	switch m {
	case ModeMAC:
		return "mac"
	case ModeIPIP:
		return "ipip"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// ServiceKey names a virtual service: packets to VIP:Port with protocol
// Proto are balanced, everything else passes to the kernel.
type ServiceKey struct {
	VIP   netip.Addr
	Port  uint16
	Proto Proto
}

// Compare orders keys by VIP, then port, then protocol.
func (k ServiceKey) Compare(o ServiceKey) int {
	return cmp.Or(k.VIP.Compare(o.VIP), cmp.Compare(k.Port, o.Port), cmp.Compare(k.Proto, o.Proto))
}

func (k ServiceKey) String() string {
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(k.VIP, k.Port), k.Proto)
}

// Service is how a virtual service forwards.
type Service struct {
	Mode Mode
	// TunnelSrc is the outer source address of IPIP packets of this
	// service; the zero Addr means Config.TunnelSrc.
	TunnelSrc netip.Addr
}

// Backend is a real server, named in Maglev tables by its id (an index
// below Config.MaxBackends chosen by the caller).
type Backend struct {
	// IP is the server's address: the outer destination in ipip mode.
	IP netip.Addr
	// MAC is the server's MAC in mac mode. In ipip mode it is the MAC of
	// the next hop towards IP; nil means Config.NextHopMAC.
	MAC net.HardwareAddr
	// Local means the dispatcher's own host is this server: its packets
	// are passed to the local stack (XDP_PASS) instead of being sent out.
	// A backend whose MAC is the interface's own is treated the same way.
	Local bool
}

// Counter is a packet and byte count, summed over all CPUs. Bytes count
// whole frames as received, before any encapsulation.
type Counter struct {
	Packets uint64
	Bytes   uint64
}

// TCPCounter counts a TCP service's forwarded segments that open or close
// a flow, summed over all CPUs. With direct server return the dispatcher
// sees only the client's side of each flow: these are the client's
// segments (a SYN-ACK never passes, nor the server's FIN or RST).
type TCPCounter struct {
	// Opened counts SYN without ACK: a new flow, or the client
	// retransmitting its SYN.
	Opened uint64
	// Fin counts segments with FIN: the client's orderly close (once per
	// flow but for retransmissions).
	Fin uint64
	// Reset counts RST with ACK: the client's stack aborting a flow it
	// has (an application's abortive close).
	Reset uint64
	// StrayReset counts RST without ACK: the client's answer to a segment
	// of a flow it no longer has, typically data the server sent after
	// the client's FIN or RST, so mostly a flow already counted closed.
	StrayReset uint64
}

// Counters is a reading of the datapath's counters.
type Counters struct {
	// Services counts packets forwarded per service (ICMP included).
	Services map[ServiceKey]Counter
	// TCP counts, per TCP service, the segments forwarded that open or
	// close flows.
	TCP map[ServiceKey]TCPCounter
	// Backends counts packets forwarded per backend id.
	Backends map[uint32]Counter
	// Fragments counts IP fragments to a VIP, passed to the kernel.
	Fragments uint64
	// NoBackend counts packets to a service whose table is empty or names
	// a backend that is not set; they are dropped.
	NoBackend uint64
	// ICMPTooBig counts ICMP fragmentation-needed messages forwarded.
	ICMPTooBig uint64
}

// XDPMode is how the program attaches to the interface.
type XDPMode uint8

const (
	// XDPGeneric runs the program in the kernel's generic (skb) path: works on
	// every interface, and on veth it is the cheaper one.
	XDPGeneric XDPMode = iota
	// XDPNative runs it in the driver. On veth, XDP_TX out of a veth drops
	// frames unless its peer also has an XDP program.
	XDPNative
)

// ParseXDPMode reads "generic" or "native" ("" means generic).
func ParseXDPMode(s string) (XDPMode, error) {
	switch strings.ToLower(s) {
	case "", "generic", "skb":
		return XDPGeneric, nil
	case "native", "driver":
		return XDPNative, nil
	}
	return 0, fmt.Errorf("xdp mode %q: want generic or native", s)
}

func (m XDPMode) String() string {
	if m == XDPNative {
		return "native"
	}
	return "generic"
}

// Defaults of Config.
const (
	DefaultTableSize   = 65537
	DefaultMaxServices = 256
	DefaultMaxBackends = 4096
	DefaultBPFFSRoot   = "/sys/fs/bpf/tern"
)

// Config says where and how the load-balancer program runs.
type Config struct {
	// Interface is the name of the interface VIP traffic arrives on.
	Interface string
	// XDPMode is generic (default) or native.
	XDPMode XDPMode
	// Instance names the directory under BPFFSRoot where the program's
	// link and maps are pinned; default: Interface. A new LB with
	// the same Instance takes over the pinned link and maps.
	Instance string
	// BPFFSRoot is where instances are pinned; default DefaultBPFFSRoot.
	// bpffs is mounted at /sys/fs/bpf if it is not.
	BPFFSRoot string
	// NextHopMAC is the destination MAC of IPIP packets whose backend has
	// no MAC of its own.
	NextHopMAC net.HardwareAddr
	// TunnelSrc is the default outer source address of IPIP packets;
	// default: the interface's first IPv4 address.
	TunnelSrc netip.Addr
	// Ephemeral accepts a bpffs that cannot outlive the process (one
	// mounted in a private mount namespace, as under `ip netns exec`):
	// the program then detaches when the process exits. Without it Open
	// refuses such a bpffs (ErrPrivateBPFFS), as it could not keep the
	// promise that a restart drops no packet.
	Ephemeral bool
	// MaxServices and MaxBackends size the maps (defaults
	// DefaultMaxServices, DefaultMaxBackends). Backend ids are below
	// MaxBackends. They cannot change while pinned maps are reused.
	MaxServices int
	MaxBackends int
}

// The LB methods the control plane uses (see lb_linux.go):
//
//	func Open(cfg Config) (*LB, error)
//	func (d *LB) SetBackend(id uint32, b Backend) error
//	func (d *LB) DeleteBackend(id uint32) error
//	func (d *LB) SetService(key ServiceKey, svc Service, table []uint32) error
//	func (d *LB) DeleteService(key ServiceKey) error
//	func (d *LB) Services() ([]ServiceKey, error)
//	func (d *LB) Counters() (Counters, error)
//	func (d *LB) Close() error  // keeps the program attached (pinned)
//	func (d *LB) Detach() error // detaches and removes the pins
