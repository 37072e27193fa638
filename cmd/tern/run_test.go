package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ternlb/tern/api"
)

// fakeAPI is a node's API with fixed answers, on 127.0.0.1:0.
type fakeAPI struct {
	inQuorum bool
	admin    []string
}

func (f *fakeAPI) Status(context.Context) (api.Status, error) {
	return api.Status{Node: "n1", RaftState: "Leader", InQuorum: f.inQuorum, Serving: true, MembersUp: 1, MembersTotal: 2}, nil
}
func (f *fakeAPI) Ready(context.Context) error { return nil }
func (f *fakeAPI) Pools(context.Context) ([]api.Pool, error) {
	return []api.Pool{{Name: "web", Members: []api.PoolMember{{Address: "192.0.2.10", Up: true, Admin: "auto"}}}}, nil
}
func (f *fakeAPI) SetAdmin(_ context.Context, pool, addr, state string) error {
	if pool != "web" {
		return fmt.Errorf("%w: no pool %q", api.ErrNotFound, pool)
	}
	f.admin = append(f.admin, pool+" "+addr+" "+state)
	return nil
}
func (f *fakeAPI) Members(context.Context) ([]api.ClusterMember, error) {
	return []api.ClusterMember{{ID: "n1", RaftAddr: "127.0.0.1:7000", Voter: true, Leader: true}}, nil
}
func (f *fakeAPI) Join(context.Context, api.JoinRequest) error { return nil }
func (f *fakeAPI) Remove(context.Context, string) error        { return nil }

func startAPI(t *testing.T, f *fakeAPI) string {
	t.Helper()
	s, err := api.New(api.Options{Addr: "127.0.0.1:0", Status: f, Pools: f, Cluster: f})
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
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, stderr, code := runTern(tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.err) {
				t.Fatalf("exit %d, stderr %q; want %d with %q", code, stderr, tc.code, tc.err)
			}
		})
	}
	if !slices.Equal(f.admin, []string{"web 192.0.2.10 drain"}) {
		t.Fatalf("admin changes %q", f.admin)
	}
}

// Every printing command honours -o json and --json with the same JSON,
// and -o table with a table.
func TestOutputFormats(t *testing.T) {
	addr := startAPI(t, &fakeAPI{inQuorum: true})
	for _, tc := range []struct {
		args []string
		key  string // a JSON field the answer has
	}{
		{[]string{"status"}, `"in_quorum"`},
		{[]string{"cluster", "members"}, `"raft_addr"`},
		{[]string{"cluster", "remove", "n2"}, `"removed"`},
		{[]string{"member", "up", "web", "192.0.2.10"}, `"admin"`},
		{[]string{"version"}, `"version"`},
		{[]string{"explain", "--config", "../../examples/tern.yaml", "www.gslb.example.test", "192.0.2.1"}, `"text"`},
	} {
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
