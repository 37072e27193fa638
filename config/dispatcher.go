package config

import (
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"time"
)

// Dispatcher configures the packet-level dispatcher (tern dispatch): the
// interface its XDP program runs on, the virtual services it balances over
// real servers, and how it shares its VIPs with a peer dispatcher.
//
//	dispatcher:
//	  interface: eth0
//	  services:
//	    - vip: 192.0.2.10
//	      port: 80
//	      servers:
//	        - {address: 10.1.0.11, mac: "02:00:00:00:01:11", check: http-ok}
//	        - {address: 10.1.0.12, mac: "02:00:00:00:01:12", weight: 2}
//	  ha:
//	    local: 10.1.0.2:7500
//	    peers: [10.1.0.3:7500]
//	    key_file: ha.key
//	    priority: 200
type Dispatcher struct {
	// Interface is the interface VIP traffic arrives on and leaves by.
	Interface string `yaml:"interface"`
	// XDPMode is generic (default) or native.
	XDPMode string `yaml:"xdp_mode"`
	// Mode is the forwarding mode of services that do not name their own:
	// mac (default; servers on the same L2 segment) or ipip.
	Mode string `yaml:"mode"`
	// TableSize is the Maglev table size of every service, a prime
	// (default 65537).
	TableSize int `yaml:"table_size"`
	// NextHopMAC is the destination MAC of IPIP packets to servers that
	// have no mac: of their own (the router towards them).
	NextHopMAC string `yaml:"next_hop_mac"`
	// TunnelSource is the outer source address of IPIP packets; default:
	// the interface's first IPv4 address.
	TunnelSource string `yaml:"tunnel_source"`
	// Services are the balanced VIP:port/proto triples.
	Services []DispatcherService `yaml:"services"`
	// HA pairs this dispatcher with others; without it this dispatcher
	// holds every VIP alone.
	HA *DispatcherHA `yaml:"ha"`
}

// DispatcherService is one virtual service.
type DispatcherService struct {
	VIP   string `yaml:"vip"`
	Port  int    `yaml:"port"`
	Proto string `yaml:"proto"` // tcp (default) | udp
	// Mode overrides Dispatcher.Mode for this service.
	Mode string `yaml:"mode"`
	// Check is the default check (a name under checks:) of its servers.
	Check   string             `yaml:"check"`
	Servers []DispatcherServer `yaml:"servers"`
}

// DispatcherServer is a real server of a service.
type DispatcherServer struct {
	Address string `yaml:"address"`
	// MAC is the server's MAC address: required in mac mode; in ipip mode
	// it is the next hop's, and defaults to Dispatcher.NextHopMAC.
	MAC string `yaml:"mac"`
	// Weight is the server's relative share (default 1); 0 drains it: it
	// gets no new flows.
	Weight *int `yaml:"weight"`
	// Check names the check (under checks:) that decides whether the
	// server is up; "none" means never checked. Default: the service's.
	Check string `yaml:"check"`
}

// W returns the server's weight with its default applied.
func (s DispatcherServer) W() int {
	if s.Weight == nil {
		return 1
	}
	return *s.Weight
}

// DispatcherHA is the heartbeat and takeover configuration.
type DispatcherHA struct {
	// ID names this dispatcher to its peers and breaks ties between equal
	// priorities (higher wins); default: Local.
	ID string `yaml:"id"`
	// Local is the host:port heartbeats are sent from and received on.
	Local string `yaml:"local"`
	// Peers are the other dispatchers' host:port.
	Peers []string `yaml:"peers"`
	// Key (or the content of KeyFile, relative to this file) is the shared
	// secret heartbeats are authenticated with; at least 16 bytes.
	Key     string `yaml:"key"`
	KeyFile string `yaml:"key_file"`
	// Priority (1-255, default 100) is this dispatcher's claim on VIPs of
	// groups that do not set their own; the highest priority alive owns.
	Priority int `yaml:"priority"`
	// Preempt lets a dispatcher of higher priority take its VIPs back from
	// a lower one that holds them (default false: the holder keeps them
	// until it fails).
	Preempt bool `yaml:"preempt"`
	// Interval between heartbeats (default 200ms); a peer is dead after
	// DeadAfter (default 3) intervals without one.
	Interval  Duration `yaml:"interval"`
	DeadAfter int      `yaml:"dead_after"`
	// Groups split VIPs into groups owned independently (mutual HA: each
	// dispatcher primary for some groups, backup for others). VIPs in no
	// group form the group "default" at Priority.
	Groups []DispatcherGroup `yaml:"groups"`
	// Reach targets must answer for this dispatcher to hold any VIP.
	Reach []DispatcherReach `yaml:"reach"`
}

