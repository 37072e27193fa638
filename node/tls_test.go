package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/internal/eventually"
	"github.com/ternlb/tern/internal/testpki"
)

// writeTLS writes a CA and a node certificate for 127.0.0.1 (serverAuth
// and clientAuth) into dir and returns the CA's pool.
func writeTLS(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	ca := testpki.NewCA(t, "tern test CA")
	cert, key := ca.Issue(t, "t1", nil)
	for name, data := range map[string][]byte{"ca.crt": ca.PEM, "n1.crt": cert, "n1.key": key} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

func status(code int) func(error) bool {
	return func(err error) bool {
		var ae *api.Error
		return errors.As(err, &ae) && ae.Status == code
	}
}

// With node.tls the API serves HTTPS with the node certificate: a client
// trusting the CA (the CLI's --ca, or another node's peer client) reads
// it, a plain-HTTP client does not. The token from node.api_token_file
// guards writes, and reads too with node.api_read_token.
func TestAPITLSAndToken(t *testing.T) {
	certs := t.TempDir()
	cas := writeTLS(t, certs)
	os.WriteFile(filepath.Join(certs, "token"), []byte("s3cret-token\n"), 0o600)
	for _, readToken := range []bool{false, true} {
		t.Run(fmt.Sprintf("api_read_token %v", readToken), func(t *testing.T) {
			yaml := fmt.Sprintf(`node:
  name: t1
  dns: ["127.0.0.1:0"]
  api: "127.0.0.1:0"
  tls: {cert: %[1]s/n1.crt, key: %[1]s/n1.key, ca: %[1]s/ca.crt}
  api_token_file: %[1]s/token
  api_read_token: %[2]v
pools:
  web:
    members: [{address: 192.0.2.1}]
zones:
  - file: z.zone
`, certs, readToken)
			n, _ := startNode(t, yaml, testZone)
			addr := n.APIAddr().String()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			trusting := &tls.Config{RootCAs: cas}
			anon := api.NewClient(addr, "", trusting)
			withToken := api.NewClient(addr, "s3cret-token", trusting)
			wrong := api.NewClient(addr, "other", trusting)

			if _, err := api.NewClient(addr, "s3cret-token", nil).Status(ctx); err == nil {
				t.Fatal("a plain-HTTP client read the HTTPS API")
			}
			if _, err := api.NewClient(addr, "s3cret-token", &tls.Config{}).Status(ctx); err == nil {
				t.Fatal("a client that does not trust the CA read the API")
			}
			if _, err := withToken.Status(ctx); err != nil {
				t.Fatalf("HTTPS client trusting the CA: %v", err)
			}
			if _, err := n.peer(addr).Status(ctx); err != nil {
				t.Fatalf("the node's own peer client (CA, node certificate, token): %v", err)
			}
			_, err := anon.Status(ctx)
			if readToken && !status(401)(err) {
				t.Fatalf("read without the token: %v, want 401", err)
			}
			if !readToken && err != nil {
				t.Fatalf("read without the token, reads open: %v", err)
			}
			if err := anon.SetAdmin(ctx, "web", "192.0.2.1", "drain"); !status(401)(err) {
				t.Fatalf("write without the token: %v, want 401", err)
			}
			if err := wrong.SetAdmin(ctx, "web", "192.0.2.1", "drain"); !status(401)(err) {
				t.Fatalf("write with a wrong token: %v, want 401", err)
			}
			if err := withToken.SetAdmin(ctx, "web", "192.0.2.1", "drain"); err != nil {
				t.Fatalf("write with the configured token: %v", err)
			}
		})
	}
}

// node.api_read_token without any token is refused at start rather than
// serving reads open; --api-token (Options.APIToken) outranks the
// configuration's token.
func TestTokenSources(t *testing.T) {
	for _, tc := range []struct {
		name, node, flag, want string
	}{
		{"read token without a token", "api_read_token: true", "", ""},
		{"the configuration's", "api_token: cfg-token, api_read_token: true", "", "cfg-token"},
		{"the flag outranks it", "api_token: cfg-token", "flag-token", "flag-token"},
		{"the flag alone", "api_read_token: true", "flag-token", "flag-token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "tern.yaml"), []byte("node: {name: t1, dns: [\"127.0.0.1:0\"], api: \"127.0.0.1:0\", "+tc.node+"}\npools:\n  web: {members: [{address: 192.0.2.1}]}\nzones: [{file: z.zone}]\n"), 0o644)
			os.WriteFile(filepath.Join(dir, "z.zone"), []byte(testZone), 0o644)
			cfg, err := config.Load(filepath.Join(dir, "tern.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			n, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler), APIToken: tc.flag})
			if tc.want == "" {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			n.Run(ctx) // releases the listeners
			if n.token != tc.want {
				t.Fatalf("token %q, want %q", n.token, tc.want)
			}
		})
	}
}

// Two nodes with node.tls: the second joins through the first's HTTPS API
// (verified against the CA, the token from the configuration), and a write
// sent to the follower is forwarded to the leader over HTTPS. Without a
// token (loopback nodes) the node certificate alone admits the join and
// the forwarded write: the API asks peers for it.
func TestClusterOverTLS(t *testing.T) {
	for _, token := range []string{"cluster-token", ""} {
		t.Run(fmt.Sprintf("token %q", token), func(t *testing.T) { clusterOverTLS(t, token) })
	}
}

func clusterOverTLS(t *testing.T, token string) {
	certs := t.TempDir()
	cas := writeTLS(t, certs)
	api1, raft1, api2, raft2 := freePort(t), freePort(t), freePort(t), freePort(t)
	tokenLine := ""
	if token != "" {
		tokenLine = "  api_token: " + token + "\n"
	}
	nodeYAML := func(name string, api, raft int, extra string) string {
		return fmt.Sprintf(`node:
  name: %[1]s
  dns: ["127.0.0.1:0"]
  api: "127.0.0.1:%[2]d"
  raft: "127.0.0.1:%[3]d"
  data: data
  tls: {cert: %[4]s/n1.crt, key: %[4]s/n1.key, ca: %[4]s/ca.crt}
%[6]s%[5]s
pools:
  web:
    members: [{address: 192.0.2.1}]
zones:
  - file: z.zone
`, name, api, raft, certs, extra, tokenLine)
	}
	n1, _ := startNode(t, nodeYAML("n1", api1, raft1, "  bootstrap: true"), testZone)
	eventually.True(t, 20*time.Second, func() bool {
		_, ok := n1.store.State().Config()
		return n1.store.IsLeader() && ok
	}, "n1 leads with a configuration")
	n2, _ := startNode(t, nodeYAML("n2", api2, raft2, fmt.Sprintf("  join: [\"127.0.0.1:%d\"]", api1)), testZone)
	eventually.True(t, 20*time.Second, func() bool {
		ms, err := n1.store.Members()
		return err == nil && len(ms) == 2
	}, "n2 joined through n1's HTTPS API")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c2 := api.NewClient(fmt.Sprintf("127.0.0.1:%d", api2), token, &tls.Config{RootCAs: cas})
	if err := c2.SetAdmin(ctx, "web", "192.0.2.1", "drain"); err != nil {
		t.Fatalf("write on the follower, forwarded over HTTPS: %v", err)
	}
	eventually.True(t, 5*time.Second, func() bool {
		return n1.store.State().Admin("web", "192.0.2.1") == "drain" && n2.store.State().Admin("web", "192.0.2.1") == "drain"
	}, "the leader applied the forwarded write")
}
