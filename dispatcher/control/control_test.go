package control

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dispatcher/control/controltest"
	"github.com/ternlb/tern/dispatcher/datapath"
)

const ctlSize = 257

var (
	ctlWeb = datapath.ServiceKey{VIP: netip.MustParseAddr("192.0.2.10"), Port: 80, Proto: datapath.ProtoTCP}
	ctlDNS = datapath.ServiceKey{VIP: netip.MustParseAddr("192.0.2.20"), Port: 53, Proto: datapath.ProtoUDP}
)

func ctlServer(last byte, weight uint32) ServerSpec {
	return ServerSpec{
		Addr:   netip.AddrFrom4([4]byte{10, 1, 0, last}),
		MAC:    net.HardwareAddr{2, 0, 0, 0, 1, last},
		Weight: weight,
		Check:  "http",
	}
}

func ctlSpec() Spec {
	return Spec{TableSize: ctlSize, Services: []ServiceSpec{
		{Key: ctlWeb, Mode: datapath.ModeMAC, Servers: []ServerSpec{ctlServer(11, 1), ctlServer(12, 1), ctlServer(13, 2)}},
		{Key: ctlDNS, Mode: datapath.ModeIPIP, Servers: []ServerSpec{ctlServer(12, 1), ctlServer(21, 1)}},
	}}
}

