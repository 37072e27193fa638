package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/ternlb/tern/api"
)

// fakeAPI is a node's API with fixed answers, on 127.0.0.1:0.
type fakeAPI struct {
	inQuorum bool
	admin    []string
	pools    []api.Pool // nil: one pool web of one member
}

func (f *fakeAPI) Status(context.Context) (api.Status, error) {
	return api.Status{Node: "n1", RaftState: "Leader", InQuorum: f.inQuorum, Serving: true, MembersUp: 1, MembersTotal: 2}, nil
}
func (f *fakeAPI) Ready(context.Context) error { return nil }
func (f *fakeAPI) Pools(context.Context) ([]api.Pool, error) {
	if f.pools != nil {
		return f.pools, nil
	}
	return []api.Pool{{Name: "web", Members: []api.PoolMember{{Address: "192.0.2.10", Up: true, Admin: "auto"}}}}, nil
}
func (f *fakeAPI) SetAdmin(_ context.Context, pool, addr, state string) error {
	if pool != "web" {
		return fmt.Errorf("%w: no pool %q", api.ErrNotFound, pool)
	}
	f.admin = append(f.admin, pool+" "+addr+" "+state)
	return nil
}
func (f *fakeAPI) ShedSite(_ context.Context, site string, percent int) (int, error) {
	if site != "eu-west" {
		return 0, fmt.Errorf("%w: no pool member is in site %q", api.ErrNotFound, site)
	}
	f.admin = append(f.admin, fmt.Sprintf("site %s %d", site, percent))
	return 2, nil
}
func (f *fakeAPI) Members(context.Context) ([]api.ClusterMember, error) {
	return []api.ClusterMember{{ID: "n1", RaftAddr: "127.0.0.1:7000", Voter: true, Leader: true}}, nil
}
func (f *fakeAPI) Join(context.Context, api.JoinRequest) error { return nil }
func (f *fakeAPI) Remove(context.Context, string) error        { return nil }

// Versions 1 and 2 are kept; 2 is current.
func (f *fakeAPI) versions() []api.ConfigVersion {
	return []api.ConfigVersion{
		{Version: 1, Hash: "aa", Main: "tern.yaml", Files: map[string]string{"tern.yaml": "pools: {}\n", "z.zone": "a\n"}},
		{Version: 2, Hash: "bb", Current: true, Main: "tern.yaml", Files: map[string]string{"tern.yaml": "pools: {web: {}}\n", "z.zone": "a\n"}},
	}
}
func (f *fakeAPI) Versions(context.Context) ([]api.ConfigVersion, error) {
	vs := f.versions()
	for i := range vs {
		vs[i].Files = nil
	}
	return vs, nil
}
func (f *fakeAPI) Version(_ context.Context, v uint64) (api.ConfigVersion, error) {
	for _, cv := range f.versions() {
		if cv.Version == v {
			return cv, nil
		}
	}
	return api.ConfigVersion{}, fmt.Errorf("%w: version %d is not kept", api.ErrNotFound, v)
}
func (f *fakeAPI) Apply(context.Context, api.ApplyRequest) (api.ApplyResult, error) {
	f.admin = append(f.admin, "apply")
	return api.ApplyResult{Version: 3, Changed: true}, nil
}
func (f *fakeAPI) Rollback(context.Context, uint64, api.RollbackRequest) (api.ApplyResult, error) {
	return api.ApplyResult{Version: 3, Changed: true}, nil
}

func startAPI(t *testing.T, f *fakeAPI) string {
	t.Helper()
	s, err := api.New(api.Options{Addr: "127.0.0.1:0", Status: f, Pools: f, Cluster: f, Configs: f, Shedder: f})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s.Addr().String()
}

func runTern(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return o.String(), e.String(), code
}

// Flags stand anywhere: before or after the arguments and the command
// names, global ones included; -- ends them.
func TestArrange(t *testing.T) {
	app := newApp()
	for _, tc := range []struct {
		args, want []string
	}{
		{[]string{"member", "drain", "web", "192.0.2.10", "--api", "X"}, []string{"--api", "X", "member", "drain", "--", "web", "192.0.2.10"}},
		{[]string{"--api", "X", "member", "drain", "web", "192.0.2.10"}, []string{"--api", "X", "member", "drain", "--", "web", "192.0.2.10"}},
		{[]string{"member", "--api=X", "drain", "-o", "json", "web", "192.0.2.10"}, []string{"--api=X", "member", "drain", "-o", "json", "--", "web", "192.0.2.10"}},
		{[]string{"-o", "json", "status", "--token", "t"}, []string{"--token", "t", "status", "-o", "json"}},
		{[]string{"explain", "www", "--", "-x", "--api"}, []string{"explain", "--", "www", "-x", "--api"}},
		{[]string{"apply", "--comment", "--force", "-c", "f.yaml"}, []string{"apply", "--comment", "--force", "-c", "f.yaml"}},
		{[]string{"config", "rollback", "3", "--force"}, []string{"config", "rollback", "--force", "--", "3"}},
		{[]string{"help", "member", "drain"}, []string{"member", "drain", "--help"}},
		{[]string{"--version"}, []string{"--version"}},
	} {
		got, err := arrange(app, tc.args)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("arrange(%q) = %q, %v; want %q", tc.args, got, err, tc.want)
		}
	}
}

