package test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/internal/eventually"
)

// TestClusterFormsAppliesAgrees: three nodes form a cluster (one
// bootstraps, two join); `tern apply` on a follower changes every node's
// answers and returns the committed version, a bad configuration changes
// nothing and names file:line; health is decided by agreement (one node
// cut off from a backend does not take it out, two do); member admin
// states and removal go through any node. The API needs a token for
// writes, which the nodes use to join and to forward.
func TestClusterFormsAppliesAgrees(t *testing.T) {
	c := newCluster(t, 3)
	c.token = "cluster-s3cret"
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
	eventually.True(t, 10*time.Second, func() bool {
		for _, nd := range c.nodes {
			if nd.txt() != "v2" {
				return false
			}
		}
		return true
	}, "every node to answer the applied version")
	for _, nd := range c.nodes {
		if s, err := nd.status(); err != nil || s.ConfigVersion != 2 {
			t.Fatalf("%s status after apply: %+v %v", nd.name, s, err)
		}
	}

	// A change based on version 1 while version 2 is current is refused,
	// with the diff from version 2 to what was sent, and changes nothing.
	writeFiles(t, applyDir, map[string]string{"zones/z.zone": strings.Replace(clusterZone, "%s", "stale", 1)})
	out, err = follower.cli("apply", "--base", "1", "--config", filepath.Join(applyDir, "tern.yaml"))
	if err == nil || !strings.Contains(out, "refused") || !strings.Contains(out, "+++ sent/zones/z.zone") ||
		!strings.Contains(out, `-v    300 IN TXT "v2"`) || !strings.Contains(out, `+v    300 IN TXT "stale"`) || !strings.Contains(out, "--force") {
		t.Fatalf("apply on a stale base: %v, want a refusal with the diff\n%s", err, out)
	}
	writeFiles(t, applyDir, map[string]string{"zones/z.zone": strings.Replace(clusterZone, "%s", "v2", 1)})
	if s, _ := c.nodes[0].status(); s.ConfigVersion != 2 || c.nodes[0].txt() != "v2" {
		t.Fatalf("a refused apply changed the cluster: %+v", s)
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

	ctx := context.Background()
	if err := api.NewClient(follower.api, "", nil).SetAdmin(ctx, "web", memberA, "down"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("a write without the token: %v, want 401", err)
	}

	// Rollback through a follower re-applies version 1 as version 3.
	if out, err := follower.cli("config", "rollback", "1"); err != nil || !strings.Contains(out, "now version 3") {
		t.Fatalf("tern config rollback 1: %v\n%s", err, out)
	}
	eventually.True(t, 10*time.Second, func() bool {
		for _, nd := range c.nodes {
			if s, err := nd.status(); err != nil || s.ConfigVersion != 3 || nd.txt() != "v1" {
				return false
			}
		}
		return true
	}, "every node to serve the rolled-back data")
	if vs, err := c.nodes[2].client().Versions(ctx); err != nil || len(vs) != 3 || !vs[2].Current || vs[2].Hash != vs[0].Hash {
		t.Fatalf("versions after rollback: %+v %v", vs, err)
	}
	versions := regexp.MustCompile(`(?m)^1\s+[0-9a-f]{12}\s+\S+Z\s+bootstrap on n1\s+-\s+$` +
		`\n^2\s+[0-9a-f]{12}\s+\S+Z\s+apply on n\d from 127\.0\.0\.1:\d+\s+-\s+$` +
		`\n^3\s+[0-9a-f]{12}\s+\S+Z\s+rollback of 1 on n\d from 127\.0\.0\.1:\d+\s+-\s+\*$`)
	if out, err := c.nodes[2].cli("config", "versions"); err != nil || !versions.MatchString(out) {
		t.Fatalf("tern config versions: %v\n%s", err, out)
	}
	if _, err := follower.client().Rollback(ctx, 99, api.RollbackRequest{}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("rollback to a version never made: %v, want 404", err)
	}

	// Health by agreement: n3 alone cut off from backend B keeps B in every
	// node's answers, n3's included.
	n2, n3 := c.nodes[1], c.nodes[2]
	c.backB.cut(n3.ip, true)
	eventually.True(t, 15*time.Second, func() bool {
		return c.nodes[0].verdict("n3", memberB) == "down"
	}, "n3's down verdict on B to be replicated")
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

	// A member taken out of the configuration is forgotten (verdicts and
	// admin state): added back, it starts afresh instead of forced down.
	if out, err := n3.cli("member", "down", "web", memberB); err != nil {
		t.Fatalf("tern member down: %v\n%s", err, out)
	}
	c.eachAnswers(10*time.Second, []string{memberA})
	var noB []string
	for _, line := range strings.Split(c.cluster, "\n") {
		if !strings.Contains(line, memberB) {
			noB = append(noB, line)
		}
	}
	for _, cluster := range []string{strings.Join(noB, "\n"), c.cluster} {
		writeFiles(t, applyDir, map[string]string{
			"tern.yaml":    "node: {name: operator}\n" + cluster,
			"zones/z.zone": strings.Replace(clusterZone, "%s", "v1", 1),
		})
		// The first one forced over a stale base, with a comment.
		args := []string{"apply", "--config", filepath.Join(applyDir, "tern.yaml")}
		if cluster != c.cluster {
			args = append(args, "--base", "1", "--force", "--comment", "without B")
		}
		if out, err := follower.cli(args...); err != nil {
			t.Fatalf("apply: %v\n%s", err, out)
		}
		if cluster != c.cluster {
			// The API lists configured members only: the leader's log says
			// when it has forgotten the others.
			eventually.True(t, 10*time.Second, func() bool {
				ld := c.leader()
				return ld != nil && strings.Contains(ld.out.String(), "forgot members no longer configured")
			}, "the leader to forget the removed member")
		}
	}
	c.eachAnswers(15*time.Second, both)
	if out, err := n2.cli("config", "versions"); err != nil || !regexp.MustCompile(`(?m)^4\s.*\swithout B\s+$`).MatchString(out) {
		t.Fatalf("tern config versions shows no comment: %v\n%s", err, out)
	}

	// The live explanation comes from the node's own snapshot.
	if e, err := n3.client().Explain(ctx, "www.gslb.test", "198.51.100.1"); err != nil || !strings.Contains(e.Text, "POOL web") {
		t.Fatalf("explain on n3: %v\n%s", err, e.Text)
	}

	// Removal through a follower.
	if out, err := n2.cli("cluster", "remove", "n3"); err != nil {
		t.Fatalf("tern cluster remove n3: %v\n%s", err, out)
	}
	eventually.True(t, 10*time.Second, func() bool {
		ms, err := c.nodes[0].client().Members(ctx)
		return err == nil && len(ms) == 2 && !slices.ContainsFunc(ms, func(m apiMember) bool { return m.ID == "n3" })
	}, "n3 to leave the member list")
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

// TestClusterLeaderKill: kill -9 of the leader while a load generator
// queries the two other nodes: no query fails or is answered wrongly, a
// new leader is elected within a few seconds, writes succeed again (the
// write gap is logged), and the killed node, restarted after a new
// version was applied without it, catches up and serves that version.
func TestClusterLeaderKill(t *testing.T) {
	c := newCluster(t, 3)
	c.form()
	both := []string{memberA, memberB}
	c.eachAnswers(20*time.Second, both)
	old := c.leader()
	if old == nil {
		t.Fatal("no leader")
	}
	var others []*tnode
	for _, nd := range c.nodes {
		if nd != old {
			others = append(others, nd)
		}
	}

	// The load generator: sequential queries to each surviving node, until
	// stopped or 60s or 200,000 queries, whichever comes first.
	stop := make(chan struct{})
	type tally struct {
		sent, failed int
		first        string
	}
	results := make(chan tally, len(others))
	for _, nd := range others {
		go func(nd *tnode) {
			var tl tally
			deadline := time.Now().Add(60 * time.Second)
			for tl.sent < 200000 && time.Now().Before(deadline) {
				select {
				case <-stop:
					results <- tl
					return
				default:
				}
				tl.sent++
				got, err := nd.answers()
				if err != nil || !slices.Equal(got, both) {
					tl.failed++
					if tl.first == "" {
						tl.first = nd.name + ": " + strings.Join(got, ",")
						if err != nil {
							tl.first += " " + err.Error()
						}
					}
				}
			}
			results <- tl
		}(nd)
	}

	ctx := context.Background()
	write := func(nd *tnode) error {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return nd.client().SetAdmin(wctx, "web", memberA, "auto")
	}
	if err := write(others[0]); err != nil {
		t.Fatalf("a write before the kill: %v", err)
	}

	killed := time.Now()
	old.cmd.Process.Kill()
	old.wait(10 * time.Second)

	var leader *tnode
	eventually.True(t, 10*time.Second, func() bool {
		leader = c.leader()
		return leader != nil && leader != old
	}, "a new leader")
	elected := time.Since(killed)
	var gap time.Duration
	eventually.True(t, 20*time.Second, func() bool {
		if write(others[1]) != nil {
			return false
		}
		gap = time.Since(killed)
		return true
	}, "a write to succeed again")
	t.Logf("kill -9 of leader %s: new leader %s seen after %v; write gap (kill to the first write committed through %s) %v",
		old.name, leader.name, elected.Round(time.Millisecond), others[1].name, gap.Round(time.Millisecond))

	// A new version while the old leader is down.
	applyDir := t.TempDir()
	writeFiles(t, applyDir, map[string]string{
		"tern.yaml":    "node: {name: operator}\n" + c.cluster,
		"zones/z.zone": strings.Replace(clusterZone, "%s", "v2", 1),
	})
	if out, err := others[0].cli("apply", "--config", filepath.Join(applyDir, "tern.yaml")); err != nil || !strings.Contains(out, "version 2") {
		t.Fatalf("apply after the kill: %v\n%s", err, out)
	}

	close(stop)
	for range others {
		tl := <-results
		if tl.failed > 0 || tl.sent == 0 {
			t.Errorf("load: %d of %d queries failed or were wrong (first: %s)", tl.failed, tl.sent, tl.first)
		} else {
			t.Logf("load: %d queries, none failed", tl.sent)
		}
	}

	// The killed node restarts from its data directory and catches up.
	old.start()
	c.waitConverged(30*time.Second, 2)
	eventually.True(t, 10*time.Second, func() bool { return old.txt() == "v2" }, "the restarted node to serve version 2")
}

// TestClusterIsolatedNode: a node whose peers stop (SIGSTOP: they hold
// their sockets but answer nothing) keeps answering DNS from its last
// state, including a member the cluster agreed was down, for longer than
// the verdicts' max age (its clock for them stops at its last quorum), and
// reports itself out of quorum in `tern status` and on /readyz; it comes
// back when they do.
func TestClusterIsolatedNode(t *testing.T) {
	const maxAge = 3 * time.Second
	c := newCluster(t, 3)
	c.args = []string{"--verdict-max-age", maxAge.String(), "--verdict-refresh", "1s"}
	c.form()
	// B down by agreement of all three before the isolation.
	for _, nd := range c.nodes {
		c.backB.cut(nd.ip, true)
	}
	c.eachAnswers(20*time.Second, []string{memberA})

	lone := c.leader()
	if lone == nil {
		t.Fatal("no leader")
	}
	var others []*tnode
	for _, nd := range c.nodes {
		if nd != lone {
			others = append(others, nd)
			nd.cmd.Process.Signal(syscall.SIGSTOP)
		}
	}
	// The lone node's own probes now see B up again; the state it serves
	// stays the agreed one (its clock for verdicts stops at its last
	// quorum).
	c.backB.cut(lone.ip, false)

	eventually.True(t, 15*time.Second, func() bool {
		out, err := lone.cli("status")
		var ee *exec.ExitError
		return errors.As(err, &ee) && ee.ExitCode() == 1 && regexp.MustCompile(`in quorum\s+false`).MatchString(out) && strings.Contains(out, "unhealthy")
	}, "tern status to report the lone node out of quorum, exiting 1")
	if err := lone.client().Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "quorum") {
		t.Fatalf("/readyz of an isolated node: %v, want 503 naming the quorum", err)
	}
	// Past the max age, the peers' down verdicts would be stale by the
	// wall clock and the lone node's own (B up) would decide.
	for end := time.Now().Add(maxAge + 2*time.Second); time.Now().Before(end); {
		if got, err := lone.answers(); err != nil || !slices.Equal(got, []string{memberA}) {
			t.Fatalf("isolated node answers %v (%v), want its last state %v", got, err, []string{memberA})
		}
		time.Sleep(50 * time.Millisecond) // pacing the queries, not waiting for a state
	}
	if lone.txt() != "v1" {
		t.Fatal("isolated node lost its static data")
	}

	for _, nd := range others {
		nd.cmd.Process.Signal(syscall.SIGCONT)
	}
	eventually.True(t, 20*time.Second, func() bool {
		s, err := lone.status()
		return err == nil && s.InQuorum && lone.client().Ready(context.Background()) == nil
	}, "the node back in quorum and ready")
}

// TestClusterDataDir: a corrupt raft.db, a joined node's lost data
// directory and the bootstrap node's lost data directory each stop `tern
// serve` with a clear error and a non-zero exit, never a silent new
// cluster; the node with its data restored rejoins.
func TestClusterDataDir(t *testing.T) {
	c := newCluster(t, 3)
	c.form()
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	ctx := context.Background()

	// Garbage in raft.db.
	n2.stop(syscall.SIGTERM)
	db := filepath.Join(n2.dir, "data", "raft.db")
	good, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, len(good))
	for i := range junk {
		junk[i] = byte(i*7 + 3)
	}
	if err := os.WriteFile(db, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	n2.start()
	if err := n2.wait(30 * time.Second); err == nil || !strings.Contains(n2.out.String(), "raft.db") || !strings.Contains(n2.out.String(), "unusable data directory") {
		t.Fatalf("start on a corrupt raft.db: exit %v, want non-zero naming raft.db\n%s", err, n2.out.String())
	}
	// Restored, it rejoins with its ID and log.
	if err := os.WriteFile(db, good, 0o600); err != nil {
		t.Fatal(err)
	}
	n2.start()
	c.waitConverged(30*time.Second, 1)

	// A joined node whose data directory is gone: the cluster still lists
	// it, so it must not come back as a blank voter.
	n3.stop(syscall.SIGTERM)
	if err := os.RemoveAll(filepath.Join(n3.dir, "data")); err != nil {
		t.Fatal(err)
	}
	n3.start()
	if err := n3.wait(30 * time.Second); err == nil || !strings.Contains(n3.out.String(), "lost its data directory") {
		t.Fatalf("start of a joined node without its data: exit %v, want non-zero saying it lost its data\n%s", err, n3.out.String())
	}
	if ms, err := n1.client().Members(ctx); err != nil || len(ms) != 3 {
		t.Fatalf("members after the refused start: %v %v", ms, err)
	}
	// The documented way back: remove it, then it joins as a new member.
	if out, err := n1.cli("cluster", "remove", "n3"); err != nil {
		t.Fatalf("tern cluster remove n3: %v\n%s", err, out)
	}
	os.RemoveAll(filepath.Join(n3.dir, "data"))
	n3.start()
	c.waitConverged(30*time.Second, 1)

	// The bootstrap node's data directory is gone: its peers hold a
	// cluster, so it must not bootstrap a second one.
	n1.stop(syscall.SIGTERM)
	if err := os.RemoveAll(filepath.Join(n1.dir, "data")); err != nil {
		t.Fatal(err)
	}
	n1.start()
	if err := n1.wait(30 * time.Second); err == nil || !strings.Contains(n1.out.String(), "Do not bootstrap a second cluster") {
		t.Fatalf("bootstrap node without its data: exit %v, want non-zero refusing a second cluster\n%s", err, n1.out.String())
	}
	if _, err := os.Stat(filepath.Join(n1.dir, "data", "raft.db")); err == nil {
		t.Fatal("the refused bootstrap node created a Raft log")
	}
}

// TestClusterStaleFileAndSerials is the operator's slip, tried as an
// operator would: a node restarted with its old file while the cluster
// had moved on, then reloaded (systemctl reload: SIGHUP). The reload
// commits nothing, every node keeps answering the current version, and
// the node says its file differs. Then a rollback to version 1 (whose
// zone file has a lower serial than version 2's) serves a higher serial
// than version 2 did, the same on every node, and a restart keeps it.
func TestClusterStaleFileAndSerials(t *testing.T) {
	c := newCluster(t, 3)
	c.form()
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	serial := func(nd *tnode) uint32 {
		r, err := query(nd.dns, "gslb.test.", dns.TypeSOA)
		if err != nil || len(r.Answer) != 1 {
			return 0
		}
		return r.Answer[0].(*dns.SOA).Serial
	}
	sameSerial := func(what string, ok func(uint32) bool) uint32 {
		t.Helper()
		var got uint32
		eventually.True(t, 15*time.Second, func() bool {
			got = serial(n1)
			for _, nd := range c.nodes {
				if s := serial(nd); s != got || !ok(s) {
					return false
				}
			}
			return true
		}, what)
		return got
	}

	// Version 2 raises the zone file's serial from 1 to 11.
	applyDir := t.TempDir()
	writeFiles(t, applyDir, map[string]string{
		"tern.yaml":    "node: {name: operator}\n" + c.cluster,
		"zones/z.zone": strings.Replace(strings.Replace(clusterZone, "%s", "v2", 1), "hostmaster 1 ", "hostmaster 11 ", 1),
	})
	if out, err := n3.cli("apply", "--config", filepath.Join(applyDir, "tern.yaml"), "--comment", "serial 11"); err != nil || !strings.Contains(out, "applied: version 2") {
		t.Fatalf("tern apply: %v\n%s", err, out)
	}
	c.waitConverged(20*time.Second, 2)
	s2 := sameSerial("every node to serve version 2's serial", func(s uint32) bool { return s == 11 })

	// n2 restarts with its old file (version 1's content), then reloads.
	n2.stop(syscall.SIGTERM)
	n2.start()
	c.waitConverged(30*time.Second, 2)
	n2.cmd.Process.Signal(syscall.SIGHUP)
	eventually.True(t, 10*time.Second, func() bool {
		return strings.Contains(n2.out.String(), "NOT applied")
	}, "n2 to log that its file is not applied")
	for _, nd := range c.nodes {
		if s, err := nd.status(); err != nil || s.ConfigVersion != 2 || nd.txt() != "v2" {
			t.Fatalf("%s after n2's reload of a stale file: %+v %v (txt %q)", nd.name, s, err, nd.txt())
		}
	}
	if vs, err := n1.client().Versions(context.Background()); err != nil || len(vs) != 2 {
		t.Fatalf("versions after the reload: %+v %v", vs, err)
	}
	if out, err := n2.cli("status"); err != nil || !strings.Contains(out, "differs from the cluster's version") {
		t.Fatalf("tern status on n2: %v\n%s", err, out)
	}

	// A rollback to version 1 (file serial 1) serves above version 2's 11.
	if out, err := n2.cli("rollback", "--comment", "undo", "1"); err != nil || !strings.Contains(out, "now version 3") {
		t.Fatalf("tern rollback 1: %v\n%s", err, out)
	}
	c.waitConverged(20*time.Second, 3)
	s3 := sameSerial("every node to serve one serial above version 2's", func(s uint32) bool { return s > s2 })
	if n1.txt() != "v1" {
		t.Fatalf("the rollback serves %q", n1.txt())
	}

	n3.stop(syscall.SIGTERM)
	n3.start()
	c.waitConverged(30*time.Second, 3)
	if got := sameSerial("every node's serial after n3's restart", func(uint32) bool { return true }); got != s3 {
		t.Fatalf("after a restart the serial is %d, version 3 served %d", got, s3)
	}
}
