package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/internal/eventually"
)

const xfrSecret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I="

// knotd returns the path of Knot DNS's server, or skips the test.
func knotd(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("knotd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/knotd"); err == nil {
		return "/usr/sbin/knotd"
	}
	t.Skip("knotd not installed (Debian package knot; make test installs it)")
	return ""
}

func ternTransferConfig(dnsAddr, notifyTo string, members []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node:\n  name: primary\n  dns: [%q]\npools:\n  web:\n    members:\n", dnsAddr)
	for _, m := range members {
		fmt.Fprintf(&b, "      - {address: %q}\n", m)
	}
	fmt.Fprintf(&b, `tsig:
  keys:
    xfr: {algorithm: hmac-sha256, secret: %s}
transfer:
  allow: [{from: 127.0.0.0/8, key: xfr}]
  notify: [{to: %q, key: xfr}]
zones:
  - file: xfr.test.zone
`, xfrSecret, notifyTo)
	return b.String()
}

const xfrZone = `$ORIGIN xfr.test.
$TTL 300
@     IN SOA ns1 hostmaster 1 3600 600 604800 60
@     IN NS  ns1
ns1   IN A   127.0.0.1
www   30 IN POOL web
`

// TestTransferToKnot runs tern as the primary of a zone with a POOL name
// and Knot DNS as its secondary over TSIG: Knot serves the static view (A
// and AAAA of every member), and after a change and SIGHUP, tern's NOTIFY
// makes Knot fetch the new serial and data.
func TestTransferToKnot(t *testing.T) {
	knot := knotd(t)
	bin := ternBinary(t)
	dir := t.TempDir()
	primary := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	kport := freePort(t)
	secondary := fmt.Sprintf("127.0.0.2:%d", kport)
	cfg := filepath.Join(dir, "tern.yaml")
	write := func(name, s string) {
		t.Helper()
		if err := os.WriteFile(name, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(cfg, ternTransferConfig(primary, secondary, []string{"192.0.2.1", "192.0.2.2", "2001:db8::1"}))
	write(filepath.Join(dir, "xfr.test.zone"), xfrZone)

	_, pport, _ := strings.Cut(primary, ":")
	kdir := filepath.Join(dir, "knot")
	for _, d := range []string{"run", "db", "zones"} {
		os.MkdirAll(filepath.Join(kdir, d), 0o755)
	}
	kconf := filepath.Join(kdir, "knot.conf")
	write(kconf, fmt.Sprintf(`server:
    rundir: "%[1]s/run"
    listen: 127.0.0.2@%[2]d
log:
  - target: stderr
    any: info
database:
    storage: "%[1]s/db"
key:
  - id: xfr
    algorithm: hmac-sha256
    secret: %[3]s
remote:
  - id: primary
    address: 127.0.0.1@%[4]s
    key: xfr
acl:
  - id: notify_from_primary
    address: 127.0.0.0/8
    key: xfr
    action: notify
template:
  - id: default
    storage: "%[1]s/zones"
    zonefile-sync: -1
    zonefile-load: none
    journal-content: none
zone:
  - domain: xfr.test.
    master: primary
    acl: notify_from_primary
`, kdir, kport, xfrSecret, pport))

	start := func(name string, cmd *exec.Cmd) *lockedBuffer {
		var out lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-done
			if t.Failed() {
				t.Logf("%s output:\n%s", name, out.String())
			}
		})
		return &out
	}
	tern := exec.Command(bin, "serve", "--config", "tern.yaml")
	tern.Dir = dir
	start("tern", tern)
	eventually.True(t, 20*time.Second, func() bool {
		r, err := query(primary, "xfr.test.", dns.TypeSOA)
		return err == nil && r.Rcode == dns.RcodeSuccess
	}, "tern to answer")
	start("knotd", exec.Command(knot, "-c", kconf))

	// served returns what Knot answers for www A and AAAA and its serial.
	served := func() (addrs []string, serial uint32) {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			r, err := query(secondary, "www.xfr.test.", qt)
			if err != nil || r.Rcode != dns.RcodeSuccess {
				return nil, 0
			}
			for _, rr := range r.Answer {
				switch a := rr.(type) {
				case *dns.A:
					addrs = append(addrs, a.A.String())
				case *dns.AAAA:
					addrs = append(addrs, a.AAAA.String())
				}
			}
		}
		if r, err := query(secondary, "xfr.test.", dns.TypeSOA); err == nil && len(r.Answer) == 1 {
			serial = r.Answer[0].(*dns.SOA).Serial
		}
		slices.Sort(addrs)
		return addrs, serial
	}
	want := []string{"192.0.2.1", "192.0.2.2", "2001:db8::1"}
	eventually.True(t, 30*time.Second, func() bool {
		got, serial := served()
		return slices.Equal(got, want) && serial == 1
	}, "Knot to serve the transferred zone")
	// The private POOL type never reached Knot.
	if r, err := query(secondary, "www.xfr.test.", 65280); err == nil && len(r.Answer) > 0 {
		t.Errorf("Knot serves a POOL record: %v", r.Answer)
	}

	// A new member, the zone file's serial untouched: tern serves serial
	// 2 after SIGHUP and its NOTIFY brings Knot along (Knot's own refresh
	// would wait an hour).
	write(cfg, ternTransferConfig(primary, secondary, []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "2001:db8::1"}))
	tern.Process.Signal(syscall.SIGHUP)
	eventually.True(t, 10*time.Second, func() bool {
		r, err := query(primary, "xfr.test.", dns.TypeSOA)
		return err == nil && len(r.Answer) == 1 && r.Answer[0].(*dns.SOA).Serial == 2
	}, "tern to serve serial 2")
	want = []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "2001:db8::1"}
	eventually.True(t, 30*time.Second, func() bool {
		got, serial := served()
		return slices.Equal(got, want) && serial == 2
	}, "Knot to pick up serial 2 after NOTIFY")
}