// Exit statuses: 0 done, 1 the request failed or the state is
// unhealthy, 2 a usage mistake.
func TestExitStatus(t *testing.T) {
	f := &fakeAPI{inQuorum: true}
	addr := startAPI(t, f)
	lost := startAPI(t, &fakeAPI{})
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"member", "drain", "web", "192.0.2.10", "--api", addr}, 0, ""},
		{[]string{"member", "drain", "nope", "192.0.2.10", "--api", addr}, 1, "no pool"},
		{[]string{"status", "--api", addr}, 0, ""},
		{[]string{"status", "--api", lost}, 1, "not in quorum"},
		{[]string{"status", "--api", "127.0.0.1:1"}, 1, "connection refused"},
		{[]string{"member", "drain", "web", "--api", addr}, 2, "usage: tern member drain POOL ADDRESS"},
		{[]string{"status", "--bogus"}, 2, "unknown flag --bogus"},
		{[]string{"statuz"}, 2, `unknown command "statuz"`},
		{[]string{"member"}, 2, "tern member needs a command"},
		{[]string{"check"}, 2, "tern check needs --config"},
		{[]string{"status", "-o", "yaml", "--api", addr}, 2, `-o "yaml"`},
		{[]string{"apply", "--config"}, 2, "needs a value"},
		{[]string{"config", "rollback", "x"}, 2, "usage"},
		{[]string{"--version"}, 0, ""},
		{[]string{"help", "member", "drain"}, 0, ""},
		{[]string{"member", "shed", "web", "192.0.2.10", "40", "--api", addr}, 0, ""},
		{[]string{"member", "shed", "web", "192.0.2.10", "101", "--api", addr}, 2, "from 0 (no shedding) to 100 (drain)"},
		{[]string{"member", "shed", "web", "192.0.2.10", "0", "--api", addr}, 0, ""},
		{[]string{"site", "shed", "eu-west", "25", "--api", addr}, 0, ""},
		{[]string{"site", "shed", "nowhere", "25", "--api", addr}, 1, "no pool member is in site"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, stderr, code := runTern(tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.err) {
				t.Fatalf("exit %d, stderr %q; want %d with %q", code, stderr, tc.code, tc.err)
			}
		})
	}
	if !slices.Equal(f.admin, []string{"web 192.0.2.10 drain", "web 192.0.2.10 shed:40", "web 192.0.2.10 auto", "site eu-west 25"}) {
		t.Fatalf("admin changes %q", f.admin)
	}
}

// Every printing command honours -o json and --json with the same JSON,
// and -o table with a table.
func TestOutputFormats(t *testing.T) {
	addr := startAPI(t, &fakeAPI{inQuorum: true})
	cases := []struct {
		args []string
		key  string // a JSON field the answer has
	}{
		{[]string{"status"}, `"in_quorum"`},
		{[]string{"cluster", "members"}, `"raft_addr"`},
		{[]string{"cluster", "remove", "n2"}, `"removed"`},
		{[]string{"member", "up", "web", "192.0.2.10"}, `"admin"`},
		{[]string{"version"}, `"version"`},
		{[]string{"pools"}, `"members"`},
		{[]string{"check", "-c", "../../examples/tern.yaml"}, `"ok": true`},
		{[]string{"pool", "show", "web"}, `"192.0.2.10"`},
		{[]string{"config", "versions"}, `"hash"`},
		{[]string{"config", "show"}, `"files"`},
		{[]string{"config", "show", "1"}, `"pools: {}\n"`},
		{[]string{"config", "diff"}, `"modified"`},
		{[]string{"config", "diff", "1", "2"}, `"modified"`},
		{[]string{"config", "rollback", "1"}, `"rollback_of"`},
		{[]string{"rollback", "1"}, `"rollback_of"`},
		{[]string{"member", "drain", "web", "192.0.2.10"}, `"admin": "drain"`},
		{[]string{"member", "down", "web", "192.0.2.10"}, `"admin": "down"`},
		{[]string{"member", "auto", "web", "192.0.2.10"}, `"admin": "auto"`},
		{[]string{"member", "shed", "web", "192.0.2.10", "30"}, `"admin": "shed:30"`},
		{[]string{"site", "shed", "eu-west", "100"}, `"members": 2`},
		{[]string{"apply", "-c", "../../examples/tern.yaml"}, `"version": 3`},
		{[]string{"explain", "--config", "../../examples/tern.yaml", "www.gslb.example.test", "192.0.2.1"}, `"text"`},
	}
	// Every command with -o has a case here: a new one must add its own.
	// snapshot save and inspect need a live cluster's backup: their -o is
	// checked by test/TestSnapshotSaveRestore.
	covered := map[string]bool{"snapshot save": true, "snapshot inspect": true}
	for _, tc := range cases {
		covered[strings.Join(tc.args[:min(len(tc.args), 2)], " ")] = true
		covered[tc.args[0]] = true
	}
	walk(newApp().Commands, func(path []string, c *cli.Command) {
		if name := strings.Join(append(slices.Clone(path), c.Name), " "); hasFlag(c.Flags, "output") && !covered[name] {
			t.Errorf("tern %s has -o but no case in TestOutputFormats", name)
		}
	})
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			base := append(slices.Clone(tc.args), "--api", addr)
			js, _, code := runTern(append(base, "-o", "json")...)
			alias, _, _ := runTern(append(base, "--json")...)
			table, _, tcode := runTern(append(base, "-o", "table")...)
			if code != 0 || tcode != 0 || !json.Valid([]byte(js)) || !strings.Contains(js, tc.key) || !json.Valid([]byte(alias)) || !strings.Contains(alias, tc.key) { // explain draws at random: not equal
				t.Fatalf("exit %d: -o json %q, --json %q", code, js, alias)
			}
			if json.Valid([]byte(table)) || table == "" {
				t.Fatalf("-o table printed %q", table)
			}
		})
	}
}

