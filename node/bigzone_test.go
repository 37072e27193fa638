package node

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/internal/eventually"
	"github.com/ternlb/tern/raftstore"
)

// bigRecords is the size of the big zone: a million A records, about
// 28 MiB of zone file.
const bigRecords = 1_000_000

// skipBig skips a test of the big zone under -short, and under -race
// (minutes there: `make test` runs them again without it).
func skipBig(t *testing.T) {
	t.Helper()
	switch {
	case testing.Short():
		t.Skip("a 1,000,000-record zone: skipped with -short")
	case raceDetector:
		t.Skip("a 1,000,000-record zone takes minutes under -race: make test runs it without")
	}
}

// bigZone is a zone file of n A records h0 .. h(n-1).
func bigZone(origin string, n int) []byte {
	var b bytes.Buffer
	b.Grow(n * 30)
	fmt.Fprintf(&b, "$ORIGIN %s\n@ 300 IN SOA ns1 hostmaster 1 3600 600 604800 60\n@ 300 IN NS ns1\nns1 300 IN A 192.0.2.53\n", origin)
	for i := range n {
		fmt.Fprintf(&b, "h%d 300 IN A %s\n", i, bigAddr(i))
	}
	return b.Bytes()
}

func bigAddr(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }

// bigFiles is a cluster's configuration files: the YAML file (its node
// section first, from node) with pool web, the big zone (when big) and
// ten small zones, by their paths in the folder.
func bigFiles(node string, big bool) map[string][]byte {
	files := map[string][]byte{}
	var zs strings.Builder
	if big {
		files["zones/big.zone"] = bigZone("big.test.", bigRecords)
		zs.WriteString("  - file: zones/big.zone\n")
	}
	for i := range 10 {
		name := fmt.Sprintf("zones/small%d.zone", i)
		files[name] = []byte(fmt.Sprintf("$ORIGIN small%d.test.\n@ 300 IN SOA ns1 hostmaster 1 3600 600 604800 60\n@ 300 IN NS ns1\nns1 300 IN A 192.0.2.53\nwww 5 IN POOL web\nv 300 IN A 192.0.2.10\n", i))
		fmt.Fprintf(&zs, "  - file: %s\n", name)
	}
	files["tern.yaml"] = []byte(node + "pools:\n  web:\n    members: [{address: 192.0.2.1}]\nzones:\n" + zs.String())
	return files
}

// clusterNodeYAML is the node section of a cluster node of the big tests.
func clusterNodeYAML(name string, api, raft int, extra string) string {
	return fmt.Sprintf("node:\n  name: %s\n  dns: [\"127.0.0.1:0\"]\n  api: \"127.0.0.1:%d\"\n  raft: \"127.0.0.1:%d\"\n  data: data\n%s", name, api, raft, extra)
}

// startFiles writes files into a new folder and runs a node on its
// tern.yaml until the test ends; tune adjusts its Raft options.
func startFiles(t *testing.T, files map[string][]byte, tune func(*raftstore.Options)) *Node {
	t.Helper()
	n := runNodeFiles(t, t.TempDir(), files, Options{ProbeWait: time.Second, Raft: tune})
	select {
	case <-n.Serving():
	case <-time.After(time.Minute):
		t.Fatal("node did not start serving")
	}
	return n
}

// applyRequest is what `tern apply` sends for files (the node section
// left in: every node takes its own).
func applyRequest(files map[string][]byte, base uint64) api.ApplyRequest {
	r := api.ApplyRequest{Main: "tern.yaml", Files: map[string]string{}, Change: api.Change{Base: base}}
	for p, data := range files {
		r.Files[p] = string(data)
	}
	return r
}

// timedApply applies files based on base through n's API and waits until
// every node answers name with want; it logs how long the apply took, how
// long until the answer was served everywhere, and the bytes of log.
func timedApply(t *testing.T, what string, via *Node, files map[string][]byte, base uint64, name, want string, nodes ...*Node) api.ApplyResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := api.NewClient(via.APIAddr().String(), "", nil).Apply(ctx, applyRequest(files, base))
	if err != nil {
		t.Fatalf("%s: apply: %v", what, err)
	}
	applied := time.Since(start)
	for _, n := range nodes {
		addr := n.DNSAddrs()[0].String()
		eventually.True(t, 5*time.Minute, func() bool {
			got := answers(t, addr, name)
			return len(got) == 1 && got[0] == want
		}, what+": the new answer served")
	}
	t.Logf("%s: version %d; the apply answered in %v, every node served the new answer %v after it was sent; %d bytes of Raft log",
		what, res.Version, applied.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), res.Replicated)
	return res
}

