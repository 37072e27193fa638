//go:build linux

// Command dispbench measures the dispatcher's datapath against plain kernel
// IP forwarding: 64-byte UDP frames from a client namespace through a
// dispatcher namespace to a server namespace, all on one bridge, in three
// legs of the same topology and the same client traffic:
//
//	direct  client -> server (no dispatcher: the cost of everything else)
//	kernel  client -> dispatcher, forwarded by the kernel (ip_forward) -> server
//	xdp     client -> dispatcher, Tern's XDP program (mac mode) -> server
//
// The client blasts from one thread pinned to one CPU; with veth every hop
// (bridge, dispatcher, server's receive) runs in softirq on that CPU, in
// the blaster's context or ksoftirqd's. CPU time is that thread's plus
// every ksoftirqd's (perf task-clock, which counts softirq work run in a
// thread's context); packets are those that reached the
// server's interface (the server has no socket on the port: it takes the
// packet up to UDP and drops it, so socket wake-ups add no noise). It prints CPU per packet and packets per second per
// leg, and the ratios xdp/kernel of the whole path and of the dispatcher's
// own share (leg minus direct).
//
// With -disp-cpu N, Receive Packet Steering moves the dispatcher's receive
// processing (XDP or forwarding) to CPU N and what it sends back to the
// blaster's CPU, and CPU N's softirq time per packet is reported as the
// dispatcher's own cost. That figure counts every softirq on CPU N, so it
// is only clean on an otherwise idle machine; the whole-path figure then
// misses the steered work.
//
// It needs root, iproute2, and makes only namespaced traffic. Run it with
// bench/dispatcher.sh (make bench-dispatcher).
package main

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/ternlb/tern/dispatcher/datapath"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dispbench:", err)
		os.Exit(1)
	}
}

type options struct {
	ctx      context.Context // ends on SIGINT or SIGTERM
	duration time.Duration
	cpu      int
	dispCPU  int
	flows    int
	native   bool
	rounds   int
	legs     []string
}

