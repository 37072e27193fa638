package raftstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/ternlb/tern/config"
)

// TLSFiles names the PEM files of a node's Raft TLS identity (node.tls).
// With them the Raft transport runs over mutual TLS 1.3: a node presents
// Cert to every peer, in both directions, and accepts a peer only if the
// peer's certificate chains to CA. A node dialling a peer also checks the
// peer's name: ServerName when set (every node's certificate carries that
// DNS name), otherwise the host of the Raft address dialled (a peer at
// 192.0.2.7:7000 needs the IP SAN 192.0.2.7; one at raft1.example:7000
// the DNS SAN raft1.example). A node accepting a connection checks the
// chain only: a client's source address says nothing.
//
// The files are read again, at most once a second, when a connection is
// made, and a changed set is used for new connections (connections already
// up keep theirs). A set that does not load (a certificate written before
// its key, an expired certificate) is logged and the previous one kept.
type TLSFiles struct {
	Cert, Key, CA string
	ServerName    string

	reloadEvery time.Duration // tests shorten it; 0 means a second
}

// tlsAccepted is the byte a node's Raft listener sends once it has
// verified a peer's certificate, before any Raft traffic. In TLS 1.3 a
// client finishes its handshake before the server has checked the client's
// certificate; waiting for this byte lets the dialling side learn that it
// was refused (the server's alert arrives instead) while still dialling.
const tlsAccepted byte = 0x01

// tlsMaterial holds the current key pair and CA pool and reloads them.
type tlsMaterial struct {
	files TLSFiles
	log   *slog.Logger

	mu      sync.Mutex
	kp      *config.KeyPair
	raw     [3][]byte
	checked time.Time
	lastErr string
}

func loadTLSMaterial(f TLSFiles, log *slog.Logger) (*tlsMaterial, error) {
	m := &tlsMaterial{files: f, log: log}
	raw, err := m.read()
	if err != nil {
		return nil, err
	}
	kp, err := m.parse(raw)
	if err != nil {
		return nil, err
	}
	m.kp, m.raw, m.checked = kp, raw, time.Now()
	if left := time.Until(kp.Cert.Leaf.NotAfter); left < 14*24*time.Hour {
		log.Warn("raft tls: this node's certificate expires soon", "cert", f.Cert, "not_after", kp.Cert.Leaf.NotAfter)
	}
	return m, nil
}

func (m *tlsMaterial) path(which string) string {
	switch which {
	case "key":
		return m.files.Key
	case "ca":
		return m.files.CA
	}
	return m.files.Cert
}

func (m *tlsMaterial) read() ([3][]byte, error) {
	var raw [3][]byte
	for i, which := range []string{"cert", "key", "ca"} {
		b, err := os.ReadFile(m.path(which))
		if err != nil {
			return raw, fmt.Errorf("raft tls: node.tls.%s: %w", which, err)
		}
		raw[i] = b
	}
	return raw, nil
}

func (m *tlsMaterial) parse(raw [3][]byte) (*config.KeyPair, error) {
	kp, err := config.ParseKeyPair(raw[0], raw[1], raw[2], time.Now())
	if err != nil {
		which := "cert"
		var fe *config.TLSFileError
		if errors.As(err, &fe) {
			which = fe.Which
		}
		return nil, fmt.Errorf("raft tls: node.tls.%s %s: %w", which, m.path(which), err)
	}
	return kp, nil
}

// current returns the key pair to use for a new connection, reloading the
// files when they changed.
func (m *tlsMaterial) current() *config.KeyPair {
	m.mu.Lock()
	defer m.mu.Unlock()
	every := m.files.reloadEvery
	if every <= 0 {
		every = time.Second
	}
	if time.Since(m.checked) < every {
		return m.kp
	}
	m.checked = time.Now()
	raw, err := m.read()
	if err == nil && bytes.Equal(raw[0], m.raw[0]) && bytes.Equal(raw[1], m.raw[1]) && bytes.Equal(raw[2], m.raw[2]) {
		return m.kp
	}
	var kp *config.KeyPair
	if err == nil {
		kp, err = m.parse(raw)
	}
	if err != nil {
		if msg := err.Error(); msg != m.lastErr {
			m.lastErr = msg
			m.log.Error("raft tls: keeping the previous certificate, the files on disk do not load", "err", err)
		}
		return m.kp
	}
	m.kp, m.raw, m.lastErr = kp, raw, ""
	m.log.Info("raft tls: reloaded certificate", "cert", m.files.Cert, "subject", kp.Cert.Leaf.Subject.String(), "not_after", kp.Cert.Leaf.NotAfter)
	return kp
}

func (m *tlsMaterial) serverConfig() *tls.Config {
	kp := m.current()
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{kp.Cert},
		ClientAuth:             tls.RequireAndVerifyClientCert,
		ClientCAs:              kp.CAs,
		SessionTicketsDisabled: true, // every connection verifies afresh
	}
}