func newCtlControl(t *testing.T, f *controltest.Maps, spec Spec, ownAll bool) *Control {
	t.Helper()
	c, err := New(f, spec, Options{OwnAll: ownAll})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctlReconcile(t *testing.T, c *Control) {
	t.Helper()
	if err := c.Reconcile(); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
}

func TestControlInstalls(t *testing.T) {
	f := controltest.NewMaps(t)
	c := newCtlControl(t, f, ctlSpec(), true)
	ctlReconcile(t, c)
	if len(f.Tables) != 2 || len(f.Tables[ctlWeb]) != ctlSize || len(f.Tables[ctlDNS]) != ctlSize {
		t.Fatalf("services %v", sortedKeys(f.Tables))
	}
	if f.Modes[ctlWeb].Mode != datapath.ModeMAC || f.Modes[ctlDNS].Mode != datapath.ModeIPIP {
		t.Fatalf("modes %v", f.Modes)
	}
	// 10.1.0.12 serves both services through one backend.
	if len(f.Backends) != 4 {
		t.Fatalf("%d backends, want 4", len(f.Backends))
	}
	sh := f.Shares(ctlWeb)
	if sh["10.1.0.11"] < 60 || sh["10.1.0.11"] > 68 || sh["10.1.0.13"] < 124 || sh["10.1.0.13"] > 132 {
		t.Fatalf("web shares %v, want about 64/64/128", sh)
	}
	// Nothing changed: nothing written.
	f.Calls = 0
	ctlReconcile(t, c)
	if f.Calls != 0 {
		t.Fatalf("idle ctlReconcile made %d calls", f.Calls)
	}
}

// Two dispatchers (or one restarted) with the same configuration write the
// same ids and tables, so a flow keeps its server across takeover and
// restart.
func TestControlSameTablesEverywhere(t *testing.T) {
	a, b := controltest.NewMaps(t), controltest.NewMaps(t)
	spec := ctlSpec()
	ctlReconcile(t, newCtlControl(t, a, spec, true))
	rev := ctlSpec()
	slices.Reverse(rev.Services[0].Servers)
	slices.Reverse(rev.Services)
	ctlReconcile(t, newCtlControl(t, b, rev, true))
	for _, k := range []datapath.ServiceKey{ctlWeb, ctlDNS} {
		if !slices.Equal(a.Tables[k], b.Tables[k]) {
			t.Fatalf("service %s: tables differ between dispatchers", k)
		}
	}
	for id, be := range a.Backends {
		if b.Backends[id].IP != be.IP {
			t.Fatalf("backend id %d is %s on one and %s on the other", id, be.IP, b.Backends[id].IP)
		}
	}
}

func TestControlHealthAndDrain(t *testing.T) {
	f := controltest.NewMaps(t)
	c := newCtlControl(t, f, ctlSpec(), true)
	ctlReconcile(t, c)
	before := f.Owners(ctlWeb)

	down := netip.MustParseAddr("10.1.0.11")
	c.SetHealth(down, "http", false)
	ctlReconcile(t, c)
	after := f.Owners(ctlWeb)
	if slices.Contains(after, "10.1.0.11") {
		t.Fatal("a server that is down still has slots")
	}
	moved := 0
	for i := range before {
		if before[i] != "10.1.0.11" && before[i] != after[i] {
			moved++
		}
	}
	if moved > ctlSize/50 {
		t.Fatalf("%d slots of servers still up moved", moved)
	}
	// The ctlDNS service does not list 10.1.0.11: untouched.
	if sh := f.Shares(ctlDNS); len(sh) != 2 {
		t.Fatalf("dns shares %v", sh)
	}
	// A verdict under another check name is another thing.
	c.SetHealth(netip.MustParseAddr("10.1.0.12"), "tcp", false)
	ctlReconcile(t, c)
	if f.Shares(ctlWeb)["10.1.0.12"] == 0 {
		t.Fatal("a verdict of an unrelated check drained a server")
	}
	// Back up: the original table returns exactly.
	c.SetHealth(down, "http", true)
	ctlReconcile(t, c)
	if !slices.Equal(f.Owners(ctlWeb), before) {
		t.Fatal("table after recovery differs from the original")
	}

	// Weight 0 in the configuration drains too.
	spec := ctlSpec()
	spec.Services[0].Servers[2].Weight = 0
	if err := c.SetSpec(spec); err != nil {
		t.Fatal(err)
	}
	ctlReconcile(t, c)
	if f.Shares(ctlWeb)["10.1.0.13"] != 0 {
		t.Fatal("weight 0 server has slots")
	}
	// All down: the service stays, with an empty table (drops, not passes).
	for _, s := range spec.Services[0].Servers {
		c.SetHealth(s.Addr, s.Check, false)
	}
	ctlReconcile(t, c)
	if tbl, ok := f.Tables[ctlWeb]; !ok || len(tbl) != 0 {
		t.Fatalf("all servers down: service present %v, table of %d", ok, len(tbl))
	}
}

func TestControlOwnership(t *testing.T) {
	f := controltest.NewMaps(t)
	c := newCtlControl(t, f, ctlSpec(), false)
	ctlReconcile(t, c)
	if len(f.Tables) != 0 || len(f.Backends) != 0 {
		t.Fatalf("HA undecided, nothing pinned: want nothing installed, got %v", sortedKeys(f.Tables))
	}
	c.SetOwned([]netip.Addr{ctlWeb.VIP}, true)
	ctlReconcile(t, c)
	if _, ok := f.Tables[ctlWeb]; !ok || len(f.Tables) != 1 || len(f.Backends) != 3 {
		t.Fatalf("after taking ctlWeb: services %v, %d backends", sortedKeys(f.Tables), len(f.Backends))
	}
	c.SetOwned([]netip.Addr{ctlDNS.VIP}, true)
	c.SetOwned([]netip.Addr{ctlWeb.VIP}, false)
	ctlReconcile(t, c)
	if _, ok := f.Tables[ctlDNS]; !ok || len(f.Tables) != 1 || len(f.Backends) != 2 {
		t.Fatalf("after moving to ctlDNS: services %v, %d backends", sortedKeys(f.Tables), len(f.Backends))
	}
}

// After a restart the pinned maps still forward; until HA decides, the
// new process keeps (and refreshes) what is there, and removes services
// the configuration no longer has.
func TestControlRestartKeepsPinned(t *testing.T) {
	f := controltest.NewMaps(t)
	ctlReconcile(t, newCtlControl(t, f, ctlSpec(), true))
	webTable := slices.Clone(f.Tables[ctlWeb])
	stale := datapath.ServiceKey{VIP: netip.MustParseAddr("192.0.2.99"), Port: 443, Proto: datapath.ProtoTCP}
	f.Tables[stale] = nil

	spec := ctlSpec()
	spec.Services = spec.Services[:1] // ctlDNS gone from the configuration
	c := newCtlControl(t, f, spec, false)
	f.Calls = 0
	ctlReconcile(t, c)
	if !slices.Equal(f.Tables[ctlWeb], webTable) {
		t.Fatal("restart changed the table of a pinned service")
	}
	if _, ok := f.Tables[stale]; ok {
		t.Fatal("stale pinned service kept")
	}
	if _, ok := f.Tables[ctlDNS]; ok {
		t.Fatal("service gone from the configuration kept")
	}
	// HA then says this node is backup: stop forwarding.
	c.SetOwned([]netip.Addr{ctlWeb.VIP}, false)
	ctlReconcile(t, c)
	if len(f.Tables) != 0 {
		t.Fatalf("backup still forwards %v", sortedKeys(f.Tables))
	}
}

func TestControlServerChanges(t *testing.T) {
	f := controltest.NewMaps(t)
	c := newCtlControl(t, f, ctlSpec(), true)
	ctlReconcile(t, c)
	spec := ctlSpec()
	spec.Services[0].Servers = append(spec.Services[0].Servers[1:], ctlServer(14, 1)) // 11 out, 14 in
	if err := c.SetSpec(spec); err != nil {
		t.Fatal(err)
	}
	ctlReconcile(t, c)
	sh := f.Shares(ctlWeb)
	if sh["10.1.0.11"] != 0 || sh["10.1.0.14"] == 0 {
		t.Fatalf("shares after replacing a server: %v", sh)
	}
	for _, b := range f.Backends {
		if b.IP.String() == "10.1.0.11" {
			t.Fatal("backend of a removed server left in the datapath")
		}
	}
}

func TestControlFailureKeepsBackends(t *testing.T) {
	f := controltest.NewMaps(t)
	c := newCtlControl(t, f, ctlSpec(), true)
	ctlReconcile(t, c)
	spec := ctlSpec()
	spec.Services[0].Servers = spec.Services[0].Servers[1:] // drop 10.1.0.11
	if err := c.SetSpec(spec); err != nil {
		t.Fatal(err)
	}
	f.FailSet[ctlWeb] = true
	if err := c.Reconcile(); err == nil {
		t.Fatal("Reconcile hid a failed service update")
	}
	// ctlFakeMaps.DeleteBackend has checked that the old table's backends stay.
	f.FailSet[ctlWeb] = false
	ctlReconcile(t, c)
	if f.Shares(ctlWeb)["10.1.0.11"] != 0 {
		t.Fatal("retry did not apply the change")
	}
}

func TestControlRejectsBadSpec(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Spec)
	}{
		{"size not prime", func(s *Spec) { s.TableSize = 256 }},
		{"service twice", func(s *Spec) { s.Services = append(s.Services, s.Services[0]) }},
		{"server twice", func(s *Spec) { s.Services[0].Servers = append(s.Services[0].Servers, s.Services[0].Servers[0]) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ctlSpec()
			tc.mod(&s)
			if _, err := New(controltest.NewMaps(t), s, Options{}); err == nil {
				t.Fatal("bad spec accepted")
			}
		})
	}
}

