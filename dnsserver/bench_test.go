package dnsserver

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// BenchmarkHandler measures the query path without sockets: parse, look
// up, select, pack into the worker's buffer.
func BenchmarkHandler(b *testing.B) {
	snap := testSnapshot(b)
	for _, bc := range []struct {
		name string
		m    *dns.Msg
	}{
		{"static", newQuery("static.example.test.", dns.TypeA)},
		{"pool", newQuery("www.example.test.", dns.TypeA)},
		{"pool-ecs", withEDNS(newQuery("sticky.example.test.", dns.TypeA), 1232, ecsOption(1, 24, "198.51.100.0"))},
		{"nxdomain", newQuery("nothere.example.test.", dns.TypeA)},
		{"cname", newQuery("alias.example.test.", dns.TypeA)},
		{"referral", newQuery("a.sub.example.test.", dns.TypeA)},
		{"ns-additional", newQuery("example.test.", dns.TypeNS)},
		{"cookie", withEDNS(newQuery("static.example.test.", dns.TypeA), 1232, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			msg := packMsg(b, bc.m)
			w := newWorker(1232, slog.New(slog.NewTextHandler(io.Discard, nil)))
			cur := &served{snap: snap}
			src := netip.MustParseAddr("192.0.2.99")
			benchHandle(b, w, cur, msg, src)
		})
	}
}

// benchHandle measures w answering msg from src. Thread CPU time is
// steadier than wall time on a shared machine: it reports both.
func benchHandle(b *testing.B, w *worker, cur *served, msg []byte, src netip.Addr) {
	benchHandleEach(b, w, cur, [][]byte{msg}, src)
}

