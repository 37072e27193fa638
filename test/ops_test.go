package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/internal/eventually"
)

// clusterView is what a backup must carry across: the configuration
// versions (number and hash) and the members' admin states.
type clusterView struct {
	Versions []string
	Admin    map[string]string
}

func (nd *tnode) view(t *testing.T) clusterView {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	vs, err := nd.client().Versions(ctx)
	if err != nil {
		t.Fatalf("%s versions: %v", nd.name, err)
	}
	ps, err := nd.client().Pools(ctx)
	if err != nil {
		t.Fatalf("%s pools: %v", nd.name, err)
	}
	v := clusterView{Admin: map[string]string{}}
	for _, cv := range vs {
		v.Versions = append(v.Versions, fmt.Sprintf("%d@%s", cv.Version, cv.Hash))
	}
	for _, p := range ps {
		for _, m := range p.Members {
			v.Admin[p.Name+"/"+m.Address] = m.Admin
		}
	}
	return v
}

// applyV2 applies a second configuration version (TXT v2) through nd.
func applyV2(t *testing.T, c *tcluster, nd *tnode) {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"tern.yaml":    "node: {name: operator}\n" + c.cluster,
		"zones/z.zone": strings.Replace(clusterZone, "%s", "v2", 1),
	})
	if out, err := nd.cli("apply", "--config", filepath.Join(dir, "tern.yaml")); err != nil || !strings.Contains(out, "applied: version 2") {
		t.Fatalf("tern apply: %v\n%s", err, out)
	}
}

// A backup saved from a live three-node cluster (through a follower)
// restores, after every node's data is wiped, into a new cluster with the
// same configuration versions and admin states, which the others join.
func TestSnapshotSaveRestore(t *testing.T) {
	c := newCluster(t, 3)
	c.token = "snap-s3cret"
	c.form()
	applyV2(t, c, c.nodes[0])
	if out, err := c.nodes[1].cli("member", "drain", "web", memberB); err != nil {
		t.Fatalf("tern member drain: %v\n%s", err, out)
	}
	c.waitConverged(30*time.Second, 2)
	follower := c.nodes[1]
	if follower == c.leader() {
		follower = c.nodes[2]
	}
	eventually.True(t, 10*time.Second, func() bool {
		return follower.view(t).Admin["web/"+memberB] == "drain"
	}, "the drain on the follower")
	want := c.leader().view(t)

	file := filepath.Join(t.TempDir(), "tern.snap")
	if out, err := follower.cli("snapshot", "save", file); err != nil || !strings.Contains(out, "2 configuration version(s)") {
		t.Fatalf("tern snapshot save on follower %s: %v\n%s", follower.name, err, out)
	}
	if out, err := follower.cli("snapshot", "inspect", file); err != nil || !strings.Contains(out, "members n1, n2, n3") {
		t.Fatalf("tern snapshot inspect: %v\n%s", err, out)
	}
	if out, err := follower.cli("snapshot", "inspect", "-o", "json", file); err != nil || !strings.Contains(out, `"sha256"`) {
		t.Fatalf("tern snapshot inspect -o json: %v\n%s", err, out)
	}
	// Without the token the state does not leave the cluster.
	if err := api.NewClient(follower.api, "", nil).Snapshot(context.Background(), new(strings.Builder)); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("snapshot without the token: %v, want 401", err)
	}

	for _, nd := range c.nodes {
		if err := nd.stop(syscall.SIGTERM); err != nil {
			t.Fatalf("stop %s: %v", nd.name, err)
		}
		if err := os.RemoveAll(filepath.Join(nd.dir, "data")); err != nil {
			t.Fatal(err)
		}
	}

	n1 := c.nodes[0]
	cfg := filepath.Join(n1.dir, "tern.yaml")
	// A damaged backup is refused before anything is written.
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.snap")
	os.WriteFile(bad, data[:len(data)-10], 0o600)
	if out, err := n1.cli("snapshot", "restore", "--config", cfg, bad); err == nil || !strings.Contains(out, "truncated") {
		t.Fatalf("restore of a truncated backup: %v, want a refusal\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(n1.dir, "data", "raft.db")); err == nil {
		t.Fatal("a refused restore wrote a Raft log")
	}
	if out, err := n1.cli("snapshot", "restore", "--config", cfg, file); err != nil {
		t.Fatalf("tern snapshot restore: %v\n%s", err, out)
	}
	if out, err := n1.cli("snapshot", "restore", "--config", cfg, file); err == nil || !strings.Contains(out, "already holds") {
		t.Fatalf("a second restore over the data: %v, want a refusal\n%s", err, out)
	}
	n1.start()
	eventually.True(t, 30*time.Second, func() bool {
		s, err := n1.status()
		return err == nil && s.RaftState == "Leader" && s.ConfigVersion == 2 && s.Serving
	}, "the restored n1 to lead version 2")
	if got := n1.view(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored cluster:\n got %+v\nwant %+v", got, want)
	}
	if n1.txt() != "v2" {
		t.Fatalf("restored n1 answers TXT %q, want v2", n1.txt())
	}
	for _, nd := range c.nodes[1:] {
		nd.start()
	}
	c.waitConverged(60*time.Second, 2)
	for _, nd := range c.nodes {
		if got := nd.view(t); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s after joining the restored cluster:\n got %+v\nwant %+v", nd.name, got, want)
		}
	}
}

