package test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestClusterFormsAppliesAgrees: three nodes form a cluster (one
// bootstraps, two join); `tern apply` on a follower changes every node's
// answers and returns the committed version, a bad configuration changes
// nothing and names file:line; health is decided by agreement (one node
// cut off from a backend does not take it out, two do); member admin
// states and removal go through any node.
func TestClusterFormsAppliesAgrees(t *testing.T) {
	c := newCluster(t, 3)
	c.form()
	both := []string{memberA, memberB}
	c.eachAnswers(20*time.Second, both)

	if out, err := c.nodes[2].cli("cluster", "members"); err != nil || !strings.Contains(out, "n1") || !strings.Contains(out, "n2") || !strings.Contains(out, "n3") {
		t.Fatalf("tern cluster members: %v\n%s", err, out)
	}

	// apply on a follower: every node serves the new version.
	ld := c.leader()
	var follower = c.nodes[1]
	if follower == ld {
		follower = c.nodes[2]
	}
	applyDir := t.TempDir()
	writeFiles(t, applyDir, map[string]string{
		"tern.yaml":    "node: {name: operator}\n" + c.cluster,
		"zones/z.zone": strings.Replace(clusterZone, "%s", "v2", 1),
	})
	out, err := follower.cli("apply", "--config", filepath.Join(applyDir, "tern.yaml"))
	if err != nil || !strings.Contains(out, "applied: version 2") {
		t.Fatalf("tern apply on follower %s: %v\n%s", follower.name, err, out)
	}
	waitFor(t, 10*time.Second, "every node to answer the applied version", func() bool {
		for _, nd := range c.nodes {
			if nd.txt() != "v2" {
				return false
			}
		}
		return true
	})
	for _, nd := range c.nodes {
		if s, err := nd.status(); err != nil || s.ConfigVersion != 2 {
			t.Fatalf("%s status after apply: %+v %v", nd.name, s, err)
		}
	}

	// A configuration that does not validate changes nothing, and says where.
	writeFiles(t, applyDir, map[string]string{"zones/z.zone": strings.Replace(clusterZone, "%s", "v3", 1) + "bad 30 IN POOL nosuch\n"})
	out, err = follower.cli("apply", "--config", filepath.Join(applyDir, "tern.yaml"))
	if err == nil || !strings.Contains(out, "z.zone:7") {
		t.Fatalf("apply of a bad zone: %v, want an error naming z.zone:7\n%s", err, out)
	}
	for _, nd := range c.nodes {
		if s, _ := nd.status(); s.ConfigVersion != 2 || nd.txt() != "v2" {
			t.Fatalf("%s changed after a rejected apply: %+v", nd.name, s)
		}
	}

	// Health by agreement: n3 alone cut off from backend B keeps B in every
	// node's answers, n3's included.
	n2, n3 := c.nodes[1], c.nodes[2]
	c.backB.cut(n3.ip, true)
	waitFor(t, 15*time.Second, "n3's down verdict on B to be replicated", func() bool {
		return c.nodes[0].verdict("n3", memberB) == "down"
	})
	for range 5 {
		for _, nd := range c.nodes {
			if got, err := nd.answers(); err != nil || !slices.Equal(got, both) {
				t.Fatalf("%s answers %v (%v) while only n3 sees B down; want %v", nd.name, got, err, both)
			}
		}
	}
	// A second prober agrees: B leaves every node's answers.
	c.backB.cut(n2.ip, true)
	c.eachAnswers(15*time.Second, []string{memberA})
	c.backB.cut(n2.ip, false)
	c.backB.cut(n3.ip, false)
	c.eachAnswers(15*time.Second, both)

	// Admin state through a follower's API, replicated to every node.
	if out, err := n3.cli("member", "down", "web", memberA); err != nil {
		t.Fatalf("tern member down: %v\n%s", err, out)
	}
	c.eachAnswers(10*time.Second, []string{memberB})
	if out, err := n2.cli("member", "auto", "web", memberA); err != nil {
		t.Fatalf("tern member auto: %v\n%s", err, out)
	}
	c.eachAnswers(10*time.Second, both)

	// The live explanation comes from the node's own snapshot.
	ctx := context.Background()
	if e, err := n3.client().Explain(ctx, "www.gslb.test", "198.51.100.1"); err != nil || !strings.Contains(e.Text, "POOL web") {
		t.Fatalf("explain on n3: %v\n%s", err, e.Text)
	}

	// Removal through a follower.
	if out, err := n2.cli("cluster", "remove", "n3"); err != nil {
		t.Fatalf("tern cluster remove n3: %v\n%s", err, out)
	}
	waitFor(t, 10*time.Second, "n3 to leave the member list", func() bool {
		ms, err := c.nodes[0].client().Members(ctx)
		return err == nil && len(ms) == 2 && !slices.ContainsFunc(ms, func(m apiMember) bool { return m.ID == "n3" })
	})
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
