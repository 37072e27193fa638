package dnsserver

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/geo"
	"github.com/ternlb/tern/selector"
	"github.com/ternlb/tern/zones"
)

// testSnapshot builds the snapshot of testdata/tern.yaml the way the node
// does: config, zones, compiled pools.
func testSnapshot(t testing.TB) *Snapshot {
	t.Helper()
	cfg, err := config.Load("testdata/tern.yaml")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	set, ps := zones.Load(cfg)
	if len(ps) > 0 {
		t.Fatalf("zones: %v", ps)
	}
	pools, err := selector.Compile(cfg)
	if err != nil {
		t.Fatalf("pools: %v", err)
	}
	return &Snapshot{Zones: set, Pools: selector.NewTable(pools), NodeName: cfg.Node.Name, Version: "test"}
}

// poolIndex returns the index of pool name in snap.
func poolIndex(t testing.TB, snap *Snapshot, name string) int {
	t.Helper()
	for i, p := range snap.Pools.All() {
		if p != nil && p.Name == name {
			return i
		}
	}
	t.Fatalf("no pool %q", name)
	return -1
}

// withPool returns pools with pool i replaced by p.
func withPool(pools selector.Table, i int, p *selector.Pool) selector.Table {
	e := pools.Edit()
	e.Set(i, p)
	return e.Table()
}

// startServer runs a server on 127.0.0.1:0 for the test's lifetime. snap
// may be nil (nothing stored yet).
func startServer(t testing.TB, snap *Snapshot, o Options) (*Server, string) {
	t.Helper()
	if len(o.Addrs) == 0 {
		o.Addrs = []string{"127.0.0.1:0"}
	}
	if o.UDPSockets == 0 {
		o.UDPSockets = 2
	}
	s, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if snap != nil {
		s.Store(snap)
	}
	return s, runServer(t, s)
}

func runServer(t testing.TB, s *Server) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after its context ended")
		}
	})
	return s.Addrs()[0].String()
}

func newQuery(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	return m
}

func exchange(t testing.TB, netw, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: netw, Timeout: 5 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", netw, m.Question[0].Name, dns.Type(m.Question[0].Qtype), err)
	}
	if r.Id != m.Id {
		t.Fatalf("response id %d, query id %d", r.Id, m.Id)
	}
	return r
}

// rawExchange sends b over UDP and returns the raw response.
func rawExchange(t testing.TB, addr string, b []byte) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return buf[:n]
}

// rrStrings renders records as zone-file lines, sorted, for comparison.
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	slices.Sort(out)
	return out
}

func ecsOption(fam uint16, src uint8, addr string) *dns.EDNS0_SUBNET {
	return &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: fam, SourceNetmask: src, Address: net.ParseIP(addr)}
}

func withEDNS(m *dns.Msg, size uint16, opts ...dns.EDNS0) *dns.Msg {
	m.SetEdns0(size, false)
	o := m.IsEdns0()
	o.Option = append(o.Option, opts...)
	return m
}

func subnetOf(r *dns.Msg) *dns.EDNS0_SUBNET {
	o := r.IsEdns0()
	if o == nil {
		return nil
	}
	for _, e := range o.Option {
		if s, ok := e.(*dns.EDNS0_SUBNET); ok {
			return s
		}
	}
	return nil
}

// rawExchangeNet sends b over netw ("udp" or "tcp") and returns the raw
// response.
func rawExchangeNet(t testing.TB, netw, addr string, b []byte) []byte {
	t.Helper()
	if netw == "udp" {
		return rawExchange(t, addr, b)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(append([]byte{byte(len(b) >> 8), byte(len(b))}, b...)); err != nil {
		t.Fatal(err)
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		t.Fatalf("read: %v", err)
	}
	buf := make([]byte, int(l[0])<<8|int(l[1]))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	return buf
}

func unpack(t testing.TB, b []byte) *dns.Msg {
	t.Helper()
	r := new(dns.Msg)
	if err := r.Unpack(b); err != nil {
		t.Fatalf("response does not parse: %v", err)
	}
	return r
}

// geoSnapshot is the snapshot of bench/gen.sh's tern-geo configuration
// (zone geo.test): pool www by a country and continent map over two sites,
// with MaxMind's test database. The pool and map are gen.sh's, copied on
// purpose: BenchmarkHandlerGeo measures what make bench's geo leg serves.
func geoSnapshot(t testing.TB) *Snapshot {
	t.Helper()
	dbPath, err := filepath.Abs("../testdata/geoip/GeoIP2-City-Test.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	zone := "$ORIGIN geo.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 604800 60\n@ IN NS ns1\nns1 IN A 127.0.0.1\nstatic IN A 192.0.2.1\nwww 30 IN POOL web\n"
	yaml := `node: {name: bench-geo, dns: ["127.0.0.1:0"]}
geo:
  database: "` + dbPath + `"
  maps:
    regions:
      "continent:EU": [eu, us]
      "continent:NA": [us, eu]
      "country:GB": [eu]
      default: [us, eu]
sites:
  eu: {location: [51.5, -0.1]}
  us: {location: [38.9, -77.0]}
pools:
  web:
    policy: geo
    map: regions
    answers: 2
    members:
      - {address: 192.0.2.10, site: eu, weight: 3}
      - {address: 192.0.2.11, site: eu, weight: 2}
      - {address: 192.0.2.12, site: us}
      - {address: 192.0.2.13, site: us}
      - {address: "2001:db8::10", site: eu}
      - {address: "2001:db8::11", site: us}
zones:
  - file: geo.test.zone
`
	for name, body := range map[string]string{"geo.test.zone": zone, "tern.yaml": yaml} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(filepath.Join(dir, "tern.yaml"))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	set, ps := zones.Load(cfg)
	if len(ps) > 0 {
		t.Fatalf("zones: %v", ps)
	}
	db, err := geo.Open(cfg.HostPath(cfg.Geo.Database), geo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pools, err := selector.CompileLocated(cfg, db)
	if err != nil {
		t.Fatalf("pools: %v", err)
	}
	return &Snapshot{Zones: set, Pools: selector.NewTable(pools), NodeName: cfg.Node.Name, Version: "test"}
}