// DispatcherGroup is a set of VIPs that move together.
type DispatcherGroup struct {
	Name     string   `yaml:"name"`
	VIPs     []string `yaml:"vips"`
	Priority int      `yaml:"priority"` // default: DispatcherHA.Priority
	// Preempt overrides DispatcherHA.Preempt for this group.
	Preempt *bool `yaml:"preempt"`
}

// DispatcherReach is a target this dispatcher must reach (its gateway, say).
type DispatcherReach struct {
	Address string `yaml:"address"`
	// Type is arp (default; the target must be on the interface's
	// segment), icmp (echo) or tcp (a connect to Port).
	Type     string   `yaml:"type"`
	Port     int      `yaml:"port"`
	Interval Duration `yaml:"interval"` // default 1s
	Timeout  Duration `yaml:"timeout"`  // default 500ms, at most Interval
	// Fall is how many failures in a row make the target unreachable
	// (default 3); one success makes it reachable again.
	Fall int `yaml:"fall"`
}

// Defaults of the dispatcher configuration.
const (
	DefaultDispatcherTableSize = 65537
	DefaultHAPriority          = 100
	DefaultHAInterval          = 200 * time.Millisecond
	DefaultHADeadAfter         = 3
	DefaultReachInterval       = time.Second
	DefaultReachTimeout        = 500 * time.Millisecond
	DefaultReachFall           = 3
	// maxTableSize matches package maglev's limit.
	maxTableSize = 1<<24 - 3
	minKeyLen    = 16
)

// setDefaults fills in what the operator left out. It is idempotent and
// runs before check.
func (d *Dispatcher) setDefaults() {
	if d.XDPMode == "" {
		d.XDPMode = "generic"
	}
	if d.Mode == "" {
		d.Mode = "mac"
	}
	if d.TableSize == 0 {
		d.TableSize = DefaultDispatcherTableSize
	}
	for i := range d.Services {
		s := &d.Services[i]
		if s.Proto == "" {
			s.Proto = "tcp"
		}
		if s.Mode == "" {
			s.Mode = d.Mode
		}
		for j := range s.Servers {
			if s.Servers[j].Check == "" {
				s.Servers[j].Check = s.Check
			}
		}
	}
	h := d.HA
	if h == nil {
		return
	}
	if h.ID == "" {
		h.ID = h.Local
	}
	if h.Priority == 0 {
		h.Priority = DefaultHAPriority
	}
	if h.Interval == 0 {
		h.Interval = Duration(DefaultHAInterval)
	}
	if h.DeadAfter == 0 {
		h.DeadAfter = DefaultHADeadAfter
	}
	for i := range h.Groups {
		if h.Groups[i].Priority == 0 {
			h.Groups[i].Priority = h.Priority
		}
	}
	for i := range h.Reach {
		r := &h.Reach[i]
		if r.Type == "" {
			r.Type = "arp"
		}
		if r.Interval == 0 {
			r.Interval = Duration(DefaultReachInterval)
		}
		if r.Timeout == 0 {
			r.Timeout = min(Duration(DefaultReachTimeout), r.Interval)
		}
		if r.Fall == 0 {
			r.Fall = DefaultReachFall
		}
	}
}

// GroupPreempt returns whether group g preempts.
func (h *DispatcherHA) GroupPreempt(g DispatcherGroup) bool {
	if g.Preempt != nil {
		return *g.Preempt
	}
	return h.Preempt
}

