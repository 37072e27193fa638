package probes

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternlb/tern/internal/eventually"
	"github.com/ternlb/tern/internal/testnet"
)

// countingServer accepts connections until the test ends and counts them.
func countingServer(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	l := testnet.Listen(t, "127.0.0.1:0", func(c net.Conn) { n.Add(1); c.Close() })
	return l.Addr().String(), &n
}

// A member the filter rejects gets no connection at all and is not awaited
// by the first round; once the filter takes it (the assignment changed) it
// is probed at its next slot.
func TestFilter(t *testing.T) {
	mine, mineConns := countingServer(t)
	other, otherConns := countingServer(t)
	c := testConfig(t, "  c: {type: tcp, port: 1, interval: 100ms, timeout: 90ms}\n",
		"  p:\n    check: c\n    initial: down\n    members:\n      - {address: 192.0.2.1, probe: \""+mine+"\"}\n      - {address: 192.0.2.2, probe: \""+other+"\"}\n")
	var takeOther atomic.Bool
	var asked atomic.Int64
	p, err := New(c, Options{Filter: func(pool, member string) bool {
		asked.Add(1)
		if pool != "p" {
			t.Errorf("filter asked of pool %q", pool)
		}
		return member == "192.0.2.1" || takeOther.Load()
	}})
	if err != nil {
		t.Fatal(err)
	}
	start(t, p)
	// The rejected member is not awaited: the round completes at once.
	if err := p.FirstRound(context.Background(), 3*time.Second); err != nil {
		t.Fatalf("first round: %v", err)
	}
	eventually.True(t, 5*time.Second, func() bool { return mineConns.Load() >= 3 }, "three probes of the assigned member")
	if n := otherConns.Load(); n != 0 {
		t.Fatalf("the unassigned member got %d connections, want none", n)
	}
	if v, _ := p.Verdict("p", "192.0.2.2"); v.Probed || v.Up {
		t.Fatalf("the unassigned member: %+v, want its initial state (down, unprobed)", v)
	}
	if v, _ := p.Verdict("p", "192.0.2.1"); !v.Probed || !v.Up {
		t.Fatalf("the assigned member: %+v, want probed up", v)
	}
	takeOther.Store(true)
	eventually.True(t, 5*time.Second, func() bool {
		v, _ := p.Verdict("p", "192.0.2.2")
		return otherConns.Load() > 0 && v.Probed && v.Up
	}, "the newly assigned member probed")
	if asked.Load() == 0 {
		t.Fatal("filter never asked")
	}
}