// Two of three nodes gone for good: the survivor, stopped, is recovered
// as a one-node cluster, serves and takes writes, and new nodes join it.
func TestClusterRecoverLostQuorum(t *testing.T) {
	c := newCluster(t, 3)
	c.token = "recover-s3cret"
	c.form()
	applyV2(t, c, c.nodes[0])
	c.waitConverged(30*time.Second, 2)
	survivor := c.nodes[2]
	for _, nd := range c.nodes[:2] {
		if err := nd.stop(syscall.SIGKILL); err == nil {
			t.Fatalf("%s exited cleanly on SIGKILL", nd.name)
		}
	}
	eventually.True(t, 20*time.Second, func() bool {
		s, err := survivor.status()
		return err == nil && !s.InQuorum
	}, "the survivor to report no quorum")
	cfg := filepath.Join(survivor.dir, "tern.yaml")
	if out, err := survivor.cli("cluster", "recover", "--config", cfg); err == nil || !strings.Contains(out, "in use") {
		t.Fatalf("recover on a running node: %v, want a refusal\n%s", err, out)
	}
	if err := survivor.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop the survivor: %v", err)
	}
	if out, err := survivor.cli("cluster", "recover", "--config", cfg, "--peers", "n1=127.0.0.1:1"); err == nil || !strings.Contains(out, "do not include this node") {
		t.Fatalf("recover without the node in --peers: %v\n%s", err, out)
	}
	if out, err := survivor.cli("cluster", "recover", "--config", cfg); err != nil || !strings.Contains(out, "the cluster is now n3") {
		t.Fatalf("tern cluster recover: %v\n%s", err, out)
	}
	survivor.start()
	eventually.True(t, 30*time.Second, func() bool {
		s, err := survivor.status()
		return err == nil && s.RaftState == "Leader" && s.InQuorum && s.ConfigVersion == 2
	}, "the survivor to lead alone, serving version 2")
	if ms, err := survivor.client().Members(context.Background()); err != nil || len(ms) != 1 || ms[0].ID != "n3" {
		t.Fatalf("members after recovery: %+v %v", ms, err)
	}
	if survivor.txt() != "v2" {
		t.Fatalf("the survivor answers TXT %q, want v2", survivor.txt())
	}
	// It takes writes again.
	if out, err := survivor.cli("member", "down", "web", memberA); err != nil {
		t.Fatalf("a write after recovery: %v\n%s", err, out)
	}
	// The lost nodes come back as new members: empty data, join the survivor.
	for _, nd := range c.nodes[:2] {
		if err := os.RemoveAll(filepath.Join(nd.dir, "data")); err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(nd.dir, "tern.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(nd.dir, "tern.yaml"), []byte(strings.Replace(string(y), "bootstrap: true", "bootstrap: false", 1)), 0o644)
		nd.start()
	}
	c.waitConverged(60*time.Second, 2)
}
