package raftstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ternlb/tern/internal/testpki"

	"github.com/hashicorp/raft"
	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/internal/eventually"
)

// testCA is the shared test CA; newTestCA keeps the tests' spelling.
type testCA = testpki.CA

func newTestCA(t *testing.T, name string) *testCA { return testpki.NewCA(t, name) }

// files writes a node's certificate, key and the CA bundle into a new
// directory and returns them as TLSFiles.
func tlsFiles(t *testing.T, cert, key, caPEM []byte) TLSFiles {
	t.Helper()
	dir := t.TempDir()
	f := TLSFiles{Cert: filepath.Join(dir, "node.crt"), Key: filepath.Join(dir, "node.key"), CA: filepath.Join(dir, "ca.crt")}
	for p, data := range map[string][]byte{f.Cert: cert, f.Key: key, f.CA: caPEM} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// logBuf collects a node's log lines for the test to look for refusals.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.b.String(), s)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuf) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// openTLS opens a node on 127.0.0.1:0 with f (nil: plain TCP).
func openTLS(t *testing.T, id NodeID, f *TLSFiles, bootstrap bool, log *logBuf) *Store {
	t.Helper()
	o := testOptions(id, t.TempDir())
	o.RaftAddr, o.Bootstrap, o.TLS = "127.0.0.1:0", bootstrap, f
	if log != nil {
		o.Logger = log.logger()
	}
	s, err := Open(o)
	if err != nil {
		t.Fatalf("open %s: %v", id, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// serveStream accepts connections on st and reads them to the end (the
// first read runs the server side of the handshake), until the test ends.
func serveStream(t *testing.T, st *tlsStream) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := st.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	t.Cleanup(func() { st.Close(); wg.Wait() })
}

// rawStream is a stream layer with a key pair that did not go through
// ParseKeyPair (an expired certificate, one from a foreign CA), as a
// hostile or broken peer would hold.
func rawStream(t *testing.T, cert, key []byte, cas ...*testCA) *tlsStream {
	t.Helper()
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	for _, ca := range cas {
		pool.AddCert(ca.Cert)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &tlsMaterial{kp: &config.KeyPair{Cert: pair, CAs: pool}, checked: time.Now().Add(time.Hour), log: slog.New(slog.DiscardHandler)}
	return &tlsStream{ln: ln, m: m, timeout: 5 * time.Second, log: m.log}
}

func TestTLSClusterRefusesNodesWithoutAValidCertificate(t *testing.T) {
	ca := newTestCA(t, "tern-ca")
	other := newTestCA(t, "other-ca")
	ctx := context.Background()
	logs := map[NodeID]*logBuf{}
	nodes := map[NodeID]*Store{}
	for i, id := range []NodeID{"n1", "n2", "n3"} {
		cert, key := ca.Issue(t, string(id), nil)
		f := tlsFiles(t, cert, key, ca.PEM)
		logs[id] = &logBuf{}
		nodes[id] = openTLS(t, id, &f, i == 0, logs[id])
	}
	c := &cluster{t: t, nodes: nodes, out: map[NodeID]bool{}}
	for _, id := range []NodeID{"n2", "n3"} {
		c.retry("join "+string(id), func(l *Store) error {
			return l.Join(ctx, id, nodes[id].RaftAddr(), "api-"+string(id))
		})
	}
	c.apply(verdict("n1", "m1", true, t0))
	c.converged()
	for id, s := range nodes {
		eventually.True(t, 5*time.Second, func() bool { return s.Status().InQuorum }, string(id)+" in quorum over TLS")
	}

	// The cluster must come out of every refusal as it went in: same
	// members, same term, still taking writes.
	members := func() []Member {
		t.Helper()
		var ms []Member
		c.retry("members", func(l *Store) (err error) { ms, err = l.Members(); return err })
		return ms
	}
	before := members()
	unharmed := func(t *testing.T) {
		t.Helper()
		if got := members(); len(got) != len(before) {
			t.Fatalf("members changed: %+v, were %+v", got, before)
		}
		c.apply(verdict("n2", "m1", true, t0))
		c.converged()
	}
	joinRefused := func(t *testing.T, id NodeID, addr string, want string) {
		t.Helper()
		l := c.leader()
		err := l.Join(ctx, id, addr, "api-x")
		if !errors.Is(err, ErrPeerTLS) || !strings.Contains(err.Error(), want) {
			t.Fatalf("join of %s: %v, want ErrPeerTLS with %q", id, err, want)
		}
		if !logs[l.ID()].has("join refused: the node failed mutual TLS") || !logs[l.ID()].has("node="+string(id)) {
			t.Fatalf("the leader did not log the refused join of %s", id)
		}
		unharmed(t)
	}

	t.Run("certificate from another CA", func(t *testing.T) {
		c.t = t
		cert, key := other.Issue(t, "rogue", nil)
		f := tlsFiles(t, cert, key, other.PEM)
		log := &logBuf{}
		rogue := openTLS(t, "rogue1", &f, false, log)
		joinRefused(t, "rogue1", rogue.RaftAddr(), "certificate signed by unknown authority")
		// The rogue saw the leader hang up on its certificate.
		eventually.True(t, 5*time.Second, func() bool { return log.has("a peer refused this node's certificate") }, "the rogue to log the refusal")
	})

	t.Run("foreign certificate dialling in", func(t *testing.T) {
		c.t = t
		// It trusts the cluster's CA (which is public) but holds no
		// certificate signed by it; it asks for votes with a high term.
		cert, key := other.Issue(t, "rogue", nil)
		st := rawStream(t, cert, key, ca, other)
		tr := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: st, MaxPool: 1, Timeout: 5 * time.Second})
		defer tr.Close()
		l := c.leader()
		term := l.Status().Term
		var resp raft.RequestVoteResponse
		err := tr.RequestVote(raft.ServerID(l.ID()), raft.ServerAddress(l.RaftAddr()),
			&raft.RequestVoteRequest{RPCHeader: raft.RPCHeader{ID: []byte("rogue"), Addr: []byte(st.Addr().String())}, Term: term + 100, LastLogIndex: 1 << 40, LastLogTerm: term + 100}, &resp)
		if err == nil || !strings.Contains(err.Error(), "did not accept this node's certificate") {
			t.Fatalf("vote request with a foreign certificate: %v", err)
		}
		eventually.True(t, 5*time.Second, func() bool {
			return logs[l.ID()].has("raft tls: refused a connection") && logs[l.ID()].has("unknown authority")
		}, "the leader to log the refusal")
		if got := l.Status().Term; got >= term+100 {
			t.Fatalf("the leader took the rogue's term %d", got)
		}
		unharmed(t)
	})

	t.Run("plain TCP node", func(t *testing.T) {
		c.t = t
		rogue := openTLS(t, "rogue2", nil, false, nil)
		joinRefused(t, "rogue2", rogue.RaftAddr(), "running without node.tls")
		// A plain transport cannot talk to the cluster either.
		tr, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 5*time.Second, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		l := c.leader()
		var resp raft.AppendEntriesResponse
		err = tr.AppendEntries(raft.ServerID(l.ID()), raft.ServerAddress(l.RaftAddr()),
			&raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte("rogue2")}, Term: l.Status().Term + 100}, &resp)
		if err == nil {
			t.Fatalf("plain AppendEntries to a TLS node answered: %+v", resp)
		}
		eventually.True(t, 5*time.Second, func() bool {
			return logs[l.ID()].has("does not look like a TLS handshake")
		}, "the leader to log the plain connection")
		unharmed(t)
	})

	t.Run("expired certificate", func(t *testing.T) {
		c.t = t
		cert, key := ca.Issue(t, "stale", func(c *x509.Certificate) {
			c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
		})
		st := rawStream(t, cert, key, ca)
		serveStream(t, st)
		joinRefused(t, "stale", st.Addr().String(), "certificate has expired")

		// Dialling in with it is refused too.
		l := c.leader()
		if _, err := st.Dial(raft.ServerAddress(l.RaftAddr()), 5*time.Second); err == nil || !strings.Contains(err.Error(), "did not accept") {
			t.Fatalf("dial with an expired certificate: %v", err)
		}
		eventually.True(t, 5*time.Second, func() bool { return logs[l.ID()].has("expired") }, "the leader to log the expired certificate")

		// A node is not even started with one.
		f := tlsFiles(t, cert, key, ca.PEM)
		o := testOptions("stale", t.TempDir())
		o.RaftAddr, o.TLS = "127.0.0.1:0", &f
		if s, err := Open(o); err == nil || !strings.Contains(err.Error(), "node.tls.cert "+f.Cert) || !strings.Contains(err.Error(), "expired at") {
			if s != nil {
				s.Close()
			}
			t.Fatalf("open with an expired certificate: %v", err)
		}
	})
}

