package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ternlb/tern/internal/testpki"
)

// LoopbackOnly decides by the address as written: wildcards, other
// addresses and host names other than localhost are beyond loopback.
func TestLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:8054", true},
		{"127.0.0.42:0", true},
		{"[::1]:8054", true},
		{"[::ffff:127.0.0.1]:8054", true},
		{"localhost:8054", true}, // /etc/hosts: 127.0.0.1 (and ::1)
		{":8054", false},
		{"0.0.0.0:8054", false},
		{"[::]:8054", false},
		{"192.0.2.1:8054", false},
		{"[2001:db8::1]:8054", false},
		{"tern.example.com:8054", false}, // not resolved: beyond loopback
		{"127.0.0.1", false},             // no port: not an address New can use
		{"", false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			if got := LoopbackOnly(tc.addr); got != tc.want {
				t.Fatalf("LoopbackOnly(%q) = %v, want %v", tc.addr, got, tc.want)
			}
		})
	}
}

// New refuses an API beyond loopback without a token, before it binds
// anything; a token, or a loopback address, lets it start.
func TestNewRefusesInsecure(t *testing.T) {
	for _, addr := range []string{":0", "0.0.0.0:0", "[::]:0", "192.0.2.1:0", "tern.example.com:0"} {
		t.Run(addr, func(t *testing.T) {
			s, err := New(Options{Addr: addr})
			if !errors.Is(err, ErrInsecure) || s != nil || !strings.Contains(err.Error(), addr) {
				t.Fatalf("New(%q) without a token = %v, %v; want ErrInsecure naming the address", addr, s, err)
			}
		})
	}
	for _, o := range []Options{{Addr: "127.0.0.1:0"}, {Addr: "localhost:0"}, {Addr: "127.0.0.1:0", Token: "t"}} {
		s, err := New(o)
		if err != nil {
			t.Fatalf("New(%+v): %v", o, err)
		}
		s.ln.Close()
	}
}

// pki is a cluster CA's node certificate for 127.0.0.1 (the server's and
// a peer's) in files, the CA pool, and client configurations: a peer's
// presenting the certificate, a stranger's presenting one of another CA,
// and a plain one (an operator's CLI) presenting none.
type pki struct {
	cert, key             string
	cas                   *x509.CertPool
	peer, stranger, plain *tls.Config
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "cluster CA")
	certPEM, keyPEM := ca.Issue(t, "n1", nil)
	p := pki{cert: filepath.Join(dir, "n1.crt"), key: filepath.Join(dir, "n1.key"), cas: x509.NewCertPool()}
	os.WriteFile(p.cert, certPEM, 0o600)
	os.WriteFile(p.key, keyPEM, 0o600)
	p.cas.AddCert(ca.Cert)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	other := testpki.NewCA(t, "another CA")
	oc, ok := other.Issue(t, "intruder", nil)
	op, err := tls.X509KeyPair(oc, ok)
	if err != nil {
		t.Fatal(err)
	}
	p.peer = &tls.Config{RootCAs: p.cas, Certificates: []tls.Certificate{pair}}
	// The stranger presents its certificate whatever CAs the server
	// names (Go's client would otherwise send none).
	p.stranger = &tls.Config{RootCAs: p.cas, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &op, nil }}
	p.plain = &tls.Config{RootCAs: p.cas}
	return p
}

