package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/internal/eventually"
	"github.com/ternlb/tern/raftstore"
)

// oneNode is a single-node cluster in dir whose node can be stopped and
// started again on the same data directory and ports.
type oneNode struct {
	t    *testing.T
	dir  string
	raft int
	n    *Node
	stop func()
}

// clusterYAML is the node's file: its node section, a pool and the zone
// file z.zone, plus extra at the end.
func (o *oneNode) yaml(extra string) string {
	return fmt.Sprintf(`node:
  name: c1
  dns: ["127.0.0.1:0"]
  api: "127.0.0.1:0"
  raft: "127.0.0.1:%d"
  data: ./data
  bootstrap: true
pools:
  web:
    members: [{address: 192.0.2.1}]
zones:
  - file: z.zone
%s`, o.raft, extra)
}

func newOneNode(t *testing.T, zone string) *oneNode {
	o := &oneNode{t: t, dir: t.TempDir(), raft: freePort(t)}
	o.write(o.yaml(""), zone)
	return o
}

func (o *oneNode) write(yaml, zone string) {
	o.t.Helper()
	if err := os.WriteFile(filepath.Join(o.dir, "tern.yaml"), []byte(yaml), 0o644); err != nil {
		o.t.Fatal(err)
	}
	if zone != "" {
		if err := os.WriteFile(filepath.Join(o.dir, "z.zone"), []byte(zone), 0o644); err != nil {
			o.t.Fatal(err)
		}
	}
}

func (o *oneNode) load() *config.Config {
	o.t.Helper()
	cfg, err := config.Load(filepath.Join(o.dir, "tern.yaml"))
	if err != nil {
		o.t.Fatal(err)
	}
	return cfg
}

// build returns a node New made from the files, not yet running.
func (o *oneNode) build() *Node {
	o.t.Helper()
	n, err := New(o.load(), Options{Logger: slog.New(slog.DiscardHandler), ProbeWait: time.Second})
	if err != nil {
		o.t.Fatal(err)
	}
	return n
}

// run runs n until stop (or the test's end) and waits until it serves.
func (o *oneNode) run(n *Node) {
	o.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	stopped := false
	o.n = n
	o.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			o.t.Errorf("node stopped with %v", err)
		}
	}
	o.t.Cleanup(o.stop)
	select {
	case <-n.Serving():
	case <-time.After(10 * time.Second):
		o.t.Fatal("node did not start serving")
	}
}

func (o *oneNode) status() api.Status {
	o.t.Helper()
	s, err := o.n.Status(context.Background())
	if err != nil {
		o.t.Fatal(err)
	}
	return s
}

// waitVersion waits until the node serves configuration version v, its
// DNS server included (Status tells the generation a moment before DNS
// has its snapshot).
func (o *oneNode) waitVersion(v uint64) {
	o.t.Helper()
	eventually.True(o.t, 15*time.Second, func() bool {
		if o.status().ConfigVersion != v {
			return false
		}
		cv, _ := o.n.store.State().ConfigVersion(v)
		zs, ok := cv.Zones["example.test."]
		return !ok || o.soaSerial() == zs.Served
	}, fmt.Sprintf("version %d served", v))
}

func (o *oneNode) soaSerial() uint32 {
	o.t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("example.test.", dns.TypeSOA)
	r, err := dns.Exchange(m, o.n.DNSAddrs()[0].String())
	if err != nil || len(r.Answer) != 1 {
		o.t.Fatalf("SOA: %v %v", r, err)
	}
	return r.Answer[0].(*dns.SOA).Serial
}

// apply sends the node's file with zone through the API's Apply.
func (o *oneNode) apply(zone string, ch api.Change) (api.ApplyResult, error) {
	return apiConfigs{o.n}.Apply(context.Background(), api.ApplyRequest{
		Main: "tern.yaml", Files: map[string]string{"tern.yaml": o.yaml(""), "z.zone": zone}, Change: ch})
}

func zoneWithSerial(serial int, extra string) string {
	return strings.Replace(testZone, "hostmaster 1 ", fmt.Sprintf("hostmaster %d ", serial), 1) + extra
}

