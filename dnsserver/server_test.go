package dnsserver

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/selector"
	"golang.org/x/sys/unix"
)

func TestNoSnapshotServfail(t *testing.T) {
	s, addr := startServer(t, nil, Options{})
	for _, netw := range []string{"udp", "tcp"} {
		if r := exchange(t, netw, addr, newQuery("static.example.test.", dns.TypeA)); r.Rcode != dns.RcodeServerFailure {
			t.Errorf("%s before Store: rcode %s, want SERVFAIL", netw, dns.RcodeToString[r.Rcode])
		}
	}
	snap := testSnapshot(t)
	s.Store(snap)
	if r := exchange(t, "udp", addr, newQuery("static.example.test.", dns.TypeA)); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("after Store: %v", r)
	}
	// A new snapshot takes over for the next query.
	next := *snap
	next.NodeName = "renamed"
	s.Store(&next)
	m := newQuery("id.server.", dns.TypeTXT)
	m.Question[0].Qclass = dns.ClassCHAOS
	if r := exchange(t, "udp", addr, m); len(r.Answer) != 1 || r.Answer[0].(*dns.TXT).Txt[0] != "renamed" {
		t.Errorf("after a second Store: %v", r.Answer)
	}
}

// TestPanicRecovered serves a snapshot whose "web" pool is nil: selecting
// from it panics. The query gets SERVFAIL, the panic is logged and the
// server goes on answering.
func TestPanicRecovered(t *testing.T) {
	snap := testSnapshot(t)
	bad := *snap
	bad.Pools = withPool(snap.Pools, poolIndex(t, snap, "web"), nil)
	var logs syncBuffer
	_, addr := startServer(t, &bad, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for _, netw := range []string{"udp", "tcp"} {
		for i := 0; i < 3; i++ {
			if r := exchange(t, netw, addr, newQuery("www.example.test.", dns.TypeA)); r.Rcode != dns.RcodeServerFailure || len(r.Question) != 1 {
				t.Fatalf("%s: %v, want SERVFAIL with the question", netw, r)
			}
			if r := exchange(t, netw, addr, newQuery("static.example.test.", dns.TypeA)); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				t.Fatalf("%s: after a panic: %v", netw, r)
			}
		}
	}
	if !strings.Contains(logs.String(), "panic while answering") || !strings.Contains(logs.String(), "www.example.test.") {
		t.Errorf("panic not logged: %q", logs.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestReusePortSockets(t *testing.T) {
	s, addr := startServer(t, testSnapshot(t), Options{UDPSockets: 4})
	if len(s.udp) != 4 {
		t.Fatalf("%d UDP sockets, want 4", len(s.udp))
	}
	for i, u := range s.udp {
		if got := u.addr.String(); got != addr {
			t.Errorf("socket %d on %s, want %s", i, got, addr)
		}
		v, err := u.sockoptInt(unix.SOL_SOCKET, unix.SO_REUSEPORT)
		if err != nil || v != 1 {
			t.Errorf("socket %d: SO_REUSEPORT %d %v", i, v, err)
		}
	}
	// Queries from many source ports land on different sockets; each is
	// answered.
	for i := 0; i < 20; i++ {
		if r := exchange(t, "udp", addr, newQuery("static.example.test.", dns.TypeA)); len(r.Answer) != 1 {
			t.Fatalf("query %d: %v", i, r)
		}
	}
	// The default is one socket per CPU.
	d, _ := startServer(t, nil, Options{UDPSockets: -1})
	if want := len(d.udp); want < 1 {
		t.Errorf("default: %d sockets", want)
	}
}

func writeTCPQuery(t *testing.T, w io.Writer, m *dns.Msg) {
	t.Helper()
	b := packMsg(t, m)
	if _, err := w.Write(append([]byte{byte(len(b) >> 8), byte(len(b))}, b...)); err != nil {
		t.Fatal(err)
	}
}

func readTCPResponse(t *testing.T, r io.Reader) *dns.Msg {
	t.Helper()
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		t.Fatalf("read length: %v", err)
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatalf("read message: %v", err)
	}
	var m dns.Msg
	if err := m.Unpack(b); err != nil {
		t.Fatal(err)
	}
	return &m
}

func TestTCPPipelined(t *testing.T) {
	_, addr := startServer(t, testSnapshot(t), Options{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	names := []string{"static.example.test.", "www.example.test.", "nothere.example.test.", "alias.example.test."}
	// All queries in one write: the server must answer every one, in order.
	var buf bytes.Buffer
	var ids []uint16
	for _, n := range names {
		m := newQuery(n, dns.TypeA)
		ids = append(ids, m.Id)
		writeTCPQuery(t, &buf, m)
	}
	if _, err := c.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		r := readTCPResponse(t, c)
		if r.Id != ids[i] || r.Question[0].Name != n {
			t.Errorf("response %d: id %d %s, want %d %s", i, r.Id, r.Question[0].Name, ids[i], n)
		}
	}
	// A query split across writes is answered too.
	b := packMsg(t, newQuery("static.example.test.", dns.TypeA))
	frame := append([]byte{byte(len(b) >> 8), byte(len(b))}, b...)
	c.Write(frame[:1])
	c.Write(frame[1:10])
	c.Write(frame[10:])
	if r := readTCPResponse(t, c); len(r.Answer) != 1 {
		t.Errorf("split query: %v", r)
	}
}

func TestTCPIdleTimeout(t *testing.T) {
	_, addr := startServer(t, testSnapshot(t), Options{TCPIdle: 200 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	writeTCPQuery(t, c, newQuery("static.example.test.", dns.TypeA))
	readTCPResponse(t, c)
	// Then stay idle: the server closes the connection.
	_, err = c.Read(make([]byte, 1))
	if !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: read %v, want EOF (closed by the server)", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("closed after %v, before the idle timeout", d)
	}
}

func TestTCPConnectionLimit(t *testing.T) {
	_, addr := startServer(t, testSnapshot(t), Options{TCPMaxConns: 2})
	var open []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		// A round trip proves the server has taken the connection.
		writeTCPQuery(t, c, newQuery("static.example.test.", dns.TypeA))
		readTCPResponse(t, c)
		open = append(open, c)
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetDeadline(time.Now().Add(5 * time.Second))
	writeTCPQuery(t, extra, newQuery("static.example.test.", dns.TypeA))
	if _, err := extra.Read(make([]byte, 1)); err == nil {
		t.Errorf("a connection over the limit was served")
	}
	// The connections within the limit still work; closing one frees a slot.
	for _, c := range open {
		writeTCPQuery(t, c, newQuery("static.example.test.", dns.TypeA))
		readTCPResponse(t, c)
	}
	open[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(time.Second))
		writeTCPQuery(t, c, newQuery("static.example.test.", dns.TypeA))
		var l [2]byte
		_, err = io.ReadFull(c, l[:])
		c.Close()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot freed after closing a connection")
		}
	}
}

func TestShutdown(t *testing.T) {
	s, err := New(Options{Addrs: []string{"127.0.0.1:0", "[::1]:0"}, UDPSockets: 2})
	if err != nil {
		if strings.Contains(err.Error(), "::1") {
			t.Skip("no IPv6 loopback")
		}
		t.Fatal(err)
	}
	s.Store(testSnapshot(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Ready()
	if len(s.Addrs()) != 2 {
		t.Fatalf("addrs %v", s.Addrs())
	}
	for _, a := range s.Addrs() {
		exchange(t, "udp", a.String(), newQuery("static.example.test.", dns.TypeA))
	}
	// An idle TCP connection does not hold shutdown up.
	c, err := net.Dial("tcp", s.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	writeTCPQuery(t, c, newQuery("static.example.test.", dns.TypeA))
	c.SetDeadline(time.Now().Add(5 * time.Second))
	readTCPResponse(t, c)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("TCP connection still open after shutdown")
	}
	if err := s.Run(context.Background()); err == nil {
		t.Errorf("a second Run succeeded")
	}
	// The ports are free again (no SO_REUSEPORT here: a socket of ours
	// left open would make these fail).
	l, err := net.Listen("tcp", s.Addrs()[0].String())
	if err != nil {
		t.Errorf("TCP port still held: %v", err)
	} else {
		l.Close()
	}
	u, err := net.ListenPacket("udp", s.Addrs()[0].String())
	if err != nil {
		t.Errorf("UDP port still held: %v", err)
	} else {
		u.Close()
	}
}

func TestNewErrors(t *testing.T) {
	for _, o := range []Options{
		{},
		{Addrs: []string{"nonsense"}},
		{Addrs: []string{"127.0.0.1:0"}, UDPSize: 100},
	} {
		if s, err := New(o); err == nil {
			s.closeAll()
			t.Errorf("New(%+v) succeeded", o)
		}
	}
	// A port held by another program is an error naming the address.
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := New(Options{Addrs: []string{l.LocalAddr().String()}}); err == nil || !strings.Contains(err.Error(), l.LocalAddr().String()) {
		t.Errorf("New on a held port: %v", err)
	}
}

// TestWildcardSource serves on the unspecified address and asks on a
// second loopback address: the answer must come from the address the
// query went to, or the client's connected socket never sees it.
func TestWildcardSource(t *testing.T) {
	for _, tc := range []struct{ listen, ask string }{
		{"0.0.0.0:0", "127.0.0.2"},
		{"[::]:0", "127.0.0.3"},
		{"[::]:0", "::1"},
		{":0", "127.0.0.4"},
	} {
		t.Run(tc.listen+" asked on "+tc.ask, func(t *testing.T) {
			s, err := New(Options{Addrs: []string{tc.listen}, UDPSockets: 1})
			if err != nil {
				t.Skipf("listen %s: %v", tc.listen, err)
			}
			s.Store(testSnapshot(t))
			addr := runServer(t, s)
			_, port, _ := net.SplitHostPort(addr)
			if c, err := net.Dial("udp", net.JoinHostPort(tc.ask, port)); err != nil {
				t.Skipf("no route to %s: %v", tc.ask, err)
			} else {
				c.Close()
			}
			r := exchange(t, "udp", net.JoinHostPort(tc.ask, port), newQuery("static.example.test.", dns.TypeA))
			if len(r.Answer) != 1 {
				t.Errorf("answer %v", r.Answer)
			}
		})
	}
}

// TestUDPBurst sends many queries without waiting: the reader takes them
// in batches and every one is answered, with its own id.
func TestUDPBurst(t *testing.T) {
	_, addr := startServer(t, testSnapshot(t), Options{UDPSockets: 1})
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	const n = 200
	want := map[uint16]string{}
	names := []string{"static.example.test.", "www.example.test.", "nothere.example.test."}
	for i := 0; i < n; i++ {
		m := newQuery(names[i%3], dns.TypeA)
		m.Id = uint16(i + 1)
		want[m.Id] = names[i%3]
		if _, err := c.Write(packMsg(t, m)); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 1500)
	for len(want) > 0 {
		k, err := c.Read(buf)
		if err != nil {
			t.Fatalf("%d queries unanswered: %v", len(want), err)
		}
		var r dns.Msg
		if err := r.Unpack(buf[:k]); err != nil {
			t.Fatal(err)
		}
		if name, ok := want[r.Id]; !ok || r.Question[0].Name != name {
			t.Fatalf("answer id %d for %s: unexpected", r.Id, r.Question[0].Name)
		}
		delete(want, r.Id)
	}
}

// TestConcurrentQueriesAndStores answers from several sockets and TCP
// connections at once while snapshots are swapped: run with -race, it
// proves workers share nothing but immutable snapshot data.
func TestConcurrentQueriesAndStores(t *testing.T) {
	snap := testSnapshot(t)
	s, addr := startServer(t, snap, Options{UDPSockets: 3})
	done := make(chan struct{})
	var wg sync.WaitGroup
	var failures sync.Map
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			netw := []string{"udp", "tcp"}[g%2]
			c := &dns.Client{Net: netw, Timeout: 5 * time.Second}
			qs := []struct {
				name string
				typ  uint16
			}{{"static.example.test.", dns.TypeTXT}, {"www.example.test.", dns.TypeA}, {"example.test.", dns.TypeMX},
				{"nothere.example.test.", dns.TypeA}, {"x.wild.example.test.", dns.TypeTXT}, {"a.sub.example.test.", dns.TypeA}}
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				q := qs[i%len(qs)]
				r, _, err := c.Exchange(newQuery(q.name, q.typ), addr)
				if err != nil || (r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError) {
					failures.Store(q.name, err)
				}
			}
		}()
	}
	for i := 0; i < 50; i++ {
		next := *snap
		next.Version = "v" + string(rune('a'+i%26))
		s.Store(&next)
		exchange(t, "udp", addr, newQuery("static.example.test.", dns.TypeA))
	}
	close(done)
	wg.Wait()
	failures.Range(func(k, v any) bool {
		t.Errorf("%v: %v", k, v)
		return true
	})
}

// Store indexes a snapshot afresh only when what it indexes changed:
// zones, given serials, pools' names and members; not for pool states.
func TestStoreReindexes(t *testing.T) {
	base := testSnapshot(t)
	i := poolIndex(t, base, "web")
	downed := func(s *Snapshot) *Snapshot {
		c := *s
		st := make([]selector.Status, len(s.Pools.At(i).Members))
		for j := range st {
			st[j] = selector.Status{Up: j != 0}
		}
		c.Pools = withPool(s.Pools, i, s.Pools.At(i).WithStatus(st))
		return &c
	}
	for _, tc := range []struct {
		name    string
		next    func(*Snapshot) *Snapshot
		reindex bool
		serial  uint32 // 0: the file's, 2026112201
	}{
		{"a pool's states", downed, false, 0},
		{"the version name", func(s *Snapshot) *Snapshot { c := *s; c.Version = "other"; return &c }, false, 0},
		{"serials given", func(s *Snapshot) *Snapshot {
			c := *s
			c.Serials = map[string]uint32{"example.test.": 77}
			return &c
		}, true, 77},
		{"pools compiled again", func(s *Snapshot) *Snapshot { c := *s; c.Pools = testSnapshot(t).Pools; return &c }, true, 0},
		{"zones loaded again", func(s *Snapshot) *Snapshot { c := *s; c.Zones = testSnapshot(t).Zones; return &c }, true, 0},
		{"a pool fewer", func(s *Snapshot) *Snapshot {
			c := *s
			var rest []*selector.Pool
			for j, p := range s.Pools.All() {
				if j > 0 {
					rest = append(rest, p)
				}
			}
			c.Pools = selector.NewTable(rest)
			return &c
		}, true, 2026112202},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Options{Addrs: []string{"127.0.0.1:0"}, UDPSockets: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer s.closeAll()
			s.Store(base)
			next := tc.next(base)
			s.Store(next)
			if got := s.Reindexed() == 1; got != tc.reindex {
				t.Fatalf("reindexed %d times, want reindex=%v", s.Reindexed(), tc.reindex)
			}
			cur := s.cur.Load()
			if cur.snap != next {
				t.Fatal("the new snapshot is not the one served")
			}
			want := cmp.Or(tc.serial, 2026112201)
			if zx := cur.xfr["example.test."]; zx == nil || zx.serial != want {
				t.Fatalf("example.test. not served with serial %d", want)
			}
			if p := next.Pools.At(poolIndex(t, next, "web")); len(cur.pstats[poolKey(p)]) != len(p.Members) {
				t.Fatalf("pool web has %d counters, want %d", len(cur.pstats[poolKey(p)]), len(p.Members))
			}
		})
	}
}
