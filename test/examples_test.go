package test

import (
	"fmt"
	"io/fs"
	"net"
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
	"github.com/ternlb/tern/internal/testnet"
	"go.yaml.in/yaml/v3"
)

// exampleFiles are the configurations under examples/, relative to it.
func exampleFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := fs.WalkDir(os.DirFS("../examples"), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			files = append(files, p)
		}
		return err
	})
	if err != nil || len(files) < 6 {
		t.Fatalf("examples: %v, %d files", err, len(files))
	}
	return files
}

// yamlTop is a configuration file's top-level mapping.
func yamlTop(t *testing.T, file string) map[string]yaml.Node {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]yaml.Node
	if err := yaml.Unmarshal(b, &top); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return top
}

// TestExamplesCheck: every configuration under examples/ passes tern
// check, keeps node.data outside the examples folder, and the three nodes
// of the cluster example share one cluster-wide part.
func TestExamplesCheck(t *testing.T) {
	bin := ternBinary(t)
	examples, _ := filepath.Abs("../examples")
	for _, f := range exampleFiles(t) {
		t.Run(f, func(t *testing.T) {
			cmd := exec.Command(bin, "check", "--config", filepath.Base(f))
			cmd.Dir = filepath.Join("../examples", filepath.Dir(f))
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), ": ok") || strings.Contains(string(out), "warning") {
				t.Fatalf("tern check: %v\n%s", err, out)
			}
			top := yamlTop(t, filepath.Join("../examples", f))
			node, ok := top["node"]
			if !ok {
				if _, ok := top["dispatcher"]; !ok {
					t.Fatal("neither node: nor dispatcher:")
				}
				return
			}
			var n struct{ Data string }
			if err := node.Decode(&n); err != nil || n.Data == "" {
				t.Fatalf("node.data: %v %q: give every example's node a data directory", err, n.Data)
			}
			data := filepath.Join(examples, filepath.Dir(f), n.Data)
			if rel, err := filepath.Rel(examples, data); err != nil || !strings.HasPrefix(rel, "..") {
				t.Errorf("node.data %q is inside examples/ (%s): keep it outside", n.Data, rel)
			}
		})
	}
	var parts []string
	for i := 1; i <= 3; i++ {
		top := yamlTop(t, fmt.Sprintf("../examples/cluster-three/n%d.yaml", i))
		delete(top, "node")
		b, err := yaml.Marshal(top)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, string(b))
	}
	if parts[0] != parts[1] || parts[0] != parts[2] {
		t.Error("cluster-three: n1, n2 and n3 differ beyond node: (a node would log that its file is not the cluster's version)")
	}
}

// TestExamplesServe serves each single-node example (a node: section
// without join) briefly on loopback, in a scratch copy with its listeners
// on free ports, its members' checks answered by listeners of the test's,
// and asks it what the example promises.
func TestExamplesServe(t *testing.T) {
	bin := ternBinary(t)
	cases := map[string]func(t *testing.T, e *servedExample){
		// tern.yaml, the reference, is served by the tests of
		// ../shared/examples (copyExample).
		"tern.yaml": nil,
		"active-passive/tern.yaml": func(t *testing.T, e *servedExample) {
			e.waitAnswers(t, "app.ap.example.test.", "", "127.0.10.1")
			e.close("127.0.10.1") // the primary fails its check
			e.waitAnswers(t, "app.ap.example.test.", "", "127.0.20.1")
		},
		"geo-three-regions/tern.yaml": func(t *testing.T, e *servedExample) {
			e.waitAnswers(t, "www.geo.example.test.", "81.2.69.160/27", "127.0.31.1", "127.0.31.2")   // London: eu
			e.waitAnswers(t, "www.geo.example.test.", "216.160.83.56/29", "127.0.32.1", "127.0.32.2") // the US: us
			e.waitAnswers(t, "www.geo.example.test.", "202.196.224.0/20", "127.0.33.1", "127.0.33.2") // the Philippines: ap
			e.waitAnswers(t, "www.geo.example.test.", "10.20.1.0/24", "127.0.33.1", "127.0.33.2")     // the office CIDR: ap
			e.close("127.0.33.1")
			// ap's other member, then one of eu's (weighted: either).
			e.waitFor(t, "www.geo.example.test.", "10.20.1.0/24", "127.0.33.2 and one of eu's", func(got []string) bool {
				return len(got) == 2 && got[0] != got[1] && strings.HasPrefix(got[0], "127.0.31.") && got[1] == "127.0.33.2"
			})
		},
	}
	for _, f := range exampleFiles(t) {
		top := yamlTop(t, filepath.Join("../examples", f))
		node, ok := top["node"]
		if !ok {
			continue
		}
		var n struct{ Join []string }
		node.Decode(&n)
		if len(n.Join) > 0 {
			continue // a cluster's node: checked by TestExamplesCheck
		}
		run, ok := cases[f]
		if !ok {
			t.Errorf("examples/%s is a single-node example without a case here: add one", f)
			continue
		}
		if run == nil {
			continue
		}
		t.Run(f, func(t *testing.T) {
			e := serveExample(t, bin, f)
			run(t, e)
		})
	}
}