func run() error {
	var o options
	var legs string
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "length of each leg in each round")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of all legs, interleaved; figures are each leg's median")
	flag.IntVar(&o.cpu, "cpu", 0, "CPU the blaster (and every softirq hop but the dispatcher's) runs on")
	flag.IntVar(&o.dispCPU, "disp-cpu", -1, "steer the dispatcher's receive processing to this CPU (RPS) and report its softirq time per packet; -1: no steering")
	flag.IntVar(&o.flows, "flows", 1024, "distinct client source ports")
	flag.BoolVar(&o.native, "native", false, "attach XDP in native mode (with an XDP_PASS program on the bridge-side peer)")
	flag.StringVar(&legs, "legs", "direct,kernel,xdp", "legs to run, in order")
	flag.Parse()
	o.legs = strings.Split(legs, ",")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	o.ctx = ctx
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (namespaces, XDP)")
	}
	if o.duration <= 0 || o.duration > time.Minute {
		return fmt.Errorf("-duration %s: want up to 1m", o.duration)
	}
	if o.rounds < 1 || o.rounds > 9 {
		return fmt.Errorf("-rounds %d: want 1 to 9", o.rounds)
	}

	if o.dispCPU >= 0 && o.dispCPU == o.cpu {
		return fmt.Errorf("-disp-cpu must differ from -cpu")
	}
	if o.dispCPU >= runtime.NumCPU() {
		o.dispCPU = -1
	}
	topo, err := newTopology(o)
	if err != nil {
		return err
	}
	defer topo.close()

	fmt.Printf("64-byte UDP frames, %d flows, %d rounds of %s per leg, blaster on CPU %d, xdp mode %s\n",
		o.flows, o.rounds, o.duration, o.cpu, map[bool]string{false: "generic", true: "native"}[o.native])
	dispCol := ""
	if o.dispCPU >= 0 {
		dispCol = fmt.Sprintf("  CPU%d softirq ns/packet", o.dispCPU)
	}
	row := func(leg, round string, r, dr result) {
		fmt.Printf("%-7s %5s %12d %12d %10.3f %14.1f", leg, round, r.sent, r.received, r.mpps(o.duration), r.nsPerPacket())
		if o.dispCPU >= 0 {
			fmt.Printf(" %24.1f", dr.dispNsPerPacket())
		}
		fmt.Println()
	}
	fmt.Printf("%-7s %5s %12s %12s %10s %14s%s\n", "leg", "round", "sent", "received", "Mpps", "CPU ns/packet", dispCol)
	all := map[string][]result{}
	for round := 1; round <= o.rounds; round++ {
		for _, leg := range o.legs {
			r, err := topo.leg(leg, o)
			if err != nil {
				return fmt.Errorf("leg %s: %w", leg, err)
			}
			if ctx.Err() != nil {
				return errors.New("interrupted")
			}
			all[leg] = append(all[leg], r)
			row(leg, fmt.Sprint(round), r, r)
		}
	}
	res := map[string]result{}
	disp := map[string]result{}
	fmt.Println("median:")
	for _, leg := range o.legs {
		res[leg] = median(all[leg], result.nsPerPacket)
		r := res[leg]
		dr := median(all[leg], result.dispNsPerPacket)
		row(leg, "", r, dr)
		disp[leg] = dr
	}
	x, k, d := res["xdp"], res["kernel"], res["direct"]
	if x.received > 0 && k.received > 0 {
		fmt.Printf("ratio xdp/kernel, CPU per packet, whole path: %.3f\n", x.nsPerPacket()/k.nsPerPacket())
		fmt.Printf("ratio xdp/kernel, packets per second:          %.3f\n", float64(x.received)/float64(k.received))
		if d.received > 0 {
			dx, dk := x.nsPerPacket()-d.nsPerPacket(), k.nsPerPacket()-d.nsPerPacket()
			fmt.Printf("dispatcher's own CPU per packet (leg - direct): xdp %.1f ns, kernel %.1f ns, ratio %.3f\n", dx, dk, dx/dk)
		}
		if dx, dk := disp["xdp"].dispNsPerPacket(), disp["kernel"].dispNsPerPacket(); dk > 0 {
			fmt.Printf("dispatcher's own CPU per packet (softirq on CPU %d):  xdp %.1f ns, kernel %.1f ns, ratio %.3f\n", o.dispCPU, dx, dk, dx/dk)
		}
	}
	return nil
}

type result struct {
	sent, received uint64
	cpu            time.Duration
	dispSoftirq    time.Duration // softirq time on the dispatcher's CPU
}

// dispNsPerPacket is the dispatcher's own CPU per packet.
func (r result) dispNsPerPacket() float64 {
	if r.received == 0 || r.dispSoftirq < 0 {
		return 0
	}
	return float64(r.dispSoftirq.Nanoseconds()) / float64(r.received)
}

func (r result) mpps(d time.Duration) float64 { return float64(r.received) / d.Seconds() / 1e6 }

// median is the result of median by.
func median(rs []result, by func(result) float64) result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b result) int { return cmp.Compare(by(a), by(b)) })
	return s[len(s)/2]
}

func (r result) nsPerPacket() float64 {
	if r.received == 0 {
		return 0
	}
	return float64(r.cpu.Nanoseconds()) / float64(r.received)
}

// topology: namespaces br (bridge br0), cl, disp, srv; each host's eth0 on
// the bridge. Addresses only inside them.
type topology struct {
	ns             map[string]string // role -> namespace name
	clientIP       netip.Addr
	dispIP         netip.Addr
	serverIP       netip.Addr
	vip            netip.Addr
	dispMAC        net.HardwareAddr
	serverMAC      net.HardwareAddr
	bpffsRoot      string
	bridgeSideDisp string
	dispCPU        int // -1: not steered
}

const port = 9

