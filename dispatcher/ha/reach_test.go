package ha

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternlb/tern/internal/eventually"
	"github.com/ternlb/tern/internal/testnet"
)

// Reach reports down only after Fall failures in a row, and up again after
// one success; with two targets, one down is enough.
func TestReachFallAndRecover(t *testing.T) {
	var gwDown atomic.Bool
	gw := netip.MustParseAddr("10.0.0.1")
	other := netip.MustParseAddr("10.0.0.2")
	var probes atomic.Int64
	r := &Reach{
		Targets: []Target{
			{Addr: gw, Type: "arp", Interval: 5 * time.Millisecond, Timeout: 5 * time.Millisecond, Fall: 3},
			{Addr: other, Type: "icmp", Interval: 5 * time.Millisecond, Timeout: 5 * time.Millisecond, Fall: 1},
		},
		Probe: func(_ context.Context, tg Target) error {
			if tg.Addr == gw {
				probes.Add(1)
				if gwDown.Load() {
					return errors.New("no reply")
				}
			}
			return nil
		},
	}
	var mu sync.Mutex
	var reports []bool
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx, func(ok bool) { mu.Lock(); reports = append(reports, ok); mu.Unlock() }) }()
	got := func() []bool { mu.Lock(); defer mu.Unlock(); return append([]bool(nil), reports...) }

	eventually.True(t, time.Second, func() bool { return probes.Load() > 3 }, "a few probes")
	if len(got()) != 0 {
		t.Fatalf("reports while reachable: %v", got())
	}
	gwDown.Store(true)
	start := probes.Load()
	eventually.True(t, time.Second, func() bool { return len(got()) == 1 }, "down reported")
	if n := probes.Load() - start; n < 3 {
		t.Fatalf("down after %d failed probes, want 3", n)
	}
	if got()[0] {
		t.Fatal("first report is not down")
	}
	gwDown.Store(false)
	eventually.True(t, time.Second, func() bool { return len(got()) == 2 }, "up reported")
	if !got()[1] {
		t.Fatal("second report is not up")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestReachTCPProbe(t *testing.T) {
	ln := testnet.Listen(t, "127.0.0.1:0", nil)
	ap := ln.Addr().(*net.TCPAddr).AddrPort()
	tg := Target{Addr: ap.Addr(), Port: int(ap.Port()), Type: "tcp"}
	r := &Reach{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := r.probe(ctx, tg); err != nil {
		t.Fatalf("probe of a listening port: %v", err)
	}
	ln.Close()
	if err := r.probe(ctx, tg); err == nil {
		t.Fatal("probe of a closed port succeeded")
	}
}

func TestReachICMPLoopback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := pingICMP(ctx, netip.MustParseAddr("127.0.0.1"))
	if err != nil && errors.Is(err, errNoReply) {
		t.Fatalf("ping 127.0.0.1: %v", err)
	}
	if err != nil {
		t.Skipf("no raw ICMP socket here: %v", err)
	}
}

func TestInetChecksum(t *testing.T) {
	// An echo request with its checksum filled in sums to zero.
	msg := []byte{8, 0, 0, 0, 0x12, 0x34, 0, 1, 't', 'e', 'r', 'n', 'x'}
	c := inetChecksum(msg)
	msg[2], msg[3] = byte(c>>8), byte(c)
	if inetChecksum(msg) != 0 {
		t.Fatalf("checksum %04x does not verify", c)
	}
}
