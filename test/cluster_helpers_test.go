package test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/internal/eventually"
)

// A test cluster: nodes n1..nN as separate `tern serve` processes, node i
// on 127.0.0.i (every 127/8 address is local on Linux), each probing from
// its own address, and two HTTP backends whose answers the test decides
// per prober address.

const clusterZone = `$ORIGIN gslb.test.
@    300 IN SOA ns1 hostmaster 1 3600 600 604800 60
@    300 IN NS  ns1
ns1  300 IN A   192.0.2.53
www  30  IN POOL web
v    300 IN TXT "%s"
`

// memberA and memberB are the pool's members as answered; their probes go
// to the test's backends on loopback, never to these addresses.
const memberA, memberB = "192.0.2.1", "192.0.2.2"

type tcluster struct {
	t       *testing.T
	nodes   []*tnode
	backA   *tbackend
	backB   *tbackend
	cluster string   // the cluster-wide part of every node's file
	args    []string // more `tern serve` flags
	token   string   // the API token every node requires for writes
}

type tnode struct {
	c              *tcluster
	name, ip       string
	dns, api, raft string
	dir            string
	cmd            *exec.Cmd
	out            *lockedBuffer
	done           chan error
	exited         bool
	exitErr        error
}

// tbackend answers its health path 200, or 503 to probes from the
// addresses in down.
type tbackend struct {
	srv  *httptest.Server
	port int
	mu   sync.Mutex
	down map[string]bool
}