func (m *tlsMaterial) clientConfig(serverName string) *tls.Config {
	kp := m.current()
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Present the certificate even when the peer's CA list does not
		// name its issuer (crypto/tls would send none): the peer then logs
		// "signed by unknown authority", which says what is wrong.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &kp.Cert, nil },
		RootCAs:              kp.CAs,
		ServerName:           serverName,
	}
}

// tlsStream is the raft.StreamLayer of a TLS transport: a TCP listener
// whose connections are wrapped by tls.Server, and a dialer using
// tls.Dialer, both configured from the current tlsMaterial.
type tlsStream struct {
	ln         net.Listener
	advertise  net.Addr
	m          *tlsMaterial
	serverName string
	timeout    time.Duration // for a handshake
	log        *slog.Logger
}

var _ raft.StreamLayer = (*tlsStream)(nil)

func newTLSStream(bind string, advertise net.Addr, f TLSFiles, log *slog.Logger) (*tlsStream, error) {
	m, err := loadTLSMaterial(f, log)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	st := &tlsStream{ln: ln, advertise: advertise, m: m, serverName: f.ServerName, timeout: 10 * time.Second, log: log}
	if a, ok := st.Addr().(*net.TCPAddr); !ok || a.IP == nil || a.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("%s is not an address other nodes can dial: set the advertised address", st.Addr())
	}
	return st, nil
}

// Accept returns the next connection; its TLS handshake runs on first use,
// in raft's goroutine for that connection, so a slow or hostile peer does
// not hold up the accept loop.
func (s *tlsStream) Accept() (net.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.m.serverConfig(), nil
		},
	}
	return &serverConn{Conn: tls.Server(c, cfg), s: s}, nil
}

func (s *tlsStream) Close() error { return s.ln.Close() }

func (s *tlsStream) Addr() net.Addr {
	if s.advertise != nil {
		return s.advertise
	}
	return s.ln.Addr()
}

// Dial connects to a peer's Raft listener, verifies its certificate and
// waits until the peer has accepted this node's certificate in turn.
func (s *tlsStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.dial(ctx, string(address))
}

func (s *tlsStream) dial(ctx context.Context, addr string) (net.Conn, error) {
	name := s.serverName
	if name == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("raft tls: peer address %q: %w", addr, err)
		}
		name = host
	}
	d := tls.Dialer{Config: s.m.clientConfig(name)}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			return nil, fmt.Errorf("raft tls: %w", err)
		}
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w (is the peer running without node.tls?)", err)
		}
		return nil, fmt.Errorf("raft tls: handshake with %s: %w", addr, err)
	}
	tc := c.(*tls.Conn)
	dl, _ := ctx.Deadline()
	tc.SetReadDeadline(dl)
	var b [1]byte
	if _, err := io.ReadFull(tc, b[:]); err != nil || b[0] != tlsAccepted {
		tc.Close()
		if err == nil {
			err = fmt.Errorf("unexpected first byte %#x", b[0])
		}
		return nil, fmt.Errorf("raft tls: %s did not accept this node's certificate: %w", addr, err)
	}
	tc.SetReadDeadline(time.Time{})
	return tc, nil
}

// serverConn runs the server side of the handshake once, sends
// tlsAccepted, and logs a refused peer in words an operator can act on.
// To raft, a refused connection is one that ended (io.EOF), which it does
// not log again.
type serverConn struct {
	*tls.Conn
	s    *tlsStream
	once sync.Once
	err  error
}

func (c *serverConn) handshake() error {
	c.once.Do(func() {
		c.Conn.SetDeadline(time.Now().Add(c.s.timeout))
		err := c.Conn.Handshake()
		if err == nil {
			_, err = c.Conn.Write([]byte{tlsAccepted})
		}
		c.Conn.SetDeadline(time.Time{})
		if err != nil {
			c.err = err
			msg := "raft tls: refused a connection: a peer needs a certificate signed by node.tls.ca"
			if strings.Contains(err.Error(), "remote error") {
				msg = "raft tls: a peer refused this node's certificate: do both trust the same node.tls.ca?"
			}
			c.s.log.Warn(msg, "remote", c.Conn.RemoteAddr().String(), "err", err)
		}
	})
	return c.err
}

func (c *serverConn) Read(p []byte) (int, error) {
	if c.handshake() != nil {
		return 0, io.EOF
	}
	return c.Conn.Read(p)
}

func (c *serverConn) Write(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// newTLSTransport is raft.NewTCPTransport over mutual TLS.
func newTLSTransport(bind string, advertise net.Addr, f TLSFiles, hl hclog.Logger, log *slog.Logger) (*raft.NetworkTransport, *tlsStream, error) {
	st, err := newTLSStream(bind, advertise, f, log)
	if err != nil {
		return nil, nil, err
	}
	tr := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  st,
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  hl.Named("transport"),
	})
	return tr, st, nil
}