// Join and forwarded commands need the token or, with TLS, a client
// certificate the cluster's CA signed; a certificate admits nothing else.
// Without a token or TLS they are open to loopback clients only (the
// listener is loopback only then).
func TestPeerRoutes(t *testing.T) {
	p := newPKI(t)
	f := &fakeNode{admin: map[string]string{}}
	fw := &fakeForwarder{}
	tlsOpts := func(token string) Options {
		return Options{Token: token, CertFile: p.cert, KeyFile: p.key, ClientCAs: p.cas, Cluster: f, Pools: f, Forwarder: fw}
	}
	type call struct {
		name string
		do   func(c *Client) error
	}
	ctx := context.Background()
	join := call{"join", func(c *Client) error { return c.Join(ctx, JoinRequest{ID: "n2", RaftAddr: "127.0.0.1:7000"}) }}
	forward := call{"raft/apply", func(c *Client) error { _, err := c.ApplyCommand(ctx, []byte("cmd")); return err }}
	admin := call{"admin", func(c *Client) error { return c.SetAdmin(ctx, "web", "192.0.2.1", "drain") }}
	for _, tc := range []struct {
		name   string
		o      Options
		token  string
		tls    *tls.Config
		calls  []call
		status int // 0: allowed; -1: the TLS handshake fails; else the HTTP status
	}{
		{"no token, no TLS: loopback may join", Options{Cluster: f, Forwarder: fw, Pools: f}, "", nil, []call{join, forward, admin}, 0},
		{"token: none sent", Options{Token: "tok", Cluster: f, Forwarder: fw}, "", nil, []call{join, forward}, 401},
		{"token: wrong", Options{Token: "tok", Cluster: f, Forwarder: fw}, "nope", nil, []call{join, forward}, 401},
		{"token: right", Options{Token: "tok", Cluster: f, Forwarder: fw}, "tok", nil, []call{join, forward}, 0},
		{"TLS and token: a node's certificate", tlsOpts("tok"), "", p.peer, []call{join, forward}, 0},
		{"TLS and token: the certificate is no operator", tlsOpts("tok"), "", p.peer, []call{admin}, 401},
		{"TLS and token: the token", tlsOpts("tok"), "tok", p.plain, []call{join, forward, admin}, 0},
		{"TLS and token: neither", tlsOpts("tok"), "", p.plain, []call{join, forward, admin}, 401},
		{"TLS without token: a node's certificate", tlsOpts(""), "", p.peer, []call{join, forward}, 0},
		{"TLS without token: no certificate", tlsOpts(""), "", p.plain, []call{join, forward}, 401},
		{"TLS: another CA's certificate", tlsOpts("tok"), "", p.stranger, []call{join, forward}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := serve(t, tc.o)
			c := NewClient(s.Addr().String(), tc.token, tc.tls)
			t.Cleanup(c.http.CloseIdleConnections) // before the server's shutdown
			for _, cl := range tc.calls {
				err := cl.do(c)
				var ae *Error
				switch {
				case tc.status == 0 && err != nil:
					t.Errorf("%s: %v, want it allowed", cl.name, err)
				case tc.status == -1 && (err == nil || errors.As(err, &ae)):
					t.Errorf("%s: %v, want the TLS handshake refused", cl.name, err)
				case tc.status > 0 && (!errors.As(err, &ae) || ae.Status != tc.status):
					t.Errorf("%s: %v, want HTTP %d", cl.name, err, tc.status)
				}
			}
		})
	}
}

// Without a token, writes and joins come from loopback only: a request
// that reaches the handler from elsewhere (another listener serving
// Handler) is refused.
func TestNoTokenLoopbackClientsOnly(t *testing.T) {
	f := &fakeNode{admin: map[string]string{}}
	s := serve(t, Options{Cluster: f, Pools: f, Status: f})
	for _, tc := range []struct {
		method, path, body string
		from               string
		want               int
	}{
		{"POST", "/v1/cluster/join", `{"id":"n2","raft_addr":"127.0.0.1:1"}`, "127.0.0.1:5000", 200},
		{"POST", "/v1/cluster/join", `{"id":"n2","raft_addr":"127.0.0.1:1"}`, "192.0.2.9:5000", 401},
		{"PUT", "/v1/pools/web/members/192.0.2.1/admin", `{"state":"drain"}`, "[::1]:5000", 200},
		{"PUT", "/v1/pools/web/members/192.0.2.1/admin", `{"state":"drain"}`, "192.0.2.9:5000", 401},
		{"GET", "/v1/status", "", "192.0.2.9:5000", 200}, // reads are open without ReadToken
	} {
		t.Run(tc.method+" "+tc.path+" from "+tc.from, func(t *testing.T) {
			r, _ := http.NewRequest(tc.method, "http://x"+tc.path, strings.NewReader(tc.body))
			r.RemoteAddr = tc.from
			w := httptest.NewRecorder()
			s.Handler().ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("HTTP %d %s, want %d", w.Code, w.Body.String(), tc.want)
			}
		})
	}
}

