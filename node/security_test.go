package node

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/internal/eventually"
)

// A node refuses to start with its API beyond loopback and no token,
// before it opens its data directory or binds anything, and says at
// node.api's line how to set a token or which loopback address to use.
func TestAPIBeyondLoopbackNeedsToken(t *testing.T) {
	port := freePort(t)
	for _, addr := range []string{fmt.Sprintf(":%d", port), fmt.Sprintf("0.0.0.0:%d", port), fmt.Sprintf("[::]:%d", port), fmt.Sprintf("tern.example.com:%d", port)} {
		t.Run(addr, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "z.zone"), []byte(testZone), 0o644)
			os.WriteFile(filepath.Join(dir, "tern.yaml"), []byte(fmt.Sprintf(`node:
  name: t1
  dns: ["127.0.0.1:0"]
  api: %q
  raft: "127.0.0.1:0"
  data: data
  bootstrap: true
pools:
  web: {members: [{address: 192.0.2.1}]}
zones: [{file: z.zone}]
`, addr)), 0o644)
			cfg, err := config.Load(filepath.Join(dir, "tern.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			n, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler)})
			if !errors.Is(err, api.ErrInsecure) || n != nil {
				t.Fatalf("New = %v, %v; want api.ErrInsecure", n, err)
			}
			for _, want := range []string{"tern.yaml:4: node.api " + fmt.Sprintf("%q", addr), "node.api_token_file", fmt.Sprintf(`api: "127.0.0.1:%d"`, port)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q:\n%v", want, err)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "data")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the data directory was opened before the refusal: %v", err)
			}
		})
	}
}

// execCheck is a check that appends the member to file at each probe.
func execCheck(file string) string {
	return fmt.Sprintf(`{type: exec, command: [/bin/sh, -c, 'echo "$TERN_MEMBER" >> %s'], interval: 200ms, timeout: 200ms}`, file)
}

// companion runs a standalone node allowed to run an exec check like the
// one under test and returns a function that waits until it has run
// rounds times: the clock a test that asserts nothing ran waits by.
func companion(t *testing.T) func(rounds int) {
	file := filepath.Join(t.TempDir(), "companion")
	y := "node:\n  name: c1\n  dns: [\"127.0.0.1:0\"]\n  allow_exec_checks: true\nchecks:\n  x: " + execCheck(file) +
		"\npools:\n  web: {check: x, members: [{address: 192.0.2.1}]}\nzones: [{file: z.zone}]\n"
	startNode(t, y, testZone)
	return func(rounds int) {
		t.Helper()
		eventually.True(t, 20*time.Second, func() bool {
			b, _ := os.ReadFile(file)
			return strings.Count(string(b), "192.0.2.1") >= rounds
		}, "the companion node runs its exec check")
	}
}