func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// BenchmarkServerUDP measures whole round trips over loopback, client
// included: a rough figure; make bench measures the server alone.
func BenchmarkServerUDP(b *testing.B) {
	_, addr := startServer(b, testSnapshot(b), Options{UDPSockets: 1})
	c, err := net.Dial("udp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := packMsg(b, newQuery("www.example.test.", dns.TypeA))
	buf := make([]byte, 1500)
	b.ReportAllocs()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for b.Loop() {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write(msg)
		if _, err := c.Read(buf); err != nil || ctx.Err() != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandlerCounted is the pool query with what a server adds:
// metrics counted and RRL on (an exempt-free, never-limiting rate).
func BenchmarkHandlerCounted(b *testing.B) {
	snap := testSnapshot(b)
	msg := packMsg(b, newQuery("www.example.test.", dns.TypeA))
	w := newWorker(1232, slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.stats = newStats()
	w.rrl = newLimiter(RRL{ResponsesPerSecond: 10000})
	cur := &served{snap: snap}
	w.stats.index(snap, cur)
	cur.xfr, cur.serials = deriveSerials(snap, nil)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		src := netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}) // many networks
		if w.handle(cur, msg, src, false) == nil {
			b.Fatal("no response")
		}
	}
}

// BenchmarkHandlerSigned is the static query signed with TSIG: verified,
// answered and signed.
func BenchmarkHandlerSigned(b *testing.B) {
	snap := testSnapshot(b)
	s := &Server{stats: newStats()}
	p, err := s.buildPolicy(Options{TSIGKeys: []TSIGKey{{Name: "xfr", Secret: testSecret}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	msg, _ := signQuery(b, newQuery("static.example.test.", dns.TypeA), "xfr.", "", testSecret, time.Now())
	w := newWorker(1232, slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.keys = p.byWire
	cur := &served{snap: snap}
	src := netip.MustParseAddr("192.0.2.99")
	b.ReportAllocs()
	for b.Loop() {
		out := w.handle(cur, msg, src, false)
		if out == nil || w.ts.key == nil || w.ts.err != 0 {
			b.Fatal("not verified")
		}
	}
}

// BenchmarkHandlerGeo is make bench's geo leg without sockets: bench/gen.sh's
// geo pool (a map by country and continent over two sites, then weighted,
// two answers) with MaxMind's test database behind it, every query with an
// ECS option. gb is the leg's query (2.2.3.0/24, one GB network of the
// database); unmatched a /24 in no network of it; clients cycles through
// 64 client subnets, as a server sees many resolvers.
func BenchmarkHandlerGeo(b *testing.B) {
	snap := geoSnapshot(b)
	ecsQuery := func(qtype uint16, subnet string) []byte {
		return packMsg(b, withEDNS(newQuery("www.geo.test.", qtype), 1232, ecsOption(1, 24, subnet)))
	}
	var clients [][]byte
	for _, s := range []string{"2.2.3.0", "81.2.69.0", "175.16.199.0", "216.160.83.0", "89.160.20.0", "67.43.156.0", "214.0.1.0", "202.196.224.0"} {
		clients = append(clients, ecsQuery(dns.TypeA, s))
	}
	for i := len(clients); i < 64; i++ {
		clients = append(clients, ecsQuery(dns.TypeA, netip.AddrFrom4([4]byte{100, 64 + byte(i), byte(i * 7), 0}).String()))
	}
	for _, bc := range []struct {
		name    string
		msgs    [][]byte
		counted bool // with the server's counters on, as it runs
	}{
		{"gb", [][]byte{ecsQuery(dns.TypeA, "2.2.3.0")}, false},
		{"gb-counted", [][]byte{ecsQuery(dns.TypeA, "2.2.3.0")}, true},
		{"gb-aaaa", [][]byte{ecsQuery(dns.TypeAAAA, "2.2.3.0")}, false},
		{"unmatched", [][]byte{ecsQuery(dns.TypeA, "81.2.69.0")}, false},
		{"clients", clients, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := newWorker(1232, slog.New(slog.NewTextHandler(io.Discard, nil)))
			cur := &served{snap: snap}
			if bc.counted {
				w.stats = newStats()
				w.stats.index(snap, cur)
			}
			src := netip.MustParseAddr("192.0.2.99")
			benchHandleEach(b, w, cur, bc.msgs, src)
		})
	}
}

// benchHandleEach is benchHandle over several requests in turn.
func benchHandleEach(b *testing.B, w *worker, cur *served, msgs [][]byte, src netip.Addr) {
	b.ReportAllocs()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPU()
	for i := 0; b.Loop(); i++ {
		if w.handle(cur, msgs[i%len(msgs)], src, false) == nil {
			b.Fatal("no response")
		}
	}
	if cpu := threadCPU() - start; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// evictSum keeps BenchmarkHandlerCold's walk from being optimized away.
var evictSum byte

// BenchmarkHandlerCold is a query answered after its core did other work,
// as at a low rate where the caches hold the kernel's and other
// processes' lines by the time the next query comes: before each query
// it reads through evict bytes (more than this machine's L2), and only the
// handler's time is counted (cold-ns/op, each query timed alone; the
// walk is excluded). Pool against geo says whether a geo query's extra
// memory (network cache, geo table) costs misses a warm benchmark hides.
func BenchmarkHandlerCold(b *testing.B) {
	const evict = 4 << 20
	buf := make([]byte, evict)
	snap, gsnap := testSnapshot(b), geoSnapshot(b)
	for _, bc := range []struct {
		name string
		snap *Snapshot
		m    *dns.Msg
	}{
		{"static", snap, newQuery("static.example.test.", dns.TypeA)},
		{"pool", snap, newQuery("www.example.test.", dns.TypeA)},
		{"geo-gb", gsnap, withEDNS(newQuery("www.geo.test.", dns.TypeA), 1232, ecsOption(1, 24, "2.2.3.0"))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			msg := packMsg(b, bc.m)
			w := newWorker(1232, slog.New(slog.NewTextHandler(io.Discard, nil)))
			cur := &served{snap: bc.snap}
			src := netip.MustParseAddr("192.0.2.99")
			var took time.Duration
			for b.Loop() {
				// Read one byte of each line: the walk evicts without
				// leaving dirty lines to write back during the query.
				var sum byte
				for i := 0; i < evict; i += 64 {
					sum += buf[i]
				}
				evictSum += sum
				t := time.Now()
				if w.handle(cur, msg, src, false) == nil {
					b.Fatal("no response")
				}
				took += time.Since(t)
			}
			b.ReportMetric(float64(took.Nanoseconds())/float64(b.N), "cold-ns/op")
		})
	}
}
