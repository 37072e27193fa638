package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/ternlb/tern/internal/nsrun"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/ternlb/tern/internal/eventually"
	"github.com/urfave/cli/v2"
	"github.com/vishvananda/netlink"
)

// xdpProg is the id of the XDP program on dev in namespace ns, 0 if none.
func xdpProg(t *testing.T, ns, dev string) uint32 {
	t.Helper()
	var id uint32
	if err := nsrun.Do(ns, func() error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return err
		}
		if x := l.Attrs().Xdp; x != nil && x.Attached {
			id = x.ProgId
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestDecapCommand runs `tern decap` in a namespace until its context ends:
// bad arguments refused, attached while it runs, detached after.
func TestDecapCommand(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, XDP)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command (iproute2)")
	}
	if err := features.HaveProgramType(ebpf.XDP); err != nil {
		t.Skipf("no XDP here: %v", err)
	}
	ns := fmt.Sprintf("tern-decapcmd-%d", os.Getpid())
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"},
		{"-n", ns, "link", "set", "eth0", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
		if args[0] == "netns" {
			t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		}
	}
	app := &cli.App{Name: "tern", Commands: []*cli.Command{decapCommand()}}
	const vip = "192.0.2.10"
	for _, args := range [][]string{
		{"--iface", "eth0", "--vip", "not-an-ip"},
		{"--iface", "eth0", "--vip", vip, "--xdp-mode", "turbo"},
		{"--iface", "eth9", "--vip", vip},
	} {
		if err := nsrun.Do(ns, func() error { return app.Run(append([]string{"tern", "decap"}, args...)) }); err == nil {
			t.Errorf("tern decap %v: no error", args)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- nsrun.Do(ns, func() error {
			return app.RunContext(ctx, []string{"tern", "decap", "--iface", "eth0", "--vip", vip, "--vip", "192.0.2.11"})
		})
	}()
	eventually.True(t, 10*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("tern decap ended early: %v", err)
		default:
		}
		return xdpProg(t, ns, "eth0") != 0
	}, "tern decap attached")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("tern decap: %v", err)
	}
	if id := xdpProg(t, ns, "eth0"); id != 0 {
		t.Fatalf("program %d still attached after tern decap ended", id)
	}
}
