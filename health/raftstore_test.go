package health_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ternlb/tern/health"
	"github.com/ternlb/tern/raftstore"
)

// The prober choice moved from raftstore: every node must keep computing
// the same assignment, or a rolling upgrade would split the probers of a
// member between two rules.
func TestProbersMatchRaftstore(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 6, 7, 12} {
		var rn []raftstore.NodeID
		var hn []health.NodeID
		for i := range n {
			id := fmt.Sprintf("tern-%d.example", i)
			rn, hn = append(rn, raftstore.NodeID(id)), append(hn, health.NodeID(id))
		}
		for i := range 300 {
			pool, member := fmt.Sprintf("pool-%d", i%7), fmt.Sprintf("10.%d.%d.1", i/250, i%250)
			if i%50 == 0 {
				member = "2001:db8::" + fmt.Sprint(i)
			}
			for _, k := range []int{0, 2} {
				want := raftstore.Probers(raftstore.MemberKey{Pool: pool, Member: member}, rn, k)
				got := health.Probers(health.Key{Pool: pool, Member: member}, hn, k)
				if !slices.EqualFunc(got, want, func(a health.NodeID, b raftstore.NodeID) bool { return string(a) == string(b) }) {
					t.Fatalf("%d nodes, %s/%s, k=%d: health %v, raftstore %v", n, pool, member, k, got, want)
				}
			}
		}
	}
}