func TestControlLoad(t *testing.T) {
	f := controltest.NewMaps(t)
	c := newCtlControl(t, f, ctlSpec(), true)
	ctlReconcile(t, c)
	t0 := time.Unix(1000, 0)
	f.Reading = datapath.Counters{Services: map[datapath.ServiceKey]datapath.Counter{ctlWeb: {Packets: 100, Bytes: 10000}, ctlDNS: {Packets: 10, Bytes: 800}}}
	c.sampleLoad(f, t0)
	f.Reading = datapath.Counters{Services: map[datapath.ServiceKey]datapath.Counter{ctlWeb: {Packets: 600, Bytes: 60000}, ctlDNS: {Packets: 10, Bytes: 800}}}
	c.sampleLoad(f, t0.Add(2*time.Second))
	c.SetHealth(netip.MustParseAddr("10.1.0.11"), "http", false)
	l := c.Load()
	if len(l) != 2 {
		t.Fatalf("load %+v", l)
	}
	w := l[0]
	if w.VIP != ctlWeb.VIP || w.Packets != 600 || w.PacketRate != 250 || w.ByteRate != 25000 || w.Servers != 3 || w.Serving != 2 || !w.Forwarding {
		t.Fatalf("web load %+v", w)
	}
	if l[1].PacketRate != 0 || l[1].Packets != 10 {
		t.Fatalf("dns load %+v", l[1])
	}
	// Counters reset (service re-created): no negative rate.
	f.Reading = datapath.Counters{Services: map[datapath.ServiceKey]datapath.Counter{ctlWeb: {Packets: 5, Bytes: 500}}}
	c.sampleLoad(f, t0.Add(3*time.Second))
	if got := c.Load()[0]; got.PacketRate != 0 || got.Packets != 5 {
		t.Fatalf("after reset %+v", got)
	}
}