func TestTLSStreamHandshakes(t *testing.T) {
	ca := newTestCA(t, "tern-ca")
	named := func(c *x509.Certificate) { c.IPAddresses, c.DNSNames = nil, []string{"raft.tern.test"} }
	serverCert, serverKey := ca.Issue(t, "server", named)
	clientCert, clientKey := ca.Issue(t, "client", named)
	server := rawStream(t, serverCert, serverKey, ca)
	serveStream(t, server)
	elsewhereCert, elsewhereKey := ca.Issue(t, "elsewhere", func(c *x509.Certificate) { c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 2)} })
	elsewhere := rawStream(t, elsewhereCert, elsewhereKey, ca)
	serveStream(t, elsewhere)
	ipCert, ipKey := ca.Issue(t, "ip", nil)
	ip := rawStream(t, ipCert, ipKey, ca)
	serveStream(t, ip)

	tests := []struct {
		name       string
		server     *tlsStream
		serverName string
		tlsMax     uint16 // 0: no cap
		noCert     bool   // present no client certificate
		want       string // "" for success
	}{
		{"IP SAN equal to the dialled address", ip, "", 0, false, ""},
		{"IP SAN of another address", elsewhere, "", 0, false, "certificate is valid for 127.0.0.2, not 127.0.0.1"},
		{"no IP SAN", server, "", 0, false, "doesn't contain any IP SANs"},
		{"cluster server name", server, "raft.tern.test", 0, false, ""},
		{"wrong cluster server name", server, "other.tern.test", 0, false, "not other.tern.test"},
		{"TLS 1.2 refused", ip, "", tls.VersionTLS12, false, "protocol version"},
		{"crypto/tls client with a certificate", ip, "", tls.VersionTLS13, false, ""},
		{"no client certificate", ip, "", 0, true, "certificate required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := raft.ServerAddress(tc.server.Addr().String())
			client := rawStream(t, clientCert, clientKey, ca)
			defer client.Close()
			client.serverName = tc.serverName
			var err error
			if tc.tlsMax != 0 || tc.noCert {
				// crypto/tls directly, then wait for the listener's verdict.
				cfg := client.m.clientConfig("127.0.0.1")
				if tc.tlsMax != 0 {
					cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tc.tlsMax
				}
				if tc.noCert {
					cfg.GetClientCertificate = nil
				}
				var c *tls.Conn
				if c, err = tls.Dial("tcp", string(addr), cfg); err == nil {
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					var b [1]byte
					if _, err = c.Read(b[:]); err == nil && b[0] != tlsAccepted {
						t.Fatalf("first byte %#x", b[0])
					}
					c.Close()
				}
			} else {
				var c net.Conn
				if c, err = client.Dial(addr, 5*time.Second); err == nil {
					c.Close()
				}
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("dial: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("dial: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestTLSReloadsChangedFiles(t *testing.T) {
	ca := newTestCA(t, "tern-ca")
	cert, key := ca.Issue(t, "before", nil)
	f := tlsFiles(t, cert, key, ca.PEM)
	f.reloadEvery = time.Nanosecond
	log := &logBuf{}
	ln, err := newTLSStream("127.0.0.1:0", nil, f, log.logger())
	if err != nil {
		t.Fatal(err)
	}
	serveStream(t, ln)
	cc, ck := ca.Issue(t, "client", nil)
	client := rawStream(t, cc, ck, ca)
	defer client.Close()
	presented := func() string {
		t.Helper()
		c, err := client.Dial(raft.ServerAddress(ln.Addr().String()), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.(*tls.Conn).ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	write := func(p string, data []byte) {
		t.Helper()
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got := presented(); got != "before" {
		t.Fatalf("presents %q", got)
	}
	cert, key = ca.Issue(t, "after", nil)
	write(f.Cert, cert)
	write(f.Key, key)
	if got := presented(); got != "after" {
		t.Fatalf("after rotation presents %q", got)
	}

	// A certificate written before its key: the old pair stays in use.
	next, _ := ca.Issue(t, "half-written", nil)
	write(f.Cert, next)
	if got := presented(); got != "after" {
		t.Fatalf("with a mismatched key presents %q", got)
	}
	if !log.has("keeping the previous certificate") || !log.has("node.tls.key") {
		t.Fatalf("no log of the bad pair:\n%s", log.String())
	}
}

func TestOptionsForTLS(t *testing.T) {
	dir := t.TempDir()
	yaml := "node:\n  name: n1\n  raft: 127.0.0.1:7000\n  tls: {cert: tls/n1.crt, key: tls/n1.key, ca: /etc/tern/ca.crt, server_name: raft.tern.test}\nzones: [{file: z.zone}]\n"
	if err := os.WriteFile(filepath.Join(dir, "tern.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	// The files do not exist: Load reports them but still returns the
	// configuration, which is all OptionsFor needs.
	c, err := config.Load(filepath.Join(dir, "tern.yaml"))
	if c == nil {
		t.Fatal(err)
	}
	o := OptionsFor(c)
	want := TLSFiles{Cert: filepath.Join(dir, "tls/n1.crt"), Key: filepath.Join(dir, "tls/n1.key"), CA: "/etc/tern/ca.crt", ServerName: "raft.tern.test"}
	if o.TLS == nil || *o.TLS != want {
		t.Fatalf("TLS = %+v, want %+v", o.TLS, want)
	}
	c.Node.TLS = config.TLS{}
	if o := OptionsFor(c); o.TLS != nil {
		t.Fatalf("without node.tls: %+v", o.TLS)
	}
}
