package probes

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ternlb/tern/config"
)

// A Prober of targets probes each by its own check and keys the verdicts
// as given, with no configuration of pools around them.
func TestNewTargets(t *testing.T) {
	_, open := splitHostPort(t, tcpServer(t))
	_, closed := splitHostPort(t, closedPort(t))
	checks := map[string]config.Check{
		"open":   {Type: "tcp", Port: open, Interval: config.Duration(20 * time.Millisecond), Timeout: config.Duration(15 * time.Millisecond), Rise: 1, Fall: 1},
		"closed": {Type: "tcp", Port: closed, Interval: config.Duration(20 * time.Millisecond), Timeout: config.Duration(15 * time.Millisecond), Rise: 1, Fall: 1},
	}
	lo := netip.MustParseAddr("127.0.0.1")
	up := Key{Pool: "servers-open", Member: "127.0.0.1"}
	down := Key{Pool: "servers-closed", Member: "127.0.0.1"}
	rec := &recorder{}
	p, err := NewTargets(checks, []Target{{Key: up, Addr: lo, Check: "open"}, {Key: down, Addr: lo, Check: "closed"}}, Options{Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	if vs := p.Verdicts(); len(vs) != 2 || !vs[0].Up || !vs[1].Up {
		t.Fatalf("before any probe: %+v, want both targets up", vs)
	}
	start(t, p)
	rec.waitFor(t, down, 3*time.Second, "closed port", func(v Verdict) bool { return v.Probed && !v.Up })
	rec.waitFor(t, up, 3*time.Second, "open port", func(v Verdict) bool { return v.Probed && v.Up })
	if v, err := p.Verdict(up.Pool, up.Member); err != nil || !v.Up {
		t.Fatalf("Verdict(%s) = %+v, %v", up, v, err)
	}
}

func TestNewTargetsRejects(t *testing.T) {
	checks := map[string]config.Check{"c": {Type: "tcp", Port: 80, Interval: config.Duration(time.Second), Timeout: config.Duration(time.Second), Rise: 1, Fall: 1}}
	a := netip.MustParseAddr("192.0.2.1")
	k := Key{Pool: "p", Member: "192.0.2.1"}
	tests := []struct {
		name    string
		targets []Target
		want    string
	}{
		{"unknown check", []Target{{Key: k, Addr: a, Check: "nope"}}, `check "nope" is not defined under checks`},
		{"no address", []Target{{Key: k, Check: "c"}}, "no address"},
		{"member not the address", []Target{{Key: Key{Pool: "p", Member: "192.0.2.9"}, Addr: a, Check: "c"}}, "canonical form"},
		{"twice", []Target{{Key: k, Addr: a, Check: "c"}, {Key: k, Addr: a, Check: "c"}}, "twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewTargets(checks, tc.targets, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}
