package raftstore

import (
	"cmp"
	"hash/fnv"
	"slices"
	"time"

	"github.com/ternlb/tern/internal/mix"
)

// DefaultProbers is how many nodes probe each member in a cluster of n
// nodes: all of them up to five, three beyond.
func DefaultProbers(n int) int {
	if n <= 5 {
		return n
	}
	return 3
}

// Probers returns the k nodes that probe a member, chosen by rendezvous
// (highest random weight) hashing of (node, pool, member): every node
// computes the same set from the same node list, whatever its order, and
// adding or removing a node moves at most one prober of any member. k <= 0
// means DefaultProbers(len(nodes)). The result is ordered by weight, best
// first.
func Probers(key MemberKey, nodes []NodeID, k int) []NodeID {
	ns := uniq(nodes)
	if k <= 0 {
		k = DefaultProbers(len(ns))
	}
	if k > len(ns) {
		k = len(ns)
	}
	type scored struct {
		id NodeID
		w  uint64
	}
	ss := make([]scored, len(ns))
	for i, n := range ns {
		ss[i] = scored{n, weight(n, key)}
	}
	slices.SortFunc(ss, func(a, b scored) int {
		if c := cmp.Compare(b.w, a.w); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	out := make([]NodeID, k)
	for i := range out {
		out[i] = ss[i].id
	}
	return out
}

// Assigned reports whether node is one of the member's probers.
func Assigned(node NodeID, key MemberKey, nodes []NodeID, k int) bool {
	return slices.Contains(Probers(key, nodes, k), node)
}

func weight(n NodeID, k MemberKey) uint64 {
	h := fnv.New64a()
	h.Write([]byte(n))
	h.Write([]byte{0})
	h.Write([]byte(k.Pool))
	h.Write([]byte{0})
	h.Write([]byte(k.Member))
	// FNV alone mixes the last bytes poorly; finish with splitmix64.
	return mix.Mix64(h.Sum64())
}

func uniq(nodes []NodeID) []NodeID {
	ns := slices.Clone(nodes)
	slices.Sort(ns)
	return slices.Compact(ns)
}

// Majority is the default quorum of n probers: more than half.
func Majority(n int) int { return n/2 + 1 }

// MemberUp decides a member's health from the verdicts its probers hold in
// view: up when a majority of the probers have a fresh verdict saying up,
// down when a majority have a fresh verdict saying down. Otherwise known
// is false (too few fresh verdicts, or a split) and the caller should keep
// the state it had (or its default when it had none). With one prober its
// own fresh verdict decides.
//
// A verdict is fresh when its time is within maxAge of now on either side
// (so a prober whose clock runs far ahead cannot pin a verdict forever);
// maxAge <= 0 means verdicts never age. Verdicts of nodes that are not
// among probers are ignored.
//
// now is the caller's clock. A node that has lost the cluster (not in
// quorum) should pass the time of its last contact with the leader, so
// that the state it serves stays as it was instead of ageing out.
func MemberUp(view *State, pool, member string, probers []NodeID, now time.Time, maxAge time.Duration) (up, known bool) {
	ps := uniq(probers)
	return MemberUpQuorum(view, pool, member, ps, Majority(len(ps)), now, maxAge)
}

// MemberUpQuorum is MemberUp with an explicit quorum q (clamped to 1..the
// number of probers): up when q fresh verdicts say up, down when q say
// down. A q of at most half the probers can see both; up wins then.
func MemberUpQuorum(view *State, pool, member string, probers []NodeID, q int, now time.Time, maxAge time.Duration) (up, known bool) {
	ps := uniq(probers)
	if len(ps) == 0 {
		return false, false
	}
	q = max(1, min(q, len(ps)))
	var ups, downs int
	for _, p := range ps {
		v, ok := view.Verdict(p, pool, member)
		if !ok || !fresh(v.At, now, maxAge) {
			continue
		}
		if v.Up {
			ups++
		} else {
			downs++
		}
	}
	switch {
	case ups >= q:
		return true, true
	case downs >= q:
		return false, true
	}
	return false, false
}

func fresh(at, now time.Time, maxAge time.Duration) bool {
	if maxAge <= 0 {
		return true
	}
	d := now.Sub(at)
	return d <= maxAge && d >= -maxAge
}