// Exec checks run only where the node's own file says
// node.allow_exec_checks: true. A node without it runs nothing (the
// command would create a file: it never appears while an allowed node
// runs the same check three times), serves the member in its pool's
// initial state, and says why in /v1/pools, /v1/status and
// tern_probe_not_allowed. In a cluster the permission is the local file's
// alone: a replicated configuration saying allow_exec_checks: true does
// not give it.
func TestExecChecksNeedLocalPermission(t *testing.T) {
	t.Run("standalone", func(t *testing.T) {
		ran := filepath.Join(t.TempDir(), "ran")
		y := "node:\n  name: t1\n  dns: [\"127.0.0.1:0\"]\n  api: \"127.0.0.1:0\"\nchecks:\n  x: " + execCheck(ran) +
			"\npools:\n  web: {check: x, members: [{address: 192.0.2.1}, {address: 192.0.2.2}]}\nzones: [{file: z.zone}]\n"
		n, dnsAddr := startNode(t, y, testZone)
		companion(t)(3)
		assertNotRun(t, n, ran, dnsAddr, "not probed here: exec checks are not allowed on this node (node.allow_exec_checks); initial state up")
	})

	t.Run("cluster, replicated permission ignored", func(t *testing.T) {
		dir := t.TempDir()
		ran1, ran2 := filepath.Join(dir, "ran-v1"), filepath.Join(dir, "ran-v2")
		apiPort, raftPort := freePort(t), freePort(t)
		cluster := func(name, extra, file string) string {
			return fmt.Sprintf("node:\n  name: %s\n  dns: [\"127.0.0.1:0\"]\n  api: \"127.0.0.1:%d\"\n  raft: \"127.0.0.1:%d\"\n  data: data\n  bootstrap: true\n%s", name, apiPort, raftPort, extra) +
				"checks:\n  x: " + execCheck(file) + "\npools:\n  web: {check: x, members: [{address: 192.0.2.1}, {address: 192.0.2.2}]}\nzones: [{file: z.zone}]\n"
		}
		n := runNode(t, dir, cluster("s1", "", ran1), testZone)
		<-n.Serving()
		eventually.True(t, 20*time.Second, func() bool {
			s, _ := n.Status(context.Background())
			return s.ConfigVersion == 1
		}, "the node leads with version 1")
		c := api.NewClient(n.APIAddr().String(), "", nil)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := c.Apply(ctx, api.ApplyRequest{Main: "tern.yaml", Files: map[string]string{
			"tern.yaml": cluster("operator", "  allow_exec_checks: true\n", ran2), "z.zone": testZone,
		}, Change: api.Change{Base: 1}}); err != nil {
			t.Fatal(err)
		}
		eventually.True(t, 20*time.Second, func() bool {
			s, _ := n.Status(context.Background())
			return s.ConfigVersion == 2
		}, "the node serves version 2")
		companion(t)(3)
		if _, err := os.Stat(ran1); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("version 1's exec check ran: %v", err)
		}
		assertNotRun(t, n, ran2, n.DNSAddrs()[0].String(), "not probed here: exec checks are not allowed on this node (node.allow_exec_checks); initial state up (this node's own verdict: its probers do not agree yet)")
	})
}

// assertNotRun checks that file (the exec check's mark) does not exist and
// that n says why its two members of pool web are not probed.
func assertNotRun(t *testing.T, n *Node, file, dnsAddr, why string) {
	t.Helper()
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the exec check ran without node.allow_exec_checks: %v", err)
	}
	if got := answers(t, dnsAddr, "www.example.test."); strings.Join(got, " ") != "192.0.2.1 192.0.2.2" {
		t.Errorf("answers %v, want both members in their initial state (up)", got)
	}
	base := "http://" + n.APIAddr().String()
	var pools []api.Pool
	getJSON(t, nil, base+"/v1/pools", "", &pools)
	if len(pools) != 1 || len(pools[0].Members) != 2 {
		t.Fatalf("pools %+v", pools)
	}
	for _, m := range pools[0].Members {
		if m.Why != why || !m.Up {
			t.Errorf("member %s: up %v, why %q; want up, %q", m.Address, m.Up, m.Why, why)
		}
	}
	var st api.Status
	getJSON(t, nil, base+"/v1/status", "", &st)
	if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "node.allow_exec_checks") || !strings.Contains(st.Warnings[0], "2 members not probed here (pools web)") {
		t.Errorf("status warnings %q", st.Warnings)
	}
	metrics := get(t, nil, base+"/metrics", "")
	if !strings.Contains(metrics, `tern_probe_not_allowed{check="x",pool="web"} 2`) {
		t.Errorf("/metrics lacks tern_probe_not_allowed for pool web:\n%s", grepLines(metrics, "tern_probe"))
	}
}