// check applies the defaults, then reports every problem with the dotted
// path of the node it is about.
func (d *Dispatcher) check(add func(path, msg string)) {
	d.setDefaults()
	const p = "dispatcher"
	addf := func(path, format string, args ...any) { add(path, fmt.Sprintf(format, args...)) }

	if d.Interface == "" {
		addf(p+".interface", "dispatcher: interface is required (the interface VIP traffic arrives on, like eth0)")
	}
	switch d.XDPMode {
	case "generic", "native":
	default:
		addf(p+".xdp_mode", "dispatcher: xdp_mode %q: write generic or native", d.XDPMode)
	}
	if !validMode(d.Mode) {
		addf(p+".mode", "dispatcher: mode %q: write mac or ipip", d.Mode)
	}
	if d.TableSize < 2 || d.TableSize > maxTableSize || !isPrime(d.TableSize) {
		addf(p+".table_size", "dispatcher: table_size %d is not a prime up to %d (65537 is a good size)", d.TableSize, maxTableSize)
	}
	if d.NextHopMAC != "" {
		if _, err := net.ParseMAC(d.NextHopMAC); err != nil {
			addf(p+".next_hop_mac", "dispatcher: next_hop_mac %q is not a MAC address (write 02:00:00:00:00:01)", d.NextHopMAC)
		}
	}
	if d.TunnelSource != "" {
		if a, err := netip.ParseAddr(d.TunnelSource); err != nil || !a.Is4() {
			addf(p+".tunnel_source", "dispatcher: tunnel_source %q is not an IPv4 address", d.TunnelSource)
		}
	}

	if len(d.Services) == 0 {
		addf(p+".services", "dispatcher: no services: list at least one {vip, port, servers}")
	}
	vips := map[netip.Addr]bool{}
	seen := map[string]int{}
	for i, s := range d.Services {
		sp := fmt.Sprintf("%s.services.%d", p, i)
		vip, err := netip.ParseAddr(s.VIP)
		switch {
		case s.VIP == "":
			addf(sp, "service %d: vip is required", i)
		case err != nil || vip.Zone() != "":
			addf(sp+".vip", "service %d: vip %q is not an IPv4 or IPv6 address", i, s.VIP)
		case vip.Is4In6():
			addf(sp+".vip", "service %d: vip %q is an IPv4-mapped IPv6 address: write %s", i, s.VIP, vip.Unmap())
		case !vip.IsGlobalUnicast() && !vip.IsPrivate():
			addf(sp+".vip", "service %d: vip %s is not a unicast address a client can reach", i, vip)
		default:
			vips[vip] = true
		}
		if s.Port < 1 || s.Port > 65535 {
			addf(sp+".port", "service %d: port %d: write 1 to 65535", i, s.Port)
		}
		if s.Proto != "tcp" && s.Proto != "udp" {
			addf(sp+".proto", "service %d: proto %q: write tcp or udp", i, s.Proto)
		}
		if !validMode(s.Mode) {
			addf(sp+".mode", "service %d: mode %q: write mac or ipip", i, s.Mode)
		}
		key := fmt.Sprintf("%s:%d/%s", s.VIP, s.Port, s.Proto)
		if j, dup := seen[key]; dup {
			addf(sp, "service %d: %s is already service %d", i, key, j)
		} else {
			seen[key] = i
		}
		addrs := map[netip.Addr]int{}
		for j, srv := range s.Servers {
			vp := fmt.Sprintf("%s.servers.%d", sp, j)
			a, err := netip.ParseAddr(srv.Address)
			switch {
			case srv.Address == "":
				addf(vp, "service %d server %d: address is required", i, j)
			case err != nil || a.Zone() != "" || a.Is4In6():
				addf(vp+".address", "service %d server %d: address %q is not an IPv4 or IPv6 address", i, j, srv.Address)
			case s.Mode == "ipip" && !a.Is4():
				addf(vp+".address", "service %d server %d: address %s: ipip mode tunnels in IPv4, so the server needs an IPv4 address (or use mac mode)", i, j, a)
			default:
				if k, dup := addrs[a]; dup {
					addf(vp+".address", "service %d: server %s is listed twice (servers %d and %d)", i, a, k, j)
				}
				addrs[a] = j
			}
			switch {
			case srv.MAC != "":
				if _, err := net.ParseMAC(srv.MAC); err != nil {
					addf(vp+".mac", "service %d server %d: mac %q is not a MAC address (write 02:00:00:00:00:01)", i, j, srv.MAC)
				}
			case s.Mode == "mac":
				addf(vp+".mac", "service %d server %d: mac is required in mac mode (the server's MAC on %s)", i, j, d.Interface)
			case s.Mode == "ipip" && d.NextHopMAC == "":
				addf(vp+".mac", "service %d server %d: ipip mode needs the next hop's mac here or dispatcher.next_hop_mac", i, j)
			}
			if w := srv.W(); w < 0 || w > 65536 {
				addf(vp+".weight", "service %d server %d: weight %d: write 0 (drained) to 65536", i, j, w)
			}
		}
	}

	if d.HA != nil {
		d.HA.check(p+".ha", vips, addf)
	}
}