func sh(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func newTopology(o options) (*topology, error) {
	pid := os.Getpid()
	t := &topology{
		ns:        map[string]string{},
		clientIP:  netip.MustParseAddr("10.250.0.1"),
		dispIP:    netip.MustParseAddr("10.250.0.2"),
		serverIP:  netip.MustParseAddr("10.250.0.3"),
		vip:       netip.MustParseAddr("10.250.1.100"),
		bpffsRoot: fmt.Sprintf("/sys/fs/bpf/tern-bench-%d", pid),
	}
	for _, role := range []string{"br", "cl", "disp", "srv"} {
		name := fmt.Sprintf("tbench-%s-%d", role, pid)
		if err := sh("ip", "netns", "add", name); err != nil {
			t.close()
			return nil, err
		}
		t.ns[role] = name
	}
	br := t.ns["br"]
	cmds := [][]string{
		{"ip", "-n", br, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", br, "link", "set", "br0", "up"},
	}
	// Bridged frames skip iptables when br_netfilter is there: the same
	// for every leg, and much of the cost of the path otherwise.
	for _, k := range []string{"iptables", "ip6tables", "arptables"} {
		exec.Command("ip", "netns", "exec", br, "sysctl", "-qw", "net.bridge.bridge-nf-call-"+k+"=0").Run()
	}
	t.dispCPU = o.dispCPU
	for i, h := range []struct {
		role string
		ip   netip.Addr
	}{{"cl", t.clientIP}, {"disp", t.dispIP}, {"srv", t.serverIP}} {
		p := fmt.Sprintf("p%d", i)
		if h.role == "disp" {
			t.bridgeSideDisp = p
		}
		ns := t.ns[h.role]
		cmds = append(cmds,
			[]string{"ip", "-n", br, "link", "add", p, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"ip", "-n", br, "link", "set", p, "master", "br0", "up"},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
			[]string{"ip", "-n", ns, "addr", "add", h.ip.String() + "/24", "dev", "eth0"},
			[]string{"ip", "-n", ns, "link", "set", "eth0", "up"},
		)
	}
	d := t.ns["disp"]
	cmds = append(cmds,
		[]string{"ip", "-n", t.ns["srv"], "addr", "add", t.vip.String() + "/32", "dev", "lo"},
		[]string{"ip", "netns", "exec", d, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		[]string{"ip", "netns", "exec", d, "sysctl", "-qw", "net.ipv4.conf.all.send_redirects=0"},
		[]string{"ip", "netns", "exec", d, "sysctl", "-qw", "net.ipv4.conf.eth0.send_redirects=0"},
		[]string{"ip", "-n", d, "route", "add", t.vip.String() + "/32", "via", t.serverIP.String()},
	)
	for _, c := range cmds {
		if err := sh(c...); err != nil {
			t.close()
			return nil, err
		}
	}
	if t.dispCPU >= 0 {
		// Receive Packet Steering: the dispatcher's receive processing
		// (XDP or forwarding) runs on dispCPU; what it sends on is
		// steered back to the blaster's CPU, so dispCPU's softirq time is
		// the dispatcher's own work.
		for _, c := range []struct {
			ns, dev string
			cpu     int
		}{{t.ns["disp"], "eth0", t.dispCPU}, {t.ns["br"], t.bridgeSideDisp, o.cpu}} {
			mask := fmt.Sprintf("%x", 1<<c.cpu)
			if err := sh("ip", "netns", "exec", c.ns, "sh", "-c", "echo "+mask+" > /sys/class/net/"+c.dev+"/queues/rx-0/rps_cpus"); err != nil {
				t.close()
				return nil, err
			}
		}
	}
	var err error
	if t.dispMAC, err = t.mac("disp"); err == nil {
		t.serverMAC, err = t.mac("srv")
	}
	if err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

func (t *topology) close() {
	for _, ns := range t.ns {
		exec.Command("ip", "netns", "del", ns).Run()
	}
	os.RemoveAll(t.bpffsRoot)
}

// inNS runs f on a thread in namespace role. If keep, the thread stays
// there locked (f's goroutine must end to release it).
func (t *topology) inNS(role string, keep bool, f func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	h, err := netns.GetFromName(t.ns[role])
	if err != nil {
		return err
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		return err
	}
	ferr := f()
	if keep {
		return ferr
	}
	if err := netns.Set(orig); err != nil {
		return err
	}
	runtime.UnlockOSThread()
	return ferr
}

func (t *topology) mac(role string) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := t.inNS(role, false, func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		mac = l.Attrs().HardwareAddr
		return nil
	})
	return mac, err
}

func (t *topology) rxPackets(role string) (uint64, error) {
	var n uint64
	err := t.inNS(role, false, func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		n = l.Attrs().Statistics.RxPackets
		return nil
	})
	return n, err
}

// leg routes the client's VIP traffic for the leg and blasts.
func (t *topology) leg(name string, o options) (result, error) {
	via := t.dispIP
	if name == "direct" {
		via = t.serverIP
	}
	if err := sh("ip", "-n", t.ns["cl"], "route", "replace", t.vip.String()+"/32", "via", via.String()); err != nil {
		return result{}, err
	}
	switch name {
	case "direct", "kernel":
		return t.blast(o)
	case "xdp":
		var dp *datapath.LB
		if o.native {
			// Native XDP_TX out of a veth needs an XDP program on its peer.
			peer, err := t.attachPass()
			if err != nil {
				return result{}, err
			}
			defer peer.Close()
		}
		mode := datapath.XDPGeneric
		if o.native {
			mode = datapath.XDPNative
		}
		err := t.inNS("disp", false, func() (err error) {
			dp, err = datapath.Open(datapath.Config{Interface: "eth0", XDPMode: mode, BPFFSRoot: t.bpffsRoot})
			return err
		})
		if err != nil {
			return result{}, err
		}
		defer dp.Detach()
		if err := dp.SetBackend(0, datapath.Backend{IP: t.serverIP, MAC: t.serverMAC}); err != nil {
			return result{}, err
		}
		if err := dp.SetService(datapath.ServiceKey{VIP: t.vip, Port: port, Proto: datapath.ProtoUDP}, datapath.Service{Mode: datapath.ModeMAC}, make([]uint32, datapath.DefaultTableSize)); err != nil {
			return result{}, err
		}
		r, err := t.blast(o)
		if err != nil {
			return r, err
		}
		c, err := dp.Counters()
		if err != nil {
			return r, err
		}
		if c.Backends[0].Packets < r.received*99/100 { // a few ARP frames also reach the server
			return r, fmt.Errorf("XDP forwarded %d packets but the server got %d: traffic took another path", c.Backends[0].Packets, r.received)
		}
		return r, nil
	}
	return result{}, fmt.Errorf("unknown leg %q (want direct, kernel or xdp)", name)
}

// attachPass attaches a native XDP program that passes everything to the
// bridge-side peer of the dispatcher's veth: without one, native XDP_TX
// out of a veth drops every frame.
func (t *topology) attachPass() (io.Closer, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.XDP,
		License:      "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}, // XDP_PASS
	})
	if err != nil {
		return nil, fmt.Errorf("load XDP_PASS program: %w", err)
	}
	defer prog.Close()
	var l link.Link
	err = t.inNS("br", false, func() error {
		ifi, err := net.InterfaceByName(t.bridgeSideDisp)
		if err != nil {
			return err
		}
		l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifi.Index, Flags: link.XDPDriverMode})
		return err
	})
	return l, err
}

