package ha

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternlb/tern/internal/eventually"
)

// fakeIface records what an Agent does to the host.
type fakeIface struct {
	mu        sync.Mutex
	vips      map[netip.Addr]bool
	announced map[netip.Addr]int
	forward   map[string]bool // from OnChange
}

func newFake() *fakeIface {
	return &fakeIface{vips: map[netip.Addr]bool{}, announced: map[netip.Addr]int{}, forward: map[string]bool{}}
}

func (f *fakeIface) AddVIPs(_ context.Context, vs []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range vs {
		f.vips[v] = true
	}
	return nil
}

func (f *fakeIface) RemoveVIPs(_ context.Context, vs []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range vs {
		delete(f.vips, v)
	}
	return nil
}

func (f *fakeIface) Announce(_ context.Context, vs []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range vs {
		if !f.vips[v] {
			return fmt.Errorf("announce %s, which is not on the interface", v)
		}
		f.announced[v]++
	}
	return nil
}

func (f *fakeIface) onChange(group string, held bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forward[group] = held
}

func (f *fakeIface) announcements(v netip.Addr) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.announced[v]
}

func (f *fakeIface) has(v netip.Addr) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.vips[v]
}

func (f *fakeIface) forwards(g string) (held, known bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	held, known = f.forward[g]
	return
}

// muteConn drops outgoing heartbeats while muted, to model a dispatcher
// that went silent (or a partition) without closing anything.
type muteConn struct {
	net.PacketConn
	muted atomic.Bool
}

func (c *muteConn) WriteTo(b []byte, a net.Addr) (int, error) {
	if c.muted.Load() {
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, a)
}

var (
	vipA = netip.MustParseAddr("192.0.2.1")
	vipB = netip.MustParseAddr("192.0.2.2")
)

type node struct {
	id     string
	conn   *muteConn
	iface  *fakeIface
	cancel context.CancelFunc
	done   chan error
}

func listen(t *testing.T, addr string) *muteConn {
	t.Helper()
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return &muteConn{PacketConn: c}
}

