package ha

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ternlb/tern/internal/eventually"
	"github.com/ternlb/tern/internal/nsrun"
)

// TestAnnounceMovesNeighbour: a takeover's announcement replaces the
// neighbour entry a host on the segment holds for the VIP, for IPv4
// (gratuitous ARP) and IPv6 (unsolicited neighbour advertisement), as the
// host's own kernel judges it.
func TestAnnounceMovesNeighbour(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command (iproute2)")
	}
	sh := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	a := fmt.Sprintf("tern-ann-a-%d", os.Getpid())
	b := fmt.Sprintf("tern-ann-b-%d", os.Getpid())
	for _, ns := range []string{a, b} {
		sh("netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	sh("-n", a, "link", "add", "a0", "type", "veth", "peer", "name", "b0", "netns", b)
	sh("-n", a, "addr", "add", "10.9.0.1/24", "dev", "a0")
	sh("-n", b, "addr", "add", "10.9.0.2/24", "dev", "b0")
	sh("-n", a, "addr", "add", "fd00:9::1/64", "dev", "a0", "nodad")
	sh("-n", b, "addr", "add", "fd00:9::2/64", "dev", "b0", "nodad")
	sh("-n", a, "link", "set", "a0", "up")
	sh("-n", b, "link", "set", "b0", "up")
	var mac string
	if f := strings.Fields(sh("-n", a, "-br", "link", "show", "a0")); len(f) >= 3 {
		mac = f[2]
	}

	vips := []netip.Addr{netip.MustParseAddr("10.9.0.100"), netip.MustParseAddr("fd00:9::100")}
	for _, v := range vips {
		// b knows the VIP at another MAC: the dispatcher that held it.
		sh("-n", b, "neigh", "replace", v.String(), "lladdr", "02:00:00:00:00:99", "dev", "b0", "nud", "stale")
	}
	// b's IPv6 takes in multicast once its carrier is up (then the kernel
	// adds ff00::/8); a dispatcher's long-up segment has it already.
	eventually.True(t, 5*time.Second, func() bool {
		return strings.Contains(sh("-n", b, "-6", "route", "show", "table", "local", "dev", "b0"), "ff00::/8")
	}, "b0 takes in IPv6 multicast")
	err := nsrun.Do(a, func() error {
		l := &Link{Name: "a0"}
		if err := l.AddVIPs(context.Background(), vips); err != nil {
			return err
		}
		return l.Announce(context.Background(), vips)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(sh("-n", a, "-6", "addr", "show", "dev", "a0"), "\n") {
		if strings.Contains(line, vips[1].String()+"/128") && strings.Contains(line, "tentative") {
			t.Fatalf("the IPv6 VIP waits for DAD: %s", line)
		}
	}
	// The VIPs never become the source of a's own connections to the
	// segment (for IPv6 they would by longest match, were they preferred).
	for dst, want := range map[string]string{"10.9.0.2": "10.9.0.1", "fd00:9::2": "fd00:9::1"} {
		if out := sh("-n", a, "route", "get", dst); !strings.Contains(out, " src "+want+" ") {
			t.Errorf("with the VIPs held, a's route to %s: %q, want source %s", dst, strings.TrimSpace(out), want)
		}
	}
	for _, v := range vips {
		eventually.NoError(t, 3*time.Second, func() error {
			out := sh("-n", b, "neigh", "show", v.String(), "dev", "b0")
			if !strings.Contains(out, "lladdr "+mac) {
				return fmt.Errorf("neighbour entry %q", strings.TrimSpace(out))
			}
			return nil
		}, fmt.Sprintf("%s's neighbour entry moved to %s", v, mac))
	}
}