// get answers the body of GET url (with token as bearer, over client
// when not nil), failing the test on a transport error or a 5xx.
func get(t *testing.T, client *http.Client, url, token string) string {
	t.Helper()
	code, body := getStatus(t, client, url, token)
	if code >= 500 {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	return body
}

func getStatus(t *testing.T, client *http.Client, url, token string) (int, string) {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func getJSON(t *testing.T, client *http.Client, url, token string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(get(t, client, url, token)), v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// leaks reports whether secret is in data as it is or base64-encoded at
// any alignment (JSON carries a bundle's files as base64).
func leaks(data []byte, secret string) bool {
	if strings.Contains(string(data), secret) {
		return true
	}
	for k := range 3 {
		enc := base64.StdEncoding.EncodeToString(append(make([]byte, k), secret...))
		// The characters that depend on the secret's bytes alone: those
		// of whole 3-byte groups inside it.
		first := (k + 2) / 3
		last := (k + len(secret)) / 3 // exclusive
		if last-first < 2 {
			continue // too short to tell apart
		}
		if strings.Contains(string(data), enc[4*first:4*last]) {
			return true
		}
	}
	return false
}

// No secret of any kind leaves a node: a cluster node whose own file has
// an inline API token, an inline TSIG secret, a TSIG secret_file and a
// TLS key file, and which is then given versions (through the API, as
// `tern apply` does) with an api_token_file, another inline TSIG secret
// and an inline API token, shows none of them on any read endpoint (every
// GET route the API registers, every version) nor stores them in its
// Raft log or snapshot. The DNS server's TSIG keys stay the local
// file's: the replicated secrets (redacted) sign nothing.
func TestSecretsNeverLeave(t *testing.T) {
	dir, certs := t.TempDir(), t.TempDir()
	cas := writeTLS(t, certs)
	keyPEM, _ := os.ReadFile(filepath.Join(certs, "n1.key"))
	keyLines := strings.Split(strings.TrimSpace(string(keyPEM)), "\n")
	const (
		tokenInline  = "tok-inline-7f3a9c"
		tokenApplied = "tok-applied-2b8e41"
		tokenInFile  = "tok-in-file-93d0aa"
	)
	secretA := base64.StdEncoding.EncodeToString([]byte("local-inline-tsig-secret-0123456"))
	secretB := base64.StdEncoding.EncodeToString([]byte("local-file-tsig-secret-abcdefghij"))
	secretC := base64.StdEncoding.EncodeToString([]byte("applied-inline-tsig-secret-98765"))
	secrets := map[string]string{"inline api_token": tokenInline, "applied api_token": tokenApplied, "api_token_file content": tokenInFile,
		"inline TSIG secret": secretA, "TSIG secret_file content": secretB, "applied TSIG secret": secretC, "TLS key": keyLines[1]}
	os.WriteFile(filepath.Join(dir, "other.key"), []byte(secretB+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "token"), []byte(tokenInFile+"\n"), 0o600)
	apiPort, raftPort := freePort(t), freePort(t)
	file := func(name, nodeExtra, xfrSecret, member string) string {
		return fmt.Sprintf(`node:
  name: %[1]s
  dns: ["127.0.0.1:0"]
  api: "127.0.0.1:%[2]d"
  raft: "127.0.0.1:%[3]d"
  data: data
  bootstrap: true
  tls: {cert: %[4]s/n1.crt, key: %[4]s/n1.key, ca: %[4]s/ca.crt}
%[5]stsig:
  keys:
    xfr: {secret: %[6]s}
    other: {secret_file: other.key}
transfer:
  allow: [{from: 127.0.0.0/8, key: xfr}]
pools:
  web: {members: [{address: %[7]s}]}
zones: [{file: z.zone}]
`, name, apiPort, raftPort, certs, nodeExtra, xfrSecret, member)
	}
	n := runNode(t, dir, file("s1", "  api_token: "+tokenInline+"\n", secretA, "192.0.2.1"), testZone)
	<-n.Serving()
	eventually.True(t, 20*time.Second, func() bool {
		s, _ := n.Status(context.Background())
		return s.ConfigVersion == 1
	}, "the node leads with version 1")
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cas}}}
	c := api.NewClient(n.APIAddr().String(), tokenInline, &tls.Config{RootCAs: cas})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, extra := range []string{"  api_token_file: token\n", "  api_token: " + tokenApplied + "\n"} {
		y := file("operator", extra, secretC, fmt.Sprintf("192.0.2.%d", i+2))
		base := api.Change{Base: uint64(i + 1)}
		if _, err := c.Apply(ctx, api.ApplyRequest{Main: "tern.yaml", Files: map[string]string{"tern.yaml": y, "z.zone": testZone}, Change: base}); err != nil {
			t.Fatalf("apply version %d: %v", i+2, err)
		}
	}
	eventually.True(t, 20*time.Second, func() bool {
		s, _ := n.Status(context.Background())
		return s.ConfigVersion == 3
	}, "the node serves version 3")

	t.Run("read endpoints", func(t *testing.T) {
		base := "https://" + n.APIAddr().String()
		var urls []string
		for _, route := range n.api.Routes() {
			method, path, ok := strings.Cut(route, " ")
			if !ok || method != "GET" {
				continue
			}
			switch {
			case path == "/{$}":
				urls = append(urls, "/")
			case path == "/static/":
				urls = append(urls, "/static/index.html", "/static/status.js", "/static/status.css")
			case strings.Contains(path, "{v}"):
				for v := 1; v <= 3; v++ {
					urls = append(urls, strings.Replace(path, "{v}", fmt.Sprint(v), 1))
				}
			case path == "/v1/explain":
				urls = append(urls, path+"?name=www.example.test.&client=192.0.2.99")
			case strings.Contains(path, "{"):
				t.Fatalf("read route %s has parameters this test does not fill: teach it", route)
			default:
				urls = append(urls, path)
			}
		}
		if len(urls) < 15 {
			t.Fatalf("only %d read URLs from %v", len(urls), n.api.Routes())
		}
		for _, u := range urls {
			code, body := getStatus(t, client, base+u, tokenInline)
			if code >= 500 {
				t.Errorf("GET %s: %d %s", u, code, body)
			}
			for what, s := range secrets {
				if leaks([]byte(body), s) {
					t.Errorf("GET %s shows the %s", u, what)
				}
			}
		}
		// The versions are there, with the placeholder where secrets were.
		var cv api.ConfigVersion
		getJSON(t, client, base+"/v1/config/versions/3", tokenInline, &cv)
		if y := cv.Files["tern.yaml"]; !strings.Contains(y, "api_token: redacted") || !strings.Contains(y, "xfr: {secret: redacted}") || !strings.Contains(y, "secret_file: other.key") {
			t.Errorf("version 3 as shown:\n%s", y)
		}
	})

	t.Run("raft log and snapshot", func(t *testing.T) {
		if err := n.store.Snapshot(); err != nil {
			t.Fatal(err)
		}
		var all []byte
		files := 0
		filepath.WalkDir(filepath.Join(dir, "data"), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files++
			all = append(all, b...)
			for what, s := range secrets {
				if leaks(b, s) {
					t.Errorf("%s holds the %s", p, what)
				}
			}
			return nil
		})
		// The search does see the bundles it looks into.
		if files < 2 || !leaks(all, "web: {members: [{address: 192.0.2.3}]}") {
			t.Fatalf("the data directory (%d files) does not hold the configuration the search looks for", files)
		}
	})

	t.Run("TSIG keys are the local file's", func(t *testing.T) {
		for _, tc := range []struct {
			name, secret string
			ok           bool
		}{
			{"local secret", secretA, true},
			{"a replicated version's secret", secretC, false},
			{"the placeholder", config.Redacted, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := axfr(n.DNSAddrs()[0].String(), "xfr.", tc.secret)
				if (err == nil) != tc.ok {
					t.Fatalf("AXFR signed with the %s: %v, want ok=%v", tc.name, err, tc.ok)
				}
			})
		}
	})
}

// axfr transfers example.test. from addr signed with key and secret.
func axfr(addr, key, secret string) error {
	m := new(dns.Msg)
	m.SetAxfr("example.test.")
	m.SetTsig(key, dns.HmacSHA256, 300, time.Now().Unix())
	tr := &dns.Transfer{TsigSecret: map[string]string{key: secret}, ReadTimeout: 5 * time.Second}
	ch, err := tr.In(m, addr)
	if err != nil {
		return err
	}
	n := 0
	for env := range ch {
		if env.Error != nil {
			return env.Error
		}
		n += len(env.RR)
	}
	if n == 0 {
		return errors.New("no records")
	}
	return nil
}