func start(t *testing.T, id string, conn *muteConn, peer netip.AddrPort, prioA, prioB uint8, iface *fakeIface) *node {
	t.Helper()
	a, err := NewAgent(Config{
		ID: id,
		Groups: []AgentGroup{
			{Group: Group{Name: "a", Priority: prioA, Preempt: true}, VIPs: []netip.Addr{vipA}},
			{Group: Group{Name: "b", Priority: prioB, Preempt: true}, VIPs: []netip.Addr{vipB}},
		},
		Interval:  40 * time.Millisecond,
		DeadAfter: 3,
		Conn:      conn,
		Peers:     []netip.AddrPort{peer},
		Key:       testKey,
		Iface:     iface,
		OnChange:  iface.onChange,
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{id: id, conn: conn, iface: iface, cancel: cancel, done: make(chan error, 1)}
	go func() { n.done <- a.Run(ctx) }()
	t.Cleanup(n.stop)
	return n
}

func (n *node) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	<-n.done
	n.cancel = nil
}

func addrOf(c net.PacketConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// owns says n holds exactly the given VIPs and forwards exactly their groups.
func owns(n *node, a, b bool) func() bool {
	return func() bool {
		fa, ka := n.iface.forwards("a")
		fb, kb := n.iface.forwards("b")
		return n.iface.has(vipA) == a && n.iface.has(vipB) == b && ka && kb && fa == a && fb == b
	}
}

// TestAgentsOverLoopback runs two agents over real UDP sockets through
// mutual HA: each primary for one group, failover on silence, split brain
// and its healing, shutdown handing over at once, return with preemption.
func TestAgentsOverLoopback(t *testing.T) {
	c1, c2 := listen(t, "127.0.0.1:0"), listen(t, "127.0.0.1:0")
	addr1 := addrOf(c1)
	n1 := start(t, "n1", c1, addrOf(c2), 200, 100, newFake())
	n2 := start(t, "n2", c2, addr1, 100, 200, newFake())

	eventually.True(t, 2*time.Second, func() bool { return owns(n1, true, false)() && owns(n2, false, true)() }, "n1 primary for a, n2 for b")
	if n1.iface.announcements(vipA) == 0 || n2.iface.announcements(vipB) == 0 {
		t.Fatal("VIPs taken without gratuitous ARP")
	}

	// n1 goes silent: n2 takes a after 3 missed heartbeats (120ms).
	n1.conn.muted.Store(true)
	took := eventually.True(t, time.Second, owns(n2, true, true), "n2 takes a")
	t.Logf("n2 took group a %v after n1 went silent", took)
	// n1 still hears n2 and keeps a (it outranks n2): split brain.
	if !owns(n1, true, false)() {
		t.Fatal("n1 gave up a to a peer of lower rank")
	}
	// n1 is heard again: n2 sees a higher-ranked holder and releases a.
	n1.conn.muted.Store(false)
	eventually.True(t, time.Second, func() bool { return owns(n2, false, true)() && owns(n1, true, false)() }, "split brain heals")

	// n1 shuts down: it resigns (its last heartbeat says priority 0, which
	// TestMachine shows is acted on at once) and n2 takes a.
	n1.stop()
	if n1.iface.has(vipA) {
		t.Fatal("n1 kept its VIP after shutdown")
	}
	eventually.True(t, time.Second, owns(n2, true, true), "n2 takes a after n1 resigns")

	// n1 comes back on the same port: with preemption it takes a back.
	c1b := listen(t, addr1.String())
	n1b := start(t, "n1", c1b, addrOf(c2), 200, 100, newFake())
	eventually.True(t, 2*time.Second, func() bool { return owns(n1b, true, false)() && owns(n2, false, true)() }, "n1 preempts a again")
}

// A heartbeat under another key is ignored: the node takes its groups as
// if alone.
func TestAgentIgnoresWrongKey(t *testing.T) {
	c1 := listen(t, "127.0.0.1:0")
	liar, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer liar.Close()
	n1 := start(t, "n1", c1, addrOf(liar), 100, 100, newFake())
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		// A peer of higher rank holding both groups, signed with the wrong key.
		for seq := uint64(1); ; seq++ {
			hb := Heartbeat{ID: "n9", Seq: seq, Time: time.Now(), Interval: 20 * time.Millisecond,
				Groups: []GroupState{{"a", 255, true}, {"b", 255, true}}}
			pkt, _ := Encode(nil, hb, []byte("not-the-shared-key!!"))
			liar.WriteTo(pkt, net.UDPAddrFromAddrPort(addrOf(c1)))
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	eventually.True(t, 2*time.Second, owns(n1, true, true), "n1 takes both groups")
}

func TestNewAgentErrors(t *testing.T) {
	ok := Config{ID: "n1", Key: testKey, Iface: newFake(), Groups: []AgentGroup{{Group: Group{Name: "a", Priority: 1}}}}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"no id", func(c *Config) { c.ID = "" }},
		{"short key", func(c *Config) { c.Key = []byte("short") }},
		{"no iface", func(c *Config) { c.Iface = nil }},
		{"zero priority", func(c *Config) { c.Groups[0].Priority = 0 }},
		{"duplicate group", func(c *Config) { c.Groups = append(c.Groups, c.Groups[0]) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			c.Groups = slices.Clone(ok.Groups)
			tc.mod(&c)
			if _, err := NewAgent(c); err == nil {
				t.Fatal("NewAgent accepted a bad config")
			}
		})
	}
	if _, err := NewAgent(ok); err != nil {
		t.Fatalf("good config: %v", err)
	}
}

// An action slower than the peers' dead time (the control plane swapping
// large tables in) must not stop heartbeats: the peer must not take over
// from a dispatcher that is merely busy taking over.
func TestAgentSlowActionKeepsHeartbeats(t *testing.T) {
	c1, c2 := listen(t, "127.0.0.1:0"), listen(t, "127.0.0.1:0")
	slow := newFake()
	var everTook atomic.Bool
	watch := newFake()
	a1, err := NewAgent(Config{
		ID: "n1", Interval: 50 * time.Millisecond, DeadAfter: 3, Conn: c1, Peers: []netip.AddrPort{addrOf(c2)}, Key: testKey,
		Groups: []AgentGroup{{Group: Group{Name: "a", Priority: 200}, VIPs: []netip.Addr{vipA}}},
		Iface:  slow,
		OnChange: func(g string, held bool) {
			if held {
				time.Sleep(600 * time.Millisecond) // four dead times
			}
			slow.onChange(g, held)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	a2, err := NewAgent(Config{
		ID: "n2", Interval: 50 * time.Millisecond, DeadAfter: 3, Conn: c2, Peers: []netip.AddrPort{addrOf(c1)}, Key: testKey,
		Groups: []AgentGroup{{Group: Group{Name: "a", Priority: 100}, VIPs: []netip.Addr{vipA}}},
		Iface:  watch,
		OnChange: func(g string, held bool) {
			if held {
				everTook.Store(true)
			}
			watch.onChange(g, held)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- a1.Run(ctx) }()
	go func() { done <- a2.Run(ctx) }()
	defer func() { cancel(); <-done; <-done }()
	eventually.True(t, 3*time.Second, func() bool { held, _ := slow.forwards("a"); return held }, "n1 takes a")
	eventually.True(t, time.Second, func() bool { _, known := watch.forwards("a"); return known }, "n2 settles as backup")
	if everTook.Load() {
		t.Fatal("n2 took the group while n1 was busy taking it")
	}
}

type logBuf struct {
	mu sync.Mutex
	b  []byte
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// Peers whose configuration digests differ are reported (their Maglev
// tables would differ); equal ones are not.
func TestAgentConfigDigest(t *testing.T) {
	for _, tc := range []struct {
		name   string
		d1, d2 uint64
		warn   bool
	}{
		{"same", 7, 7, false},
		{"different", 7, 8, true},
		{"peer sends none", 7, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c1, c2 := listen(t, "127.0.0.1:0"), listen(t, "127.0.0.1:0")
			var logs logBuf
			mk := func(id string, conn net.PacketConn, peer netip.AddrPort, digest uint64, log *slog.Logger) *Agent {
				a, err := NewAgent(Config{
					ID: id, Interval: 20 * time.Millisecond, Conn: conn, Peers: []netip.AddrPort{peer}, Key: testKey,
					Groups: []AgentGroup{{Group: Group{Name: "a", Priority: 100}}}, Iface: newFake(),
					ConfigDigest: digest, Logger: log,
				})
				if err != nil {
					t.Fatal(err)
				}
				return a
			}
			a1 := mk("n1", c1, addrOf(c2), tc.d1, slog.New(slog.NewTextHandler(&logs, nil)))
			a2 := mk("n2", c2, addrOf(c1), tc.d2, nil)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 2)
			go func() { done <- a1.Run(ctx) }()
			go func() { done <- a2.Run(ctx) }()
			eventually.True(t, 2*time.Second, func() bool { return strings.Contains(logs.String(), "ha: ") }, "a decision")
			cancel()
			<-done
			<-done
			if got := strings.Contains(logs.String(), "differ from ours"); got != tc.warn {
				t.Fatalf("warned %v, want %v:\n%s", got, tc.warn, logs.String())
			}
		})
	}
}