func (h *DispatcherHA) check(p string, vips map[netip.Addr]bool, addf func(path, format string, args ...any)) {
	if h.Local == "" {
		addf(p+".local", "ha: local is required (host:port heartbeats are sent from)")
	} else if _, err := netip.ParseAddrPort(h.Local); err != nil {
		addf(p+".local", "ha: local %q: write ip:port, like 10.0.0.2:7500", h.Local)
	}
	if len(h.Peers) == 0 {
		addf(p+".peers", "ha: no peers: list the other dispatchers' ip:port")
	}
	for i, peer := range h.Peers {
		if _, err := netip.ParseAddrPort(peer); err != nil {
			addf(fmt.Sprintf("%s.peers.%d", p, i), "ha: peer %q: write ip:port, like 10.0.0.3:7500", peer)
		} else if peer == h.Local {
			addf(fmt.Sprintf("%s.peers.%d", p, i), "ha: peer %q is this dispatcher's own local address", peer)
		}
	}
	switch {
	case h.Key == "" && h.KeyFile == "":
		addf(p, "ha: key or key_file is required (a shared secret of at least %d bytes)", minKeyLen)
	case h.Key != "" && h.KeyFile != "":
		addf(p+".key", "ha: write key or key_file, not both")
	case h.Key != "" && h.Key != Redacted && len(h.Key) < minKeyLen: // Redacted: a replicated copy, never run
		addf(p+".key", "ha: key is %d bytes, at least %d are needed", len(h.Key), minKeyLen)
	}
	if h.Priority < 1 || h.Priority > 255 {
		addf(p+".priority", "ha: priority %d: write 1 to 255", h.Priority)
	}
	if h.Interval.D() < 10*time.Millisecond || h.Interval.D() > time.Minute {
		addf(p+".interval", "ha: interval %v: write 10ms to 1m (200ms is the default)", h.Interval.D())
	}
	if h.DeadAfter < 1 || h.DeadAfter > 255 {
		addf(p+".dead_after", "ha: dead_after %d: write 1 to 255 missed heartbeats", h.DeadAfter)
	}
	names := map[string]bool{"default": false}
	grouped := map[netip.Addr]string{}
	for i, g := range h.Groups {
		gp := fmt.Sprintf("%s.groups.%d", p, i)
		if g.Name == "" || strings.ContainsAny(g.Name, " \t\n") || len(g.Name) > 32 {
			addf(gp+".name", "ha group %d: name %q: write a short name without spaces", i, g.Name)
		} else if _, dup := names[g.Name]; dup {
			addf(gp+".name", "ha group %d: name %q is taken", i, g.Name)
		}
		names[g.Name] = true
		if g.Priority < 1 || g.Priority > 255 {
			addf(gp+".priority", "ha group %q: priority %d: write 1 to 255", g.Name, g.Priority)
		}
		if len(g.VIPs) == 0 {
			addf(gp+".vips", "ha group %q lists no vips", g.Name)
		}
		for j, v := range g.VIPs {
			vp := fmt.Sprintf("%s.vips.%d", gp, j)
			a, err := netip.ParseAddr(v)
			switch {
			case err != nil:
				addf(vp, "ha group %q: %q is not an IP address", g.Name, v)
			case !vips[a]:
				addf(vp, "ha group %q: %s is the vip of no service", g.Name, a)
			case grouped[a] != "":
				addf(vp, "ha group %q: %s is already in group %q", g.Name, a, grouped[a])
			default:
				grouped[a] = g.Name
			}
		}
	}
	if len(h.Groups) > 254 {
		addf(p+".groups", "ha: %d groups, at most 254", len(h.Groups))
	}
	for i, r := range h.Reach {
		rp := fmt.Sprintf("%s.reach.%d", p, i)
		if a, err := netip.ParseAddr(r.Address); err != nil || !a.Is4() {
			addf(rp+".address", "ha reach %d: address %q is not an IPv4 address", i, r.Address)
		}
		switch r.Type {
		case "arp", "icmp":
		case "tcp":
			if r.Port < 1 || r.Port > 65535 {
				addf(rp+".port", "ha reach %d: a tcp target needs port: 1 to 65535", i)
			}
		default:
			addf(rp+".type", "ha reach %d: type %q: write arp, icmp or tcp", i, r.Type)
		}
		if r.Timeout > r.Interval {
			addf(rp+".timeout", "ha reach %d: timeout %v is longer than interval %v", i, r.Timeout.D(), r.Interval.D())
		}
		if r.Interval.D() < 10*time.Millisecond {
			addf(rp+".interval", "ha reach %d: interval %v is shorter than 10ms", i, r.Interval.D())
		}
		if r.Fall < 1 {
			addf(rp+".fall", "ha reach %d: fall must be at least 1", i)
		}
	}
}