// A bootstrapped cluster serves a 1,000,000-record zone beside ten small
// ones, and a one-record edit of it sent as `tern apply` does (based on
// the current version) is served; so is an edit of a small zone beside
// it, which carries the small file alone. (Figures: see the log.)
func TestBigZoneThroughACluster(t *testing.T) {
	skipBig(t)
	start := time.Now()
	apiPort, raftPort := freePort(t), freePort(t)
	files := bigFiles(clusterNodeYAML("b1", apiPort, raftPort, "  bootstrap: true\n"), true)
	n := startFiles(t, files, nil)
	eventually.True(t, 2*time.Minute, func() bool {
		s, _ := n.Status(context.Background())
		return s.ConfigVersion == 1
	}, "version 1 served")
	t.Logf("bootstrap with the big zone: serving version 1 %v after the start", time.Since(start).Round(time.Millisecond))
	dnsAddr := n.DNSAddrs()[0].String()
	mid := bigRecords / 2
	for _, i := range []int{0, mid, bigRecords - 1} {
		name := fmt.Sprintf("h%d.big.test.", i)
		if got := answers(t, dnsAddr, name); len(got) != 1 || got[0] != bigAddr(i) {
			t.Fatalf("%s: %v, want %s", name, got, bigAddr(i))
		}
	}
	if b := n.store.State().Blobs(); b.Bytes < int64(len(files["zones/big.zone"])) {
		t.Fatalf("held %+v", b)
	}

	// One record of the million edited.
	edited := maps.Clone(files)
	midName := fmt.Sprintf("h%d", mid)
	edited["zones/big.zone"] = bytes.Replace(files["zones/big.zone"], []byte("\n"+midName+" 300 IN A "+bigAddr(mid)+"\n"), []byte("\n"+midName+" 300 IN A 192.0.2.200\n"), 1)
	res := timedApply(t, "one record of the big zone", n, edited, 1, midName+".big.test.", "192.0.2.200", n)
	if res.Replicated > 4<<20 {
		t.Fatalf("a one-record edit took %d bytes of log", res.Replicated)
	}
	if got := answers(t, dnsAddr, fmt.Sprintf("h%d.big.test.", bigRecords-1)); len(got) != 1 || got[0] != bigAddr(bigRecords-1) {
		t.Fatalf("the last record after the edit: %v", got)
	}

	// One small zone edited beside the big one.
	small := maps.Clone(edited)
	small["zones/small3.zone"] = bytes.Replace(edited["zones/small3.zone"], []byte("v 300 IN A 192.0.2.10"), []byte("v 300 IN A 192.0.2.33"), 1)
	res = timedApply(t, "one small zone beside the big one", n, small, res.Version, "v.small3.test.", "192.0.2.33", n)
	if res.Replicated > 64<<10 {
		t.Fatalf("a small zone's edit took %d bytes of log", res.Replicated)
	}
	if got := answers(t, dnsAddr, midName+".big.test."); len(got) != 1 || got[0] != "192.0.2.200" {
		t.Fatalf("the big zone after the small zone's edit: %v", got)
	}
	t.Logf("the whole test: %v", time.Since(start).Round(time.Millisecond))
}

// Three nodes: the big zone is applied through a follower (whose API
// forwards every piece to the leader), the leader's Raft log is compacted
// into a snapshot, and a third node that joins catches up from that
// snapshot and answers the zone's last record.
func TestBigZoneJoinFromSnapshot(t *testing.T) {
	skipBig(t)
	start := time.Now()
	snapshotOften := func(o *raftstore.Options) {
		o.SnapshotThreshold, o.SnapshotInterval, o.TrailingLogs = 1, 50*time.Millisecond, 1
	}
	ports := make([]int, 6)
	for i := range ports {
		ports[i] = freePort(t)
	}
	join := fmt.Sprintf("  join: [\"127.0.0.1:%d\"]\n", ports[0])
	n1 := startFiles(t, bigFiles(clusterNodeYAML("j1", ports[0], ports[1], "  bootstrap: true\n"), false), snapshotOften)
	eventually.True(t, 20*time.Second, func() bool {
		_, ok := n1.store.State().Config()
		return n1.store.IsLeader() && ok
	}, "n1 leads with a configuration")
	n2 := startFiles(t, bigFiles(clusterNodeYAML("j2", ports[2], ports[3], join), false), snapshotOften)
	eventually.True(t, 20*time.Second, func() bool {
		ms, err := n1.store.Members()
		return err == nil && len(ms) == 2 && n2.store.State().Index() >= n1.store.State().Index()
	}, "n2 joined")

	last := fmt.Sprintf("h%d.big.test.", bigRecords-1)
	big := bigFiles(clusterNodeYAML("operator", 1, 1, ""), true)
	res := timedApply(t, "the big zone through a follower", n2, big, 1, last, bigAddr(bigRecords-1), n1, n2)
	// Raft snapshots (taken in the background after every entry here)
	// have compacted the log past the new version.
	cv, _ := n1.store.State().ConfigVersion(res.Version)
	eventually.True(t, time.Minute, func() bool {
		return n1.store.SnapshotIndex() >= cv.Index
	}, "a snapshot of the new version")

	joined := time.Now()
	n3 := startFiles(t, bigFiles(clusterNodeYAML("j3", ports[4], ports[5], join), false), snapshotOften)
	addr3 := n3.DNSAddrs()[0].String()
	eventually.True(t, 5*time.Minute, func() bool {
		got := answers(t, addr3, last)
		return len(got) == 1 && got[0] == bigAddr(bigRecords-1)
	}, "n3 answers the big zone's last record")
	if r := n3.store.FSM().Restored(); r < cv.Index {
		t.Fatalf("n3 restored a snapshot of index %d, not one holding version %d (index %d)", r, cv.Version, cv.Index)
	}
	if s, _ := n3.Status(context.Background()); s.ConfigVersion != res.Version {
		t.Fatalf("n3 serves version %d, want %d", s.ConfigVersion, res.Version)
	}
	t.Logf("n3 joined, restored the snapshot of index %d and served the last record %v after it started; the whole test %v",
		n3.store.FSM().Restored(), time.Since(joined).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