// /metrics and /v1/site/load follow reads (private with api_read_token)
// unless PublicMetrics; /healthz and /readyz are always public and say
// nothing but whether the node is alive and ready and why not.
func TestPublicEndpoints(t *testing.T) {
	f := &fakeNode{ready: errors.New("not in quorum (raft Candidate, no leader): serving the last known state")}
	reg := prometheus.NewRegistry()
	for _, tc := range []struct {
		name              string
		o                 Options
		metrics, readStat int
	}{
		{"reads open", Options{Token: "tok"}, 200, 200},
		{"reads private", Options{Token: "tok", ReadToken: true}, 401, 401},
		{"reads private, metrics public", Options{Token: "tok", ReadToken: true, PublicMetrics: true}, 200, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Status, o.Registry, o.Site = f, reg, siteFake{}
			s := serve(t, o)
			base := "http://" + s.Addr().String()
			for path, want := range map[string]int{"/metrics": tc.metrics, "/v1/site/load": tc.metrics, "/v1/status": tc.readStat, "/healthz": 200, "/readyz": 503, "/": 200, "/static/status.js": 200} {
				resp, body := httpGet(t, base+path, "")
				if resp.StatusCode != want {
					t.Errorf("GET %s without a token: %d, want %d", path, resp.StatusCode, want)
				}
				if path == "/readyz" && strings.Contains(body, "tok") {
					t.Errorf("/readyz says %s", body)
				}
				if want == 401 {
					if resp, _ := httpGet(t, base+path, "tok"); resp.StatusCode != 200 {
						t.Errorf("GET %s with the token: %d", path, resp.StatusCode)
					}
				}
			}
		})
	}
}

type siteFake struct{}

func (siteFake) SiteLoad(context.Context) (SiteLoad, error) { return SiteLoad{Load: 3}, nil }

// Bodies are bounded per route: a join or an admin change at 64 KiB, an
// apply at MaxApplyBody, a forwarded command at 32 MiB (one Raft entry)
// or MaxApplyBody when smaller; a larger one gets 413 saying so, and
// reaches no backend.
func TestBodyLimits(t *testing.T) {
	b := &fuzzBackend{}
	s := serve(t, Options{Token: "tok", MaxApplyBody: 1 << 20, Cluster: b, Pools: b, Configs: b, Forwarder: b})
	base := "http://" + s.Addr().String()
	apply := func(n int) string {
		return `{"main":"tern.yaml","files":{"tern.yaml":"` + strings.Repeat("#", n) + `"}}`
	}
	big := serve(t, Options{Token: "tok", Cluster: b, Pools: b, Configs: b, Forwarder: b})
	bigApply := "http://" + big.Addr().String()
	for _, tc := range []struct {
		name, base, method, path, body string
		want                           int
	}{
		{"default: apply over 64 MiB", bigApply, "POST", "/v1/config", apply(65 << 20), 200},
		{"default: forwarded command within 32 MiB", bigApply, "POST", "/v1/raft/apply", strings.Repeat("x", 32<<20), 200},
		{"default: forwarded command over 32 MiB", bigApply, "POST", "/v1/raft/apply", strings.Repeat("x", 32<<20+1), 413},
		{"join at 64 KiB", base, "POST", "/v1/cluster/join", `{"id":"n2","raft_addr":"` + strings.Repeat("x", 65<<10) + `"}`, 413},
		{"admin at 64 KiB", base, "PUT", "/v1/pools/web/members/192.0.2.1/admin", `{"state":"drain"}` + strings.Repeat(" ", 64<<10), 413},
		{"apply within the limit", base, "POST", "/v1/config", apply(900 << 10), 200},
		{"apply over the limit", base, "POST", "/v1/config", apply(1 << 20), 413},
		{"forwarded command over the limit", base, "POST", "/v1/raft/apply", strings.Repeat("x", 1<<20+1), 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := b.calls()
			r, _ := http.NewRequest(tc.method, tc.base+tc.path, strings.NewReader(tc.body))
			r.Header.Set("Authorization", "Bearer tok")
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			var eb errorBody
			json.NewDecoder(resp.Body).Decode(&eb)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("HTTP %d %q, want %d", resp.StatusCode, eb.Error, tc.want)
			}
			if tc.want == 413 && (!strings.Contains(eb.Error, "request body too large: more than") || b.calls() != before) {
				t.Fatalf("413 says %q, backend calls %d", eb.Error, b.calls()-before)
			}
		})
	}
}
