//go:build linux

package datapath

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ternlb/tern/internal/nsrun"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// udpEcho serves UDP on addr inside ns, answering "echo:" + request, until
// the test ends.
func udpEcho(t *testing.T, ns string, addr netip.AddrPort) {
	t.Helper()
	var c *net.UDPConn
	err := nsrun.Do(ns, func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		t.Fatalf("echo server in %s: %v", ns, err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
}

// udpClient dials addr from inside ns; exchange sends msg and waits up to
// wait for the echo.
type udpClient struct{ c *net.UDPConn }

func newUDPClient(t *testing.T, ns string, addr netip.AddrPort) *udpClient {
	t.Helper()
	var c *net.UDPConn
	err := nsrun.Do(ns, func() (err error) {
		c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		t.Fatalf("client in %s: %v", ns, err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpClient{c}
}

func (u *udpClient) exchange(msg string, wait time.Duration) error {
	u.c.SetDeadline(time.Now().Add(wait))
	if _, err := u.c.Write([]byte(msg)); err != nil {
		return err
	}
	buf := make([]byte, 2048)
	n, err := u.c.Read(buf)
	if err != nil {
		return err
	}
	if got := string(buf[:n]); got != "echo:"+msg {
		return fmt.Errorf("got %q, want %q", got, "echo:"+msg)
	}
	return nil
}

// TestAttachPinnedRestart attaches the dispatcher to a veth in a namespace
// (client, dispatcher and server on one bridge), sends real traffic in mac
// and ipip modes (the server decapsulates with the decap program), and
// checks that closing the LB leaves the program attached and
// forwarding, and that reopening takes over the link and the maps with
// their contents.
func TestAttachPinnedRestart(t *testing.T) {
	needNetns(t)
	lan := newLAN(t)
	cns := lan.host("client", 1)
	dns := lan.host("disp", 2)
	sns := lan.host("server", 3)
	vipAddr := netip.MustParseAddr(lan.addr(100))
	serverAddr := netip.MustParseAddr(lan.addr(3))
	key := ServiceKey{VIP: vipAddr, Port: 5353, Proto: ProtoUDP}

	// The server holds the VIP on lo and decapsulates IPIP to it.
	sh(t, "ip", "-n", sns, "addr", "add", vipAddr.String()+"/32", "dev", "lo")
	var dec *Decap
	if err := nsrun.Do(sns, func() (err error) {
		dec, err = AttachDecap("eth0", []netip.Addr{vipAddr}, XDPGeneric)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dec.Close() })
	udpEcho(t, sns, netip.AddrPortFrom(vipAddr, key.Port))

	// The client sends frames for the VIP to the dispatcher.
	dmac := linkMAC(t, dns, "eth0")
	sh(t, "ip", "-n", cns, "neigh", "replace", vipAddr.String(), "lladdr", dmac.String(), "dev", "eth0", "nud", "permanent")
	cl := newUDPClient(t, cns, netip.AddrPortFrom(vipAddr, key.Port))

	root := filepath.Join(bpffsMount, fmt.Sprintf("tern-test-%d", os.Getpid()))
	t.Cleanup(func() { os.RemoveAll(root) })
	cfg := Config{Interface: "eth0", Instance: "restart", BPFFSRoot: root}
	open := func() *LB {
		t.Helper()
		var d *LB
		if err := nsrun.Do(dns, func() (err error) {
			d, err = Open(cfg)
			return err
		}); err != nil {
			skipIfNotPermitted(t, err)
			t.Fatal(err)
		}
		return d
	}
	wantServicePackets := func(d *LB, n uint64) {
		t.Helper()
		c, err := d.Counters()
		if err != nil {
			t.Fatal(err)
		}
		if c.Services[key].Packets != n || c.Backends[1].Packets != n {
			t.Fatalf("service counted %d packets, backend %d; want %d", c.Services[key].Packets, c.Backends[1].Packets, n)
		}
	}

	d := open()
	// A second process cannot take the instance while the first holds it.
	if err := nsrun.Do(dns, func() error {
		d2, err := openLB(cfg, 100*time.Millisecond)
		if err == nil {
			d2.Close()
		}
		return err
	}); !errors.Is(err, ErrInstanceBusy) {
		t.Fatalf("second open of a held instance: %v, want ErrInstanceBusy", err)
	}
	if err := d.SetBackend(1, Backend{IP: serverAddr, MAC: linkMAC(t, sns, "eth0")}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetService(key, Service{Mode: ModeMAC}, []uint32{1, 1, 1, 1, 1, 1, 1}); err != nil {
		t.Fatal(err)
	}
	if err := cl.exchange("one", 5*time.Second); err != nil {
		t.Fatalf("through the dispatcher (mac): %v", err)
	}
	wantServicePackets(d, 1)
	prog, mode := xdpAttached(t, dns, "eth0")
	if prog == 0 || mode != xdpAttachedSKB {
		t.Fatalf("XDP program %d in mode %d on the dispatcher's eth0, want one in generic (skb) mode", prog, mode)
	}

	// Closed, the program stays attached and keeps forwarding.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if got := xdpProgID(t, dns, "eth0"); got != prog {
		t.Fatalf("after Close: XDP program %d, want %d still attached", got, prog)
	}
	if err := cl.exchange("two", 5*time.Second); err != nil {
		t.Fatalf("with the LB closed: %v", err)
	}

	// Reopened, the maps are the same: services, backends, counters
	// (including the packet forwarded while no process held them).
	d = open()
	keys, err := d.Services()
	if err != nil || len(keys) != 1 || keys[0] != key {
		t.Fatalf("services after reopen: %v, %v; want [%s]", keys, err, key)
	}
	wantServicePackets(d, 2)
	prog2 := xdpProgID(t, dns, "eth0")
	if prog2 == 0 || prog2 == prog {
		t.Fatalf("after reopen: XDP program %d, want the new program in place of %d", prog2, prog)
	}
	if err := cl.exchange("three", 5*time.Second); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
	wantServicePackets(d, 3)

	// ipip: the server's decap program unwraps.
	if err := d.SetService(key, Service{Mode: ModeIPIP}, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	if err := cl.exchange("four", 5*time.Second); err != nil {
		t.Fatalf("through the dispatcher (ipip): %v", err)
	}
	wantServicePackets(d, 4)
	if c, err := dec.Counter(); err != nil || c.Packets != 1 {
		t.Fatalf("server decapsulated %+v (%v), want 1 packet", c, err)
	}

	// Detached: no program, no pins, no forwarding.
	if err := d.Detach(); err != nil {
		t.Fatal(err)
	}
	if got := xdpProgID(t, dns, "eth0"); got != 0 {
		t.Fatalf("after Detach: XDP program %d still attached", got)
	}
	if _, err := os.Stat(filepath.Join(root, cfg.Instance)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pin directory after Detach: %v", err)
	}
	if err := cl.exchange("five", 300*time.Millisecond); err == nil {
		t.Fatal("VIP still answered after Detach")
	}
}

// TestAttachNative attaches in native (driver) mode. On veth, XDP_TX then
// needs an XDP program on the peer: the bridge side gets an XDP_PASS one.
func TestAttachNative(t *testing.T) {
	needNetns(t)
	lan := newLAN(t)
	cns := lan.host("client", 1)
	dns := lan.host("disp", 2)
	sns := lan.host("server", 3)
	vipAddr := netip.MustParseAddr(lan.addr(100))
	key := ServiceKey{VIP: vipAddr, Port: 7, Proto: ProtoUDP}
	sh(t, "ip", "-n", sns, "addr", "add", vipAddr.String()+"/32", "dev", "lo")
	udpEcho(t, sns, netip.AddrPortFrom(vipAddr, key.Port))
	sh(t, "ip", "-n", cns, "neigh", "replace", vipAddr.String(), "lladdr", linkMAC(t, dns, "eth0").String(), "dev", "eth0", "nud", "permanent")
	cl := newUDPClient(t, cns, netip.AddrPortFrom(vipAddr, key.Port))

	pass, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.XDP,
		License:      "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, xdpPass), asm.Return()},
	})
	if err != nil {
		skipIfNotPermitted(t, err)
		t.Fatal(err)
	}
	defer pass.Close()
	if err := nsrun.Do(lan.bridge, func() error {
		ifi, err := net.InterfaceByName("p2") // the dispatcher's peer
		if err != nil {
			return err
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: pass, Interface: ifi.Index, Flags: link.XDPDriverMode})
		if err != nil {
			return err
		}
		t.Cleanup(func() { l.Close() })
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	root := filepath.Join(bpffsMount, fmt.Sprintf("tern-test-%d", os.Getpid()))
	t.Cleanup(func() { os.RemoveAll(root) })
	var d *LB
	if err := nsrun.Do(dns, func() (err error) {
		d, err = Open(Config{Interface: "eth0", Instance: "native", BPFFSRoot: root, XDPMode: XDPNative})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Detach() })
	if _, mode := xdpAttached(t, dns, "eth0"); mode != xdpAttachedDrv {
		t.Fatalf("attach mode %d, want native (driver)", mode)
	}
	if err := d.SetBackend(1, Backend{IP: netip.MustParseAddr(lan.addr(3)), MAC: linkMAC(t, sns, "eth0")}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetService(key, Service{Mode: ModeMAC}, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := cl.exchange(fmt.Sprint("native ", i), 5*time.Second); err != nil {
			t.Fatalf("through the dispatcher in native mode: %v", err)
		}
	}
	c, err := d.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c.Services[key].Packets != 3 {
		t.Fatalf("service counted %d packets, want 3", c.Services[key].Packets)
	}
}

// TestInstanceOfAnotherNetns: a second dispatcher in another network
// namespace, with the same instance name in the same bpffs, finds the
// first one's program attached there (its interface index is the same
// number in both namespaces) and is refused, leaving the first one's
// program and maps alone; the first one reopens its instance as before.
func TestInstanceOfAnotherNetns(t *testing.T) {
	needNetns(t)
	lan := newLAN(t)
	ns1 := lan.host("disp1", 2)
	ns2 := lan.host("disp2", 3)
	root := filepath.Join(bpffsMount, fmt.Sprintf("tern-test-%d", os.Getpid()))
	t.Cleanup(func() { os.RemoveAll(root) })
	cfg := Config{Interface: "eth0", BPFFSRoot: root} // default instance: eth0 in both
	open := func(ns string) (*LB, error) {
		var d *LB
		err := nsrun.Do(ns, func() (err error) {
			d, err = Open(cfg)
			return err
		})
		return d, err
	}
	d, err := open(ns1)
	if err != nil {
		skipIfNotPermitted(t, err)
		t.Fatal(err)
	}
	key := ServiceKey{VIP: netip.MustParseAddr(lan.addr(100)), Port: 53, Proto: ProtoUDP}
	if err := d.SetBackend(0, Backend{IP: netip.MustParseAddr(lan.addr(9)), MAC: linkMAC(t, ns2, "eth0")}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetService(key, Service{Mode: ModeMAC}, []uint32{0}); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil { // pinned, attached, unlocked: as after SIGTERM
		t.Fatal(err)
	}
	prog := xdpProgID(t, ns1, "eth0")
	if prog == 0 {
		t.Fatal("no program on the first namespace's eth0 after Close")
	}

	_, err = open(ns2)
	if !errors.Is(err, ErrOtherNetns) || !strings.Contains(err.Error(), "network namespace") {
		t.Fatalf("open in another namespace: %v, want ErrOtherNetns", err)
	}
	if id := xdpProgID(t, ns2, "eth0"); id != 0 {
		t.Fatalf("program %d attached in the refused namespace", id)
	}
	if id := xdpProgID(t, ns1, "eth0"); id != prog {
		t.Fatalf("first namespace's program %d, want %d untouched", id, prog)
	}

	d, err = open(ns1)
	if err != nil {
		t.Fatalf("reopen in its own namespace: %v", err)
	}
	if keys, err := d.Services(); err != nil || len(keys) != 1 || keys[0] != key {
		t.Fatalf("services after the refused takeover: %v, %v; want [%s]", keys, err, key)
	}
	if err := d.Detach(); err != nil {
		t.Fatal(err)
	}
	// Detached, the instance belongs to nobody: the other namespace may
	// take the name.
	d, err = open(ns2)
	if err != nil {
		t.Fatalf("open in the other namespace once detached: %v", err)
	}
	if err := d.Detach(); err != nil {
		t.Fatal(err)
	}
}