// blast sends 64-byte frames (18 bytes of UDP payload) from the client for
// o.duration and measures.
func (t *topology) blast(o options) (result, error) {
	before, err := t.rxPackets("srv")
	if err != nil {
		return result{}, err
	}
	soft, err := ksoftirqdClocks()
	if err != nil {
		return result{}, err
	}
	defer func() {
		for _, c := range soft {
			c.close()
		}
	}()
	soft0 := sumClocks(soft)
	disp0, err := softirqTime(t.dispCPU)
	if err != nil {
		return result{}, err
	}
	type out struct {
		sent uint64
		cpu  time.Duration
		err  error
	}
	ch := make(chan out, 1)
	go func() {
		var o2 out
		o2.err = t.inNS("cl", true, func() error {
			// This goroutine's thread stays in the namespace and exits
			// with it (LockOSThread without Unlock).
			var set unix.CPUSet
			set.Set(o.cpu)
			if err := unix.SchedSetaffinity(0, &set); err != nil {
				return fmt.Errorf("pin blaster to CPU %d: %w", o.cpu, err)
			}
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: t.clientIP.AsSlice()})
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetWriteBuffer(4 << 20)
			pc := ipv4.NewPacketConn(c)
			msgs := make([]ipv4.Message, 64)
			// Flows differ by source port: one socket per flow, used in
			// turn, a batch of 64 frames each.
			socks := []*ipv4.PacketConn{pc}
			for i := 1; i < min(o.flows, 256); i++ {
				ci, err := net.ListenUDP("udp4", &net.UDPAddr{IP: t.clientIP.AsSlice()})
				if err != nil {
					return err
				}
				defer ci.Close()
				ci.SetWriteBuffer(4 << 20)
				socks = append(socks, ipv4.NewPacketConn(ci))
			}
			dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(t.vip, port))
			for i := range msgs {
				msgs[i] = ipv4.Message{Buffers: [][]byte{make([]byte, 18)}, Addr: dst}
			}
			clock, err := openTaskClock(0)
			if err != nil {
				return err
			}
			defer clock.close()
			cpu0 := clock.read()
			deadline := time.Now().Add(o.duration)
			ctx, cancel := context.WithDeadline(o.ctx, deadline)
			defer cancel()
			for i := 0; ctx.Err() == nil; i++ {
				for range 16 {
					n, err := socks[i%len(socks)].WriteBatch(msgs, 0)
					if err != nil && n == 0 {
						// ENOBUFS under load: the queue is full, go on.
						continue
					}
					o2.sent += uint64(n)
				}
			}
			o2.cpu = clock.read() - cpu0
			return nil
		})
		ch <- o2
	}()
	res := <-ch
	if res.err != nil {
		return result{}, res.err
	}
	// Let queued packets land before counting.
	time.Sleep(200 * time.Millisecond)
	after, err := t.rxPackets("srv")
	if err != nil {
		return result{}, err
	}
	soft1 := sumClocks(soft)
	disp1, err := softirqTime(t.dispCPU)
	if err != nil {
		return result{}, err
	}
	return result{sent: res.sent, received: after - before, cpu: res.cpu + soft1 - soft0, dispSoftirq: disp1 - disp0}, nil
}