func TestSpecFromConfig(t *testing.T) {
	w0, w3 := 0, 3
	d := &config.Dispatcher{
		Interface: "eth0", Mode: "mac", TableSize: 65537,
		Services: []config.DispatcherService{
			{VIP: "192.0.2.10", Port: 80, Proto: "tcp", Check: "http", Servers: []config.DispatcherServer{
				{Address: "10.1.0.11", MAC: "02:00:00:00:01:11"},
				{Address: "10.1.0.12", MAC: "02:00:00:00:01:12", Weight: &w0, Check: "tcp"},
			}},
			{VIP: "192.0.2.20", Port: 53, Proto: "udp", Mode: "ipip", Servers: []config.DispatcherServer{
				{Address: "10.2.0.11", Weight: &w3},
			}},
		},
	}
	spec, err := SpecFromConfig(d)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%+v", spec)
	want := "{TableSize:65537 Services:[" +
		"{Key:192.0.2.10:80/tcp Mode:mac Servers:[{Addr:10.1.0.11 MAC:02:00:00:00:01:11 Weight:1 Check:http} {Addr:10.1.0.12 MAC:02:00:00:00:01:12 Weight:0 Check:tcp}]} " +
		"{Key:192.0.2.20:53/udp Mode:ipip Servers:[{Addr:10.2.0.11 MAC: Weight:3 Check:}]}]}"
	if got != want {
		t.Fatalf("spec\n%s\nwant\n%s", got, want)
	}
	if vips := spec.VIPs(); len(vips) != 2 {
		t.Fatalf("VIPs %v", vips)
	}
}

// A backend that cannot be written keeps the tables that would name it
// unchanged (ctlFakeMaps fails the test on a table naming an unset backend).
func TestControlBackendFailureKeepsTable(t *testing.T) {
	f := controltest.NewMaps(t)
	c := newCtlControl(t, f, ctlSpec(), true)
	ctlReconcile(t, c)
	before := f.Owners(ctlWeb)
	spec := ctlSpec()
	spec.Services[0].Servers = append(spec.Services[0].Servers, ctlServer(14, 1))
	if err := c.SetSpec(spec); err != nil {
		t.Fatal(err)
	}
	f.FailIP = netip.MustParseAddr("10.1.0.14")
	if err := c.Reconcile(); err == nil {
		t.Fatal("Reconcile hid a failed backend write")
	}
	if !slices.Equal(f.Owners(ctlWeb), before) {
		t.Fatal("table changed although its new backend could not be written")
	}
	f.FailIP = netip.Addr{}
	ctlReconcile(t, c)
	if f.Shares(ctlWeb)["10.1.0.14"] == 0 {
		t.Fatal("retry did not add the new server")
	}
}

func TestSpecDigest(t *testing.T) {
	base := ctlSpec().Digest()
	rev := ctlSpec()
	slices.Reverse(rev.Services)
	slices.Reverse(rev.Services[1].Servers)
	if rev.Digest() != base {
		t.Fatal("digest depends on the order of the configuration")
	}
	checks := ctlSpec()
	checks.Services[0].Servers[0].Check = "other"
	if checks.Digest() != base {
		t.Fatal("digest depends on check names, which do not change tables")
	}
	for name, mod := range map[string]func(*Spec){
		"weight":     func(s *Spec) { s.Services[0].Servers[0].Weight = 5 },
		"server":     func(s *Spec) { s.Services[0].Servers = s.Services[0].Servers[1:] },
		"mode":       func(s *Spec) { s.Services[0].Mode = datapath.ModeIPIP },
		"table size": func(s *Spec) { s.TableSize = 251 },
		"mac":        func(s *Spec) { s.Services[0].Servers[0].MAC = net.HardwareAddr{2, 0, 0, 0, 9, 9} },
	} {
		s := ctlSpec()
		mod(&s)
		if s.Digest() == base {
			t.Errorf("changing the %s keeps the digest", name)
		}
	}
}
