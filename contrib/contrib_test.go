// Package contrib_test checks the files in contrib/ against the code: the
// Grafana dashboard names only metrics Tern exports, the Prometheus alerts
// load in promtool and fire as their unit tests say.
package contrib_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dispatcher"
	"github.com/ternlb/tern/node"
)

// exported returns the metric family names a one-node cluster exports, and
// the dispatcher's (which need a dispatcher to show values).
func exported(t *testing.T) map[string]bool {
	t.Helper()
	dir := t.TempDir()
	port := func() int {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	}
	yaml := fmt.Sprintf(`node:
  name: c1
  dns: ["127.0.0.1:0"]
  api: "127.0.0.1:0"
  raft: "127.0.0.1:%d"
  data: data
  bootstrap: true
checks:
  h: {type: tcp, port: %d, interval: 200ms, timeout: 100ms}
pools:
  web:
    check: h
    members: [{address: 127.0.0.1}]
zones:
  - file: z.zone
`, port(), port())
	zone := "$ORIGIN example.test.\n@ 300 IN SOA ns hostmaster 1 3600 600 86400 300\n@ 300 IN NS ns\nns 300 IN A 192.0.2.53\nwww 30 IN POOL web\n"
	os.WriteFile(filepath.Join(dir, "tern.yaml"), []byte(yaml), 0o644)
	os.WriteFile(filepath.Join(dir, "z.zone"), []byte(zone), 0o644)
	cfg, err := config.Load(filepath.Join(dir, "tern.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(cfg, node.Options{ProbeWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-n.Serving()
	names := map[string]bool{}
	deadline := time.Now().Add(15 * time.Second)
	// Families whose series exist once there is something to count: a
	// query answered, a verdict replicated.
	q := new(dns.Msg)
	q.SetQuestion("www.example.test.", dns.TypeA)
	for !names["tern_raft_in_quorum"] || !names["tern_member_up"] || !names["tern_member_vantage_up"] || !names["tern_dns_queries_total"] {
		dns.Exchange(q, n.DNSAddrs()[0].String())
		if time.Now().After(deadline) {
			t.Fatalf("the node's metrics never showed raft and members: %v", names)
		}
		mfs, err := n.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			names[mf.GetName()] = true
		}
		time.Sleep(50 * time.Millisecond)
	}
	ch := make(chan *prometheus.Desc, 64)
	(*dispatcher.Instance)(nil).Collector().Describe(ch)
	close(ch)
	fq := regexp.MustCompile(`fqName: "([a-z_:]+)"`)
	for d := range ch {
		if m := fq.FindStringSubmatch(d.String()); m != nil {
			names[m[1]] = true
		}
	}
	return names
}

// metricNames are the metric names in a PromQL expression: identifiers
// not followed by "(" (a function) and not label names, keywords or
// inside quotes or braces.
func metricNames(expr string) []string {
	expr = regexp.MustCompile(`"[^"]*"`).ReplaceAllString(expr, `""`)
	expr = regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(expr, "")
	expr = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`).ReplaceAllString(expr, "")
	expr = regexp.MustCompile(`\[[^\]]*\]`).ReplaceAllString(expr, "")
	var out []string
	for _, m := range regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*\s*\(?`).FindAllString(expr, -1) {
		m = strings.TrimSpace(m)
		if strings.HasSuffix(m, "(") || m == "and" || m == "or" || m == "unless" || m == "bool" {
			continue
		}
		out = append(out, m)
	}
	return out
}

func TestDashboardMetricsExist(t *testing.T) {
	b, err := os.ReadFile("grafana/tern.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/tern.json: %v", err)
	}
	names := exported(t)
	checked := 0
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			ms := metricNames(tg.Expr)
			if len(ms) == 0 {
				t.Errorf("panel %q: no metric in %q", p.Title, tg.Expr)
			}
			for _, m := range ms {
				base := m
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if s, ok := strings.CutSuffix(m, suf); ok && names[s] {
						base = s
					}
				}
				if !names[base] {
					t.Errorf("panel %q: %s is not a metric Tern exports (expression %q)", p.Title, m, tg.Expr)
				}
				checked++
			}
		}
	}
	for _, want := range []string{"tern_dns_queries_total", "tern_dns_pool_answers_total", "tern_member_up", "tern_raft_state", "tern_dispatcher_packets_total"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
	t.Logf("%d metric references checked", checked)
}

// promtool is Debian's (package prometheus; make test installs it).
func promtool(t *testing.T, args ...string) {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("no promtool (Debian package prometheus; make test installs it)")
	}
	out, err := exec.Command(p, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestAlertRules(t *testing.T) {
	promtool(t, "check", "rules", "prometheus/alerts.yml")
	promtool(t, "test", "rules", "prometheus/alerts_test.yml")
	// Every metric the rules read is exported.
	b, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	names := exported(t)
	for _, m := range regexp.MustCompile(`(?m)^\s*expr:\s*(.+)$`).FindAllStringSubmatch(string(b), -1) {
		for _, name := range metricNames(m[1]) {
			if !names[name] {
				t.Errorf("alert expression %q reads %s, which Tern does not export", m[1], name)
			}
		}
	}
}