// taskClock counts the CPU time of thread tid (0: the calling thread),
// softirq work run in its context included, to the nanosecond.
type taskClock int

func openTaskClock(tid int) (taskClock, error) {
	attr := unix.PerfEventAttr{
		Type:   unix.PERF_TYPE_SOFTWARE,
		Config: unix.PERF_COUNT_SW_TASK_CLOCK,
		Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
	}
	fd, err := unix.PerfEventOpen(&attr, tid, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("perf task-clock of thread %d: %w", tid, err)
	}
	return taskClock(fd), nil
}

func (c taskClock) read() time.Duration {
	var b [8]byte
	if n, err := unix.Read(int(c), b[:]); err != nil || n != 8 {
		return 0
	}
	return time.Duration(binary.LittleEndian.Uint64(b[:]))
}

func (c taskClock) close() { unix.Close(int(c)) }

// ksoftirqdClocks opens task clocks on every ksoftirqd thread: softirq work
// the kernel defers out of the blaster's context runs there.
func ksoftirqdClocks() ([]taskClock, error) {
	comms, err := filepath.Glob("/proc/[0-9]*/comm")
	if err != nil {
		return nil, err
	}
	var cs []taskClock
	for _, comm := range comms {
		b, err := os.ReadFile(comm)
		if err != nil || !strings.HasPrefix(string(b), "ksoftirqd/") {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(comm)))
		if err != nil {
			continue
		}
		c, err := openTaskClock(pid)
		if err != nil {
			for _, c := range cs {
				c.close()
			}
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

func sumClocks(cs []taskClock) time.Duration {
	var d time.Duration
	for _, c := range cs {
		d += c.read()
	}
	return d
}

// softirqTime is the time CPU cpu has spent in softirq (from /proc/stat,
// sampled at each tick), 0 for cpu -1.
func softirqTime(cpu int) (time.Duration, error) {
	if cpu < 0 {
		return 0, nil
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	prefix := fmt.Sprintf("cpu%d ", cpu)
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line) // cpuN user nice system idle iowait irq softirq ...
		if len(f) < 8 {
			break
		}
		ticks, err := strconv.ParseInt(f[7], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat %s: %w", prefix, err)
		}
		return time.Duration(ticks) * time.Second / 100, nil // USER_HZ
	}
	return 0, fmt.Errorf("/proc/stat: no line for CPU %d", cpu)
}