// servedExample is an example being served from a scratch copy.
type servedExample struct {
	dns       string
	listeners map[string]net.Listener // by member address
	out       *lockedBuffer
}

func (e *servedExample) close(member string) { e.listeners[member].Close() }

// waitAnswers polls until the A answer for name (from client subnet ecs
// when set) is exactly want, in any order.
func (e *servedExample) waitAnswers(t *testing.T, name, ecs string, want ...string) {
	t.Helper()
	slices.Sort(want)
	e.waitFor(t, name, ecs, fmt.Sprint(want), func(got []string) bool { return slices.Equal(got, want) })
}

// waitFor polls until the A answer for name (from client subnet ecs when
// set), its addresses sorted, satisfies ok.
func (e *servedExample) waitFor(t *testing.T, name, ecs, what string, ok func([]string) bool) {
	t.Helper()
	var got []string
	eventually.True(t, 20*time.Second, func() bool {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		if ecs != "" {
			_, p, _ := net.ParseCIDR(ecs)
			ones, _ := p.Mask.Size()
			o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
			o.SetUDPSize(1232)
			o.Option = append(o.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: uint8(ones), Address: p.IP})
			m.Extra = append(m.Extra, o)
		}
		c := &dns.Client{Timeout: time.Second}
		r, _, err := c.Exchange(m, e.dns)
		if err != nil || r.Rcode != dns.RcodeSuccess {
			return false
		}
		got = got[:0]
		for _, rr := range r.Answer {
			if a, ok := rr.(*dns.A); ok {
				got = append(got, a.A.String())
			}
		}
		slices.Sort(got)
		return ok(got)
	}, fmt.Sprintf("%s from %q to answer %s", name, ecs, what))
}

// serveExample copies examples/ and testdata/geoip into a scratch folder
// (so relative paths, node.data's included, resolve as in the
// repository), moves the node's listeners to free loopback ports, opens a
// TCP listener for every pool member on its check's port, and serves
// the copy until the test ends.
func serveExample(t *testing.T, bin, rel string) *servedExample {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"examples", "testdata/geoip"} {
		if err := os.CopyFS(filepath.Join(root, d), os.DirFS(filepath.Join("..", d))); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(root, "examples", rel)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Checks map[string]struct{ Port int }
		Pools  map[string]struct {
			Check   string
			Members []struct{ Address string }
		}
	}
	if err := doc.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	dnsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	set := map[string]string{"api": fmt.Sprintf("127.0.0.1:%d", freePort(t)), "raft": fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	node := mapValue(doc.Content[0], "node")
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i].Value, node.Content[i+1]
		switch {
		case k == "dns":
			v.Content = []*yaml.Node{{Kind: yaml.ScalarNode, Value: dnsAddr, Style: yaml.DoubleQuotedStyle}}
		case set[k] != "":
			v.Value = set[k]
		}
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, out, 0o644); err != nil {
		t.Fatal(err)
	}

	e := &servedExample{dns: dnsAddr, listeners: map[string]net.Listener{}, out: &lockedBuffer{}}
	for _, p := range cfg.Pools {
		port := cfg.Checks[p.Check].Port
		for _, m := range p.Members {
			e.listeners[m.Address] = testnet.Listen(t, net.JoinHostPort(m.Address, fmt.Sprint(port)), nil)
		}
	}
	cmd := exec.Command(bin, "serve", "--config", filepath.Base(file))
	cmd.Dir = filepath.Dir(file)
	cmd.Stdout, cmd.Stderr = e.out, e.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("tern serve:\n%s", tail(e.out.String(), 40))
		}
	})
	eventually.True(t, 30*time.Second, func() bool { return strings.Contains(e.out.String(), "msg=serving") }, "tern to serve")
	return e
}

// mapValue is the value of key in mapping m (nil when absent).
func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
