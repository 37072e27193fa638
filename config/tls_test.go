package config

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ternlb/tern/internal/testpki"
)

// testCA is the shared test CA; newTestCA keeps the tests' spelling.
type testCA = testpki.CA

func newTestCA(t *testing.T, name string) *testCA { return testpki.NewCA(t, name) }

func TestTLSSectionShape(t *testing.T) {
	tls := func(body string) string {
		return strings.Replace(base, "  dns: [\"127.0.0.1:5354\"]\n", "  dns: [\"127.0.0.1:5354\"]\n  tls:\n"+body, 1)
	}
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"none", base, nil},
		{"all three", tls("    cert: a.crt\n    key: a.key\n    ca: ca.crt\n"), nil},
		{"with server name", tls("    {cert: a.crt, key: a.key, ca: ca.crt, server_name: raft.tern.internal}\n"), nil},
		{"key missing", tls("    cert: a.crt\n    ca: ca.crt\n"), []string{`x.yaml:4: node.tls needs cert, key and ca (missing: key)`}},
		{"only server name", tls("    server_name: raft.tern.internal\n"), []string{`x.yaml:4: node.tls needs cert, key and ca (missing: cert, key, ca)`}},
		{"bad server name", tls("    {cert: a.crt, key: a.key, ca: ca.crt, server_name: \"raft..x\"}\n"), []string{`x.yaml:5: server_name "raft..x"`}},
		{"unknown key", tls("    cert: a.crt\n    key: a.key\n    ca: ca.crt\n    certificate: b.crt\n"), []string{`x.yaml:8: unknown key "certificate"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, ps := Parse("x.yaml", []byte(tc.yaml))
			if len(ps) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(tc.want), ps)
			}
			for i, w := range tc.want {
				if !strings.Contains(ps[i].String(), w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, ps[i].String(), w)
				}
			}
			// Parsed, not loaded from the host: the files are not read.
			if ps := c.CheckTLS(time.Now()); ps != nil {
				t.Errorf("CheckTLS without a host file system: %v", ps)
			}
		})
	}
}

func TestCheckTLSFiles(t *testing.T) {
	ca := newTestCA(t, "tern-ca")
	other := newTestCA(t, "other-ca")
	good, goodKey := ca.Issue(t, "n1", nil)
	_, strayKey := ca.Issue(t, "n9", nil)
	foreign, foreignKey := other.Issue(t, "n1", nil)
	expired, expiredKey := ca.Issue(t, "n1", func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
	})
	serverOnly, serverOnlyKey := ca.Issue(t, "n1", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} })
	noEKU, noEKUKey := ca.Issue(t, "n1", func(c *x509.Certificate) { c.ExtKeyUsage = nil })

	// Lines: tls 4, cert 5, key 6, ca 7.
	yaml := strings.Replace(base, "  dns: [\"127.0.0.1:5354\"]\n",
		"  dns: [\"127.0.0.1:5354\"]\n  tls:\n    cert: tls/n1.crt\n    key: tls/n1.key\n    ca: tls/ca.crt\n", 1)
	tests := []struct {
		name          string
		cert, key, ca []byte // nil: file absent
		want          string // substring of the one problem; "" for none
	}{
		{"valid", good, goodKey, ca.PEM, ""},
		{"no extended key usage is any usage", noEKU, noEKUKey, ca.PEM, ""},
		{"cert missing", nil, goodKey, ca.PEM, "tern.yaml:5: node.tls.cert tls/n1.crt: no such file or directory"},
		{"cert not PEM", []byte("hello"), goodKey, ca.PEM, "tern.yaml:5: node.tls.cert tls/n1.crt: no PEM CERTIFICATE block"},
		{"key of another certificate", good, strayKey, ca.PEM, "tern.yaml:6: node.tls.key tls/n1.key: does not go with the certificate"},
		{"key not PEM", good, []byte("-----"), ca.PEM, "tern.yaml:6: node.tls.key tls/n1.key: no PEM PRIVATE KEY block"},
		{"ca not PEM", good, goodKey, []byte("x"), "tern.yaml:7: node.tls.ca tls/ca.crt: no PEM CERTIFICATE block"},
		{"cert from another CA", foreign, foreignKey, ca.PEM, `tern.yaml:5: node.tls.cert tls/n1.crt: certificate "n1" is not signed by the CA`},
		{"expired", expired, expiredKey, ca.PEM, `tern.yaml:5: node.tls.cert tls/n1.crt: certificate "n1" expired at`},
		{"server auth only", serverOnly, serverOnlyKey, ca.PEM, `tern.yaml:5: node.tls.cert tls/n1.crt: certificate "n1" does not allow clientAuth`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "tls"), 0o700); err != nil {
				t.Fatal(err)
			}
			for name, data := range map[string][]byte{"tern.yaml": []byte(yaml), "tls/n1.crt": tc.cert, "tls/n1.key": tc.key, "tls/ca.crt": tc.ca} {
				if data != nil {
					if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			// Load from the directory so that messages name relative paths.
			t.Chdir(dir)
			// Load checks the files itself; CheckTLS says the same again.
			c, err := Load("tern.yaml")
			var loadPs Problems
			if err != nil && !errors.As(err, &loadPs) {
				t.Fatalf("load: %v", err)
			}
			ps := c.CheckTLS(time.Now())
			if len(loadPs) != len(ps) {
				t.Errorf("Load reported %v, CheckTLS %v", loadPs, ps)
			}
			if tc.want == "" {
				if ps != nil {
					t.Fatalf("problems: %v", ps)
				}
				if got := c.HostPath(c.Node.TLS.Cert); got != filepath.Join(dir, "tls", "n1.crt") {
					t.Errorf("host path of the cert = %q", got)
				}
				return
			}
			if len(ps) != 1 || !strings.Contains(ps[0].String(), tc.want) {
				t.Fatalf("problems:\n%v\nwant one containing %q", ps, tc.want)
			}
		})
	}
}
