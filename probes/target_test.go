package probes

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/internal/testnet"
)

func TestTargetAddress(t *testing.T) {
	ch := &checker{name: "c", cfg: config.Check{Port: 8080}, interval: time.Second}
	tests := []struct {
		name   string
		member config.Member
		host   string
		port   int
	}{
		{"address", config.Member{Address: "192.0.2.1"}, "192.0.2.1", 8080},
		{"ipv6", config.Member{Address: "2001:db8::1"}, "2001:db8::1", 8080},
		{"v4-mapped", config.Member{Address: "::ffff:192.0.2.1"}, "192.0.2.1", 8080},
		{"probe address keeps the check's port", config.Member{Address: "192.0.2.1", Probe: "10.0.0.1"}, "10.0.0.1", 8080},
		{"probe address and port", config.Member{Address: "192.0.2.1", Probe: "10.0.0.1:9000"}, "10.0.0.1", 9000},
		{"probe ipv6 and port", config.Member{Address: "192.0.2.1", Probe: "[2001:db8::9]:9000"}, "2001:db8::9", 9000},
		{"host name", config.Member{Address: "www.example.test."}, "www.example.test", 8080},
		{"host name with probe", config.Member{Address: "www.example.test", Probe: "192.0.2.9"}, "192.0.2.9", 8080},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg, err := newTarget("p", "up", tc.member, ch)
			if err != nil {
				t.Fatal(err)
			}
			if tg.host != tc.host || tg.port != tc.port {
				t.Fatalf("probes %s port %d, want %s port %d", tg.host, tg.port, tc.host, tc.port)
			}
			if tg.key != (Key{"p", tc.member.Address}) {
				t.Errorf("key %v", tg.key)
			}
		})
	}
	if _, err := newTarget("p", "up", config.Member{Address: "192.0.2.1", Admin: "sleep"}, ch); err == nil {
		t.Error("admin sleep accepted")
	}
}

// TestHostNameMember: a host-name member is probed by its name on the
// check's port.
func TestHostNameMember(t *testing.T) {
	if _, err := net.DefaultResolver.LookupHost(context.Background(), "localhost"); err != nil {
		t.Skip("localhost does not resolve here")
	}
	l := testnet.Listen(t, "127.0.0.1:0", nil)
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	c := testConfig(t, "  c: {type: tcp, port: "+port+", interval: 5s, timeout: 2s}\n",
		"  p:\n    check: c\n    initial: down\n    members: [{address: localhost}]\n")
	p, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	start(t, p)
	if err := p.FirstRound(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if v, _ := p.Verdict("p", "localhost"); !v.Up {
		t.Fatalf("localhost member: %+v", v)
	}
}

func TestIPv6Member(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	defer l.Close()
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != l.Addr().String() {
			http.Error(w, "host "+r.Host, http.StatusBadRequest)
		}
	}))
	for _, check := range []string{"{type: tcp, port: 1}", "{type: http}"} {
		if r := runOnce(t, checkOf(t, check), l.Addr().String()); r.outcome != outcomeUp {
			t.Errorf("%s on %s: %v %v", check, l.Addr(), r.outcome, r.err)
		}
	}
}
