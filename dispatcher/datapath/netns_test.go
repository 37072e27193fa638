//go:build linux

package datapath

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ternlb/tern/internal/nsrun"

	"github.com/vishvananda/netlink"
)

// Network namespaces for tests that attach to real interfaces. Every
// address used lives inside namespaces the test creates.

var nsCounter atomic.Int32

// needNetns skips unless namespaces, veth and bridges can be made here.
func needNetns(t *testing.T) {
	t.Helper()
	needBPF(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command (iproute2)")
	}
}

// sh runs a command and fails the test on error.
func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newNS creates a namespace with lo up, deleted when the test ends.
func newNS(t *testing.T, role string) string {
	t.Helper()
	name := fmt.Sprintf("tern-%s-%d-%d", role, os.Getpid(), nsCounter.Add(1))
	out, err := exec.Command("ip", "netns", "add", name).CombinedOutput()
	if err != nil {
		t.Skipf("cannot create network namespace: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	sh(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// xdpProgID is the id of the XDP program attached to dev in ns, 0 if none.
func xdpProgID(t *testing.T, ns, dev string) uint32 {
	t.Helper()
	id, _ := xdpAttached(t, ns, dev)
	return id
}

// XDP attach modes as netlink reports them.
const (
	xdpAttachedDrv = 1
	xdpAttachedSKB = 2
)

// xdpAttached is the id and attach mode of the XDP program on dev in ns.
func xdpAttached(t *testing.T, ns, dev string) (id, mode uint32) {
	t.Helper()
	err := nsrun.Do(ns, func() error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return err
		}
		if x := l.Attrs().Xdp; x != nil && x.Attached {
			id, mode = x.ProgId, x.AttachMode
		}
		return nil
	})
	if err != nil {
		t.Fatalf("link %s in %s: %v", dev, ns, err)
	}
	return id, mode
}

func linkMAC(t *testing.T, ns, dev string) net.HardwareAddr {
	t.Helper()
	var mac net.HardwareAddr
	err := nsrun.Do(ns, func() error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return err
		}
		mac = l.Attrs().HardwareAddr
		return nil
	})
	if err != nil {
		t.Fatalf("link %s in %s: %v", dev, ns, err)
	}
	return mac
}

// lan is one L2 segment: a bridge in its own namespace and, per host, a
// namespace with an interface eth0 on the bridge.
type lan struct {
	t      *testing.T
	bridge string
	prefix string // first three octets, e.g. "10.201.7"
}

func newLAN(t *testing.T) *lan {
	t.Helper()
	l := &lan{t: t, bridge: newNS(t, "br"), prefix: fmt.Sprintf("10.%d.%d", 200+os.Getpid()%50, nsCounter.Load())}
	sh(t, "ip", "-n", l.bridge, "link", "add", "br0", "type", "bridge")
	sh(t, "ip", "-n", l.bridge, "link", "set", "br0", "up")
	return l
}

// host adds a namespace whose eth0 has address prefix.n/24, TX checksum
// offload off (veth would leave checksums partial).
func (l *lan) host(role string, n int) string {
	t := l.t
	t.Helper()
	ns := newNS(t, role)
	port := fmt.Sprintf("p%d", n)
	sh(t, "ip", "-n", l.bridge, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
	sh(t, "ip", "-n", l.bridge, "link", "set", port, "master", "br0", "up")
	sh(t, "ip", "-n", ns, "addr", "add", l.addr(n)+"/24", "dev", "eth0")
	sh(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	if _, err := exec.LookPath("ethtool"); err == nil {
		sh(t, "ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off")
	}
	return ns
}

func (l *lan) addr(n int) string { return fmt.Sprintf("%s.%d", l.prefix, n) }