// checkRefs reports servers whose check names no check; has says whether
// a check of that name exists under checks:. A name a server inherits from
// its service is reported once, at the service.
func (d *Dispatcher) checkRefs(has func(name string) bool, add func(path, msg string)) {
	for i, s := range d.Services {
		if s.Check != "" && s.Check != "none" && !has(s.Check) {
			add(fmt.Sprintf("dispatcher.services.%d.check", i),
				fmt.Sprintf("service %d: check %q is not defined under checks:", i, s.Check))
		}
		for j, srv := range s.Servers {
			if srv.Check == "" || srv.Check == "none" || srv.Check == s.Check || has(srv.Check) {
				continue
			}
			add(fmt.Sprintf("dispatcher.services.%d.servers.%d.check", i, j),
				fmt.Sprintf("service %d server %d: check %q is not defined under checks:", i, j, srv.Check))
		}
	}
}

func validMode(m string) bool { return m == "mac" || m == "ipip" }

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	if n%2 == 0 {
		return n == 2
	}
	for f := 3; f*f <= n; f += 2 {
		if n%f == 0 {
			return false
		}
	}
	return true
}

// checkHAKeyFile reads dispatcher.ha.key_file on this host (as tern
// dispatch will) and reports a file that cannot be read or holds a key
// shorter than the heartbeats need, so tern check finds it before the
// dispatcher does.
func (c *Config) checkHAKeyFile() Problems {
	if !c.onHost || c.Dispatcher == nil || c.Dispatcher.HA == nil || c.Dispatcher.HA.KeyFile == "" {
		return nil
	}
	f := c.Dispatcher.HA.KeyFile
	bad := func(format string, args ...any) Problems {
		return Problems{{File: c.Name, Line: c.Line("dispatcher.ha.key_file"),
			Msg: fmt.Sprintf("dispatcher.ha.key_file %s: ", c.DisplayPath(f)) + fmt.Sprintf(format, args...)}}
	}
	b, err := fs.ReadFile(c.FS, c.Resolve(f))
	if err != nil {
		return bad("%v", unwrapPath(err))
	}
	if n := len(strings.TrimSpace(string(b))); n < minKeyLen {
		return bad("the key is %d bytes, at least %d are needed (make one: head -c 32 /dev/urandom | base64 > %s)", n, minKeyLen, filepath.Base(f))
	}
	return nil
}