func newBackend(t *testing.T) *tbackend {
	b := &tbackend{down: map[string]bool{}}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		b.mu.Lock()
		down := b.down[host]
		b.mu.Unlock()
		if down {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(b.srv.Close)
	b.port = b.srv.Listener.Addr().(*net.TCPAddr).Port
	return b
}

// cut makes the backend fail the probes of the node at ip (or pass them
// again).
func (b *tbackend) cut(ip string, down bool) {
	b.mu.Lock()
	b.down[ip] = down
	b.mu.Unlock()
}

// newCluster writes n nodes' files; nothing runs yet.
func newCluster(t *testing.T, n int) *tcluster {
	c := &tcluster{t: t, backA: newBackend(t), backB: newBackend(t)}
	c.cluster = fmt.Sprintf(`checks:
  h: {type: http, path: /health, interval: 1s, timeout: 800ms, rise: 1, fall: 1}
pools:
  web:
    check: h
    answers: 2
    members:
      - {address: %s, probe: "127.0.0.1:%d"}
      - {address: %s, probe: "127.0.0.1:%d"}
zones:
  - file: zones/z.zone
`, memberA, c.backA.port, memberB, c.backB.port)
	for i := 1; i <= n; i++ {
		ip := fmt.Sprintf("127.0.0.%d", i)
		port := func() string { return fmt.Sprintf("%s:%d", ip, freePortOn(t, ip)) }
		c.nodes = append(c.nodes, &tnode{c: c, name: fmt.Sprintf("n%d", i), ip: ip, dns: port(), api: port(), raft: port(), dir: t.TempDir()})
	}
	for _, nd := range c.nodes {
		nd.writeConfig(c.cluster, "v1")
	}
	return c
}

// writeConfig writes the node's file: its own node section, cluster-wide
// part and zone (the TXT record v says txt).
func (nd *tnode) writeConfig(cluster, txt string) {
	t := nd.c.t
	var join []string
	for _, o := range nd.c.nodes {
		if o != nd {
			join = append(join, fmt.Sprintf("%q", o.api))
		}
	}
	y := fmt.Sprintf(`node:
  name: %s
  dns: [%q]
  api: %q
  raft: %q
  data: ./data
  bootstrap: %v
  join: [%s]
%s`, nd.name, nd.dns, nd.api, nd.raft, nd.name == "n1", strings.Join(join, ", "), cluster)
	if err := os.MkdirAll(filepath.Join(nd.dir, "zones"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(nd.dir, "tern.yaml"), []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(nd.dir, "zones", "z.zone"), []byte(fmt.Sprintf(clusterZone, txt)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// start runs `tern serve` for the node.
func (nd *tnode) start() {
	t := nd.c.t
	t.Helper()
	nd.out = &lockedBuffer{}
	nd.cmd = exec.Command(ternBinary(t), append([]string{"serve", "--config", "tern.yaml", "--probe-source", nd.ip}, nd.c.args...)...)
	nd.cmd.Env = append(os.Environ(), "TERN_API_TOKEN="+nd.c.token)
	nd.cmd.Dir = nd.dir
	nd.cmd.Stdout, nd.cmd.Stderr = nd.out, nd.out
	if err := nd.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	nd.exited = false
	done := make(chan error, 1)
	nd.done = done
	cmd := nd.cmd
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if !nd.exited && nd.cmd == cmd {
			cmd.Process.Signal(syscall.SIGCONT)
			cmd.Process.Kill()
			<-done
			nd.exited = true
		}
		if t.Failed() {
			t.Logf("--- %s output (last 3000 bytes):\n%s", nd.name, tail(nd.out.String(), 3000))
		}
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// wait waits for the process to exit and returns its error.
func (nd *tnode) wait(d time.Duration) error {
	nd.c.t.Helper()
	select {
	case err := <-nd.done:
		nd.exited, nd.exitErr = true, err
		return err
	case <-time.After(d):
		nd.c.t.Fatalf("%s did not exit within %v\n%s", nd.name, d, tail(nd.out.String(), 3000))
		return nil
	}
}

// stop ends the node with sig and waits for it.
func (nd *tnode) stop(sig syscall.Signal) error {
	nd.cmd.Process.Signal(sig)
	return nd.wait(20 * time.Second)
}

func (nd *tnode) client() *api.Client { return api.NewClient(nd.api, nd.c.token, nil) }

func (nd *tnode) status() (api.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return nd.client().Status(ctx)
}

// cli runs a tern client command against this node's API.
func (nd *tnode) cli(args ...string) (string, error) {
	cmd := exec.Command(ternBinary(nd.c.t), args...)
	cmd.Env = append(os.Environ(), "TERN_API="+nd.api, "TERN_TOKEN="+nd.c.token)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// answers returns the A addresses the node answers for www, sorted.
func (nd *tnode) answers() ([]string, error) {
	r, err := query(nd.dns, "www.gslb.test.", dns.TypeA)
	if err != nil {
		return nil, err
	}
	if r.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("rcode %s", dns.RcodeToString[r.Rcode])
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return out, nil
}

// txt returns the node's answer for the TXT record v.
func (nd *tnode) txt() string {
	r, err := query(nd.dns, "v.gslb.test.", dns.TypeTXT)
	if err != nil || len(r.Answer) != 1 {
		return ""
	}
	if t, ok := r.Answer[0].(*dns.TXT); ok && len(t.Txt) == 1 {
		return t.Txt[0]
	}
	return ""
}

// form starts the nodes (n1 bootstraps, the others join) and waits until
// every node is in quorum, serves version 1 and sees all members.
func (c *tcluster) form() {
	c.t.Helper()
	c.nodes[0].start()
	eventually.True(c.t, 30*time.Second, func() bool {
		s, err := c.nodes[0].status()
		return err == nil && s.RaftState == "Leader" && s.ConfigVersion == 1
	}, "n1 to lead with configuration version 1")
	for _, nd := range c.nodes[1:] {
		nd.start()
	}
	c.waitConverged(60*time.Second, 1)
}

// waitConverged waits until every running node is in quorum and serves
// configuration version v with every member registered.
func (c *tcluster) waitConverged(d time.Duration, v uint64) {
	c.t.Helper()
	eventually.True(c.t, d, func() bool {
		for _, nd := range c.nodes {
			s, err := nd.status()
			if err != nil || !s.InQuorum || !s.Serving || s.ConfigVersion != v {
				return false
			}
			ms, err := nd.client().Members(context.Background())
			if err != nil || len(ms) != len(c.nodes) {
				return false
			}
		}
		return true
	}, fmt.Sprintf("every node in quorum serving version %d", v))
}

// leader returns the node that leads now, by the nodes' own word.
func (c *tcluster) leader() *tnode {
	for _, nd := range c.nodes {
		if s, err := nd.status(); err == nil && s.RaftState == "Leader" {
			return nd
		}
	}
	return nil
}

// eachAnswers waits until every node in nodes answers www with want.
func (c *tcluster) eachAnswers(d time.Duration, want []string, nodes ...*tnode) {
	c.t.Helper()
	if len(nodes) == 0 {
		nodes = c.nodes
	}
	eventually.True(c.t, d, func() bool {
		for _, nd := range nodes {
			got, err := nd.answers()
			if err != nil || !slices.Equal(got, want) {
				return false
			}
		}
		return true
	}, fmt.Sprintf("every node to answer %v", want))
}

// verdict returns what the FSM, as node nd sees it, holds as from's
// verdict on a member: "up", "down", or "" for none.
func (nd *tnode) verdict(from, member string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ps, err := nd.client().Pools(ctx)
	if err != nil {
		return ""
	}
	for _, p := range ps {
		for _, m := range p.Members {
			if m.Address != member {
				continue
			}
			for _, v := range m.Verdicts {
				if v.Node == from && !v.Stale {
					if v.Up {
						return "up"
					}
					return "down"
				}
			}
		}
	}
	return ""
}

type apiMember = api.ClusterMember
