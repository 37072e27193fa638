package config

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// TLS names this node's certificate, its private key and the CA that signs
// every node's certificate, as PEM files on this host (paths relative to
// the configuration file). When set, the Raft transport runs over mutual
// TLS: each node presents its certificate and accepts only peers whose
// certificate the CA signed.
//
//	node:
//	  tls: {cert: tls/n1.crt, key: tls/n1.key, ca: tls/ca.crt}
type TLS struct {
	// Cert is this node's certificate, optionally followed by the
	// intermediate certificates up to the CA. It serves both ends of a
	// connection, so it must allow serverAuth and clientAuth (or name no
	// extended key usage at all).
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// CA holds the certificate(s) a peer's certificate must chain to.
	CA string `yaml:"ca"`
	// ServerName, when set, is the DNS name every peer's certificate must
	// carry. Empty: the host of the Raft address dialled, so a peer at
	// 192.0.2.7:7000 must hold a certificate with IP SAN 192.0.2.7.
	ServerName string `yaml:"server_name"`
}

// Enabled reports whether TLS is configured at all.
func (t TLS) Enabled() bool { return t.Cert != "" || t.Key != "" || t.CA != "" || t.ServerName != "" }

// KeyPair is a node's parsed TLS material: what ParseKeyPair accepted.
type KeyPair struct {
	Cert          tls.Certificate // with Leaf set
	CAs           *x509.CertPool  // the CA file's certificates
	Intermediates []*x509.Certificate
}

// TLSFileError is a problem with one of the three TLS files; Which is
// "cert", "key" or "ca".
type TLSFileError struct {
	Which string
	Err   error
}

func (e *TLSFileError) Error() string { return e.Err.Error() }
func (e *TLSFileError) Unwrap() error { return e.Err }

// ParseKeyPair parses PEM data for a node certificate, its key and the CA,
// and checks that they can work: the key matches the certificate, the
// certificate chains to the CA, allows serverAuth and clientAuth, and is
// valid at now. An error is a *TLSFileError naming the file at fault.
func ParseKeyPair(certPEM, keyPEM, caPEM []byte, now time.Time) (*KeyPair, error) {
	bad := func(which, format string, args ...any) error {
		return &TLSFileError{Which: which, Err: fmt.Errorf(format, args...)}
	}
	chain, err := pemCerts(certPEM)
	if err != nil {
		return nil, bad("cert", "%w", err)
	}
	cas, err := pemCerts(caPEM)
	if err != nil {
		return nil, bad("ca", "%w", err)
	}
	if blk, _ := pem.Decode(keyPEM); blk == nil || !bytes.Contains([]byte(blk.Type), []byte("PRIVATE KEY")) {
		return nil, bad("key", "no PEM PRIVATE KEY block")
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, bad("key", "does not go with the certificate: %w", err)
	}
	leaf := chain[0]
	pair.Leaf = leaf
	kp := &KeyPair{Cert: pair, CAs: x509.NewCertPool(), Intermediates: chain[1:]}
	for _, c := range cas {
		kp.CAs.AddCert(c)
	}
	if now.Before(leaf.NotBefore) {
		return nil, bad("cert", "certificate %s is not valid before %s", describe(leaf), leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(leaf.NotAfter) {
		return nil, bad("cert", "certificate %s expired at %s: issue a new one", describe(leaf), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	inter := x509.NewCertPool()
	for _, c := range kp.Intermediates {
		inter.AddCert(c)
	}
	for _, u := range []struct {
		eku  x509.ExtKeyUsage
		name string
	}{{x509.ExtKeyUsageServerAuth, "serverAuth"}, {x509.ExtKeyUsageClientAuth, "clientAuth"}} {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: kp.CAs, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{u.eku}})
		var inv x509.CertificateInvalidError
		switch {
		case err == nil:
		case errors.As(err, &inv) && inv.Reason == x509.IncompatibleUsage:
			return nil, bad("cert", "certificate %s does not allow %s: a Raft peer's certificate serves both ends, issue it with serverAuth and clientAuth", describe(leaf), u.name)
		default:
			return nil, bad("cert", "certificate %s is not signed by the CA: %w", describe(leaf), err)
		}
	}
	return kp, nil
}

func pemCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return out, nil
}

func describe(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return fmt.Sprintf("%q", c.Subject.CommonName)
	}
	return "serial " + c.SerialNumber.String()
}

// validateTLS checks the shape of node.tls (all three files or none); the
// files themselves are read by CheckTLS.
func (c *Config) validateTLS(add func(path, format string, args ...any)) {
	t := c.Node.TLS
	if !t.Enabled() {
		return
	}
	var missing []string
	for _, f := range []struct{ key, v string }{{"cert", t.Cert}, {"key", t.Key}, {"ca", t.CA}} {
		if f.v == "" {
			missing = append(missing, f.key)
		}
	}
	if len(missing) > 0 {
		add("node.tls", "node.tls needs cert, key and ca (missing: %s), or no tls section at all for plain TCP", strings.Join(missing, ", "))
	}
	if t.ServerName != "" {
		if _, ok := dns.IsDomainName(t.ServerName); !ok || t.ServerName[len(t.ServerName)-1] == '.' {
			add("node.tls.server_name", "server_name %q: write a host name like raft.tern.internal (no trailing dot), the DNS name in every node's certificate", t.ServerName)
		}
	}
}

// CheckTLS reads node.tls's files and reports what ParseKeyPair finds wrong
// with them at the line of the key naming the file. node.tls names files
// on this host, so a configuration not loaded from the host (a replicated
// bundle, whose node section may be another node's) is not checked: the
// result is nil, as it is without a tls section.
func (c *Config) CheckTLS(now time.Time) Problems {
	t := c.Node.TLS
	if !c.onHost || t.Cert == "" || t.Key == "" || t.CA == "" {
		return nil
	}
	var ps Problems
	data := map[string][]byte{}
	for _, f := range []struct{ which, p string }{{"cert", t.Cert}, {"key", t.Key}, {"ca", t.CA}} {
		b, err := fs.ReadFile(c.FS, c.Resolve(f.p))
		if err != nil {
			ps = append(ps, Problem{File: c.Name, Line: c.Line("node.tls." + f.which),
				Msg: fmt.Sprintf("node.tls.%s %s: %v", f.which, c.DisplayPath(f.p), unwrapPath(err))})
			continue
		}
		data[f.which] = b
	}
	if len(ps) > 0 {
		return ps
	}
	if _, err := ParseKeyPair(data["cert"], data["key"], data["ca"], now); err != nil {
		which := "cert"
		var fe *TLSFileError
		if errors.As(err, &fe) {
			which = fe.Which
		}
		p := map[string]string{"cert": t.Cert, "key": t.Key, "ca": t.CA}[which]
		ps = append(ps, Problem{File: c.Name, Line: c.Line("node.tls." + which),
			Msg: fmt.Sprintf("node.tls.%s %s: %v", which, c.DisplayPath(p), err)})
	}
	return ps
}

// unwrapPath drops the fs.PathError's own path (a path into c.FS, which
// reads badly) and keeps its cause.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