// TestBootstrapProposesWhatItValidated: the zone file edited right after
// New returns (the first second and a half of `tern serve`, before the
// node leads) neither stops the node nor reaches version 1: the cluster's
// first version holds the bytes New validated and serves.
func TestBootstrapProposesWhatItValidated(t *testing.T) {
	o := newOneNode(t, testZone+"v 300 IN TXT \"original\"\n")
	n := o.build()
	o.write(o.yaml(""), testZone+"v 300 IN TXT \"edited later\"\n")
	o.run(n)
	o.waitVersion(1)
	cv, _ := n.store.State().Config()
	files, err := n.store.State().Bundle(cv.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if z := string(files.Files["z.zone"]); !strings.Contains(z, "original") || strings.Contains(z, "edited") {
		t.Fatalf("version 1's zone file:\n%s", z)
	}
	if cv.Origin != (raftstore.Origin{Kind: raftstore.OriginBootstrap, Node: "c1"}) {
		t.Fatalf("version 1's origin: %+v", cv.Origin)
	}
	m := new(dns.Msg)
	m.SetQuestion("v.example.test.", dns.TypeTXT)
	r, err := dns.Exchange(m, n.DNSAddrs()[0].String())
	if err != nil || len(r.Answer) != 1 || !strings.Contains(r.Answer[0].String(), "original") {
		t.Fatalf("served TXT: %v %v", r, err)
	}
	if s := o.status(); s.LastConfigError != "" || s.LocalFileDiffers {
		t.Fatalf("status: %+v, want no error, and the file as read (version 1's)", s)
	}
	// Read again (SIGHUP), the edited file is reported, not proposed.
	if err := n.Reload(context.Background(), o.load()); err != nil {
		t.Fatal(err)
	}
	if s := o.status(); !s.LocalFileDiffers || s.ConfigVersion != 1 {
		t.Fatalf("status after reloading the edited file: %+v", s)
	}
}

// TestClusterReloadNeverProposes: SIGHUP (Reload) on a cluster node takes
// in the node-local settings only. A stale file (the cluster moved on to
// version 2) is not committed as a new version; the node says its file
// differs; a file equal to the cluster's says so too.
func TestClusterReloadNeverProposes(t *testing.T) {
	o := newOneNode(t, testZone)
	o.run(o.build())
	o.waitVersion(1)
	if s := o.status(); s.LocalFileDiffers || s.LocalFileHash == "" {
		t.Fatalf("after bootstrap: %+v, want the local file to be the cluster's", s)
	}
	if _, err := o.apply(testZone+"new 300 IN A 192.0.2.9\n", api.Change{Base: 1}); err != nil {
		t.Fatal(err)
	}
	o.waitVersion(2)
	// The old file, with a comment and new RRL settings: reloaded here,
	// never proposed.
	o.write("# edited\n"+o.yaml("rrl: {responses_per_second: 5}\n"), "")
	if err := o.n.Reload(context.Background(), o.load()); err != nil {
		t.Fatal(err)
	}
	st := o.n.store.State()
	if cv, _ := st.Config(); cv.Version != 2 || len(st.ConfigVersions()) != 2 {
		t.Fatalf("the reload made version %d (%d versions)", cv.Version, len(st.ConfigVersions()))
	}
	if s := o.status(); !s.LocalFileDiffers || s.ConfigVersion != 2 {
		t.Fatalf("status after reloading a stale file: %+v", s)
	}
	if got := answers(t, o.n.DNSAddrs()[0].String(), "new.example.test."); len(got) != 1 {
		t.Fatalf("version 2's record is gone after the reload: %v", got)
	}
	// A file with version 2's cluster-wide part (comments and the node
	// section aside) does not differ.
	o.write("# another comment\n"+o.yaml("rrl: {responses_per_second: 9}\n"), testZone+"new 300 IN A 192.0.2.9\n")
	if err := o.n.Reload(context.Background(), o.load()); err != nil {
		t.Fatal(err)
	}
	if s := o.status(); s.LocalFileDiffers {
		t.Fatalf("status after reloading version 2's content: %+v", s)
	}
	// A reload that does not validate is reported and changes nothing.
	o.write(o.yaml(""), testZone+"bad 30 IN POOL nosuch\n")
	if err := o.n.Reload(context.Background(), o.load()); err == nil {
		t.Fatal("a reload with an unknown pool was accepted")
	}
	if s := o.status(); !strings.Contains(s.LastConfigError, "nosuch") || s.ConfigVersion != 2 {
		t.Fatalf("status after a rejected reload: %+v", s)
	}
	if err := o.n.Ready(context.Background()); err != nil {
		t.Fatalf("a node serving its last good version must stay ready: %v", err)
	}
}

// TestApplyBaseAndRollbackSerials: an apply based on a version that is no
// longer current is refused (409) unless forced; versions record origin
// and comment; v1, v2 with the zone's serial raised by 10, then a
// rollback to v1 as v3 serves a serial above v2's, and a restart of the
// node serves no lower one.
func TestApplyBaseAndRollbackSerials(t *testing.T) {
	o := newOneNode(t, zoneWithSerial(100, ""))
	o.run(o.build())
	o.waitVersion(1)
	s1 := o.soaSerial()
	if s1 != 100 {
		t.Fatalf("version 1 serves serial %d, want the file's 100", s1)
	}
	res, err := o.apply(zoneWithSerial(110, "two 300 IN A 192.0.2.2\n"), api.Change{Base: 1, Comment: "raise", Client: "192.0.2.50:4000"})
	if err != nil || res.Version != 2 || !res.Changed {
		t.Fatalf("apply based on version 1: %+v %v", res, err)
	}
	o.waitVersion(2)
	s2 := o.soaSerial()
	if s2 != 110 {
		t.Fatalf("version 2 serves %d, want the file's 110", s2)
	}
	// Stale: based on version 1 while 2 is current.
	_, err = o.apply(zoneWithSerial(100, "stale 300 IN A 192.0.2.3\n"), api.Change{Base: 1})
	if !errors.Is(err, api.ErrConflict) || !errors.Is(err, raftstore.ErrStale) {
		t.Fatalf("a stale apply: %v, want a conflict", err)
	}
	// The same content again, even on a stale base, is no new version.
	if res, err := o.apply(zoneWithSerial(110, "two 300 IN A 192.0.2.2\n"), api.Change{Base: 1}); err != nil || res.Changed || res.Version != 2 {
		t.Fatalf("re-applying version 2's content: %+v %v", res, err)
	}
	if _, err := (apiConfigs{o.n}).Rollback(context.Background(), 1, api.RollbackRequest{Change: api.Change{Base: 1}}); !errors.Is(err, api.ErrConflict) {
		t.Fatalf("a stale rollback: %v, want a conflict", err)
	}
	res, err = apiConfigs{o.n}.Rollback(context.Background(), 1, api.RollbackRequest{Change: api.Change{Base: 2, Comment: "back"}})
	if err != nil || res.Version != 3 {
		t.Fatalf("rollback to 1: %+v %v", res, err)
	}
	o.waitVersion(3)
	s3 := o.soaSerial()
	if !raftstore.SerialLess(s2, s3) {
		t.Fatalf("the rollback to version 1 serves serial %d, not above version 2's %d", s3, s2)
	}
	vs, _ := apiConfigs{o.n}.Versions(context.Background())
	if len(vs) != 3 || vs[1].Origin != (api.Origin{Kind: "apply", Node: "c1", Client: "192.0.2.50:4000"}) || vs[1].Comment != "raise" ||
		vs[2].Origin.Kind != "rollback" || vs[2].RollbackOf != 1 || vs[2].Serials["example.test."] != s3 || !vs[2].Current || vs[0].Origin.Kind != "bootstrap" {
		t.Fatalf("versions: %+v", vs)
	}
	// Forced over a stale base.
	if res, err := o.apply(zoneWithSerial(100, "forced 300 IN A 192.0.2.4\n"), api.Change{Base: 1, Force: true}); err != nil || res.Version != 4 {
		t.Fatalf("forced apply: %+v %v", res, err)
	}
	o.waitVersion(4)
	s4 := o.soaSerial()
	if !raftstore.SerialLess(s3, s4) {
		t.Fatalf("version 4 serves %d, not above %d", s4, s3)
	}

	o.stop()
	o.run(o.build())
	o.waitVersion(4)
	if got := o.soaSerial(); got != s4 {
		t.Fatalf("after a restart the node serves serial %d, version 4 served %d", got, s4)
	}
}

// A replicated version that does not compile on this node (its geo
// database is gone here) does not stop the node: it serves its local file,
// says why in status, and /readyz says it does not serve the cluster's
// configuration.
func TestVersionThatDoesNotCompileHere(t *testing.T) {
	mmdb, err := os.ReadFile(filepath.Join("..", "..", "shared", "testdata", "geoip", "GeoIP2-City-Test.mmdb"))
	if err != nil {
		t.Skipf("test geo database: %v", err)
	}
	o := newOneNode(t, testZone)
	db := filepath.Join(o.dir, "geo.mmdb")
	if err := os.WriteFile(db, mmdb, 0o644); err != nil {
		t.Fatal(err)
	}
	o.run(o.build())
	o.waitVersion(1)
	withGeo := "geo: {database: geo.mmdb}\n"
	if _, err := (apiConfigs{o.n}).Apply(context.Background(), api.ApplyRequest{Main: "tern.yaml",
		Files: map[string]string{"tern.yaml": o.yaml(withGeo), "z.zone": testZone}, Change: api.Change{Base: 1}}); err != nil {
		t.Fatal(err)
	}
	o.waitVersion(2)
	if err := o.n.Ready(context.Background()); err != nil {
		t.Fatalf("ready on version 2: %v", err)
	}
	o.stop()
	os.Remove(db)
	o.run(o.build())
	// The log replays once the node leads again; version 2 is then
	// rejected here, and the bootstrap node's own file is not proposed
	// over it (its base, 0, is stale).
	eventually.True(t, 15*time.Second, func() bool {
		return strings.Contains(o.status().LastConfigError, "version 2 rejected here")
	}, "version 2 to be rejected")
	// It serves what it served before version 2: its own file (0), or
	// version 1 when the replay compiled that first (the log's entries
	// may reach the node one by one or as one state).
	if s := o.status(); (s.ConfigVersion != 0 && s.ConfigVersion != 1) || !s.Serving {
		t.Fatalf("status: %+v, want serving version 0 or 1", s)
	}
	if cv, _ := o.n.store.State().Config(); cv.Version != 2 {
		t.Fatalf("the cluster's version after the restart: %d, want 2", cv.Version)
	}
	if err := o.n.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "not serving the cluster's configuration (version 2)") {
		t.Fatalf("ready: %v", err)
	}
	if got := answers(t, o.n.DNSAddrs()[0].String(), "www.example.test."); len(got) != 1 {
		t.Fatalf("the local file is not served: %v", got)
	}
}