func TestConfigCommands(t *testing.T) {
	f := &fakeAPI{inQuorum: true}
	addr := startAPI(t, f)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"config", "diff"}, 0, "--- version-1/tern.yaml\n+++ version-2/tern.yaml\n@@ -1 +1 @@\n-pools: {}\n+pools: {web: {}}\n"},
		{[]string{"config", "diff", "2", "1"}, 0, "-pools: {web: {}}\n+pools: {}\n"},
		{[]string{"config", "diff", "2", "2"}, 0, "(nothing: versions 2 and 2 hold the same files)"},
		{[]string{"config", "show"}, 0, "# ==> tern.yaml <==\npools: {web: {}}\n# ==> z.zone <==\na\n"},
		{[]string{"config", "show", "9"}, 1, ""},
		{[]string{"config", "show", "x"}, 2, ""},
		{[]string{"pools"}, 0, "web   1        1   0      0"},
		{[]string{"pool", "show", "web"}, 0, "192.0.2.10  up     auto"},
		{[]string{"pool", "show", "nope"}, 1, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, stderr, code := runTern(append(tc.args, "--api", addr)...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d (want %d), stdout:\n%s\nstderr: %s\nwant %q", code, tc.code, out, stderr, tc.want)
			}
		})
	}
}

// apply --dry-run prints the diff against the current version, secrets
// redacted as the cluster keeps them, and sends nothing.
func TestApplyDryRun(t *testing.T) {
	f := &fakeAPI{inQuorum: true}
	addr := startAPI(t, f)
	dir := t.TempDir()
	zone := "$ORIGIN example.test.\n@ 300 IN SOA ns1 h 1 3600 600 604800 60\n@ 300 IN NS ns1\nns1 300 IN A 192.0.2.53\n"
	os.WriteFile(filepath.Join(dir, "z.zone"), []byte(zone), 0o644)
	y := "tsig:\n  keys:\n    xfr: {secret: c2VjcmV0c2VjcmV0c2VjcmV0}\npools:\n  web: {members: [{address: 192.0.2.1}]}\nzones:\n  - file: z.zone\n"
	file := filepath.Join(dir, "tern.yaml")
	os.WriteFile(file, []byte(y), 0o644)
	out, stderr, code := runTern("apply", "--dry-run", "--api", addr, "-c", file)
	if code != 0 || !strings.Contains(out, "dry run, nothing sent") || !strings.Contains(out, "+++ sent/z.zone") || strings.Contains(out, "c2VjcmV0") || !strings.Contains(out, "redacted") {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	if slices.Contains(f.admin, "apply") {
		t.Fatal("a dry run applied")
	}
	if _, _, code := runTern("apply", "--dry-run", "--base", "1", "--api", addr, "-c", file); code != 1 {
		t.Fatalf("a dry run on a stale base exits %d, want 1", code)
	}
	js, _, _ := runTern("apply", "--dry-run", "-o", "json", "--api", addr, "-c", file)
	var d bundleDiff
	if err := json.Unmarshal([]byte(js), &d); err != nil || d.From != "version-2" || len(d.Files) != 2 {
		t.Fatalf("%v %+v\n%s", err, d, js)
	}
}
