package health

import (
	"cmp"
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

// Majority is the default quorum of n probers: more than half.
func Majority(n int) int { return n/2 + 1 }

// Probers returns the k nodes that probe a member, chosen by rendezvous
// (highest random weight) hashing of (node, pool, member): every node
// computes the same set from the same node list, whatever its order, and
// adding or removing a node moves at most one prober of any member. k <= 0
// means DefaultProbers(len(nodes)). The result is ordered by weight, best
// first. The hash is part of what every node computes alike: changing it
// moves every member's probers.
func Probers(key Key, nodes []NodeID, k int) []NodeID {
	var r ranker
	return slices.Clone(r.probers(key, uniq(nodes), k))
}

// Assigned reports whether node is one of the member's probers.
func Assigned(node NodeID, key Key, nodes []NodeID, k int) bool {
	return slices.Contains(Probers(key, nodes, k), node)
}

// ranker computes probers without allocating once its buffers have grown.
type ranker struct {
	scored []scored
	out    []NodeID
}

type scored struct {
	id NodeID
	w  uint64
}

// probers is Probers over ns, which must be sorted and unique; the result
// is valid until the next call.
func (r *ranker) probers(key Key, ns []NodeID, k int) []NodeID {
	if k <= 0 {
		k = DefaultProbers(len(ns))
	}
	k = min(k, len(ns))
	r.scored = r.scored[:0]
	for _, n := range ns {
		r.scored = append(r.scored, scored{n, weight(n, key)})
	}
	slices.SortFunc(r.scored, func(a, b scored) int {
		if c := cmp.Compare(b.w, a.w); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	r.out = r.out[:0]
	for _, s := range r.scored[:k] {
		r.out = append(r.out, s.id)
	}
	return r.out
}

// FNV-1a's 64-bit parameters.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// weight is FNV-1a over node, 0, pool, 0, member, finished with
// splitmix64 (FNV alone mixes the last bytes poorly): byte for byte what
// raftstore computed, so assignments stay where they were.
func weight(n NodeID, k Key) uint64 {
	h := uint64(fnvOffset)
	parts := [...]string{string(n), k.Pool, k.Member}
	for i, s := range parts {
		for j := 0; j < len(s); j++ {
			h ^= uint64(s[j])
			h *= fnvPrime
		}
		if i < len(parts)-1 {
			h *= fnvPrime // the 0 separator: h ^= 0 leaves h as it is
		}
	}
	return mix.Mix64(h)
}

func uniq(nodes []NodeID) []NodeID {
	ns := slices.Clone(nodes)
	slices.Sort(ns)
	return slices.Compact(ns)
}

// Fresh reports whether an observation made at at counts at clock: within
// maxAge on either side (so a prober whose clock runs far ahead cannot pin
// a verdict forever); maxAge <= 0 means observations never age.
func Fresh(at, clock time.Time, maxAge time.Duration) bool {
	if maxAge <= 0 {
		return true
	}
	d := clock.Sub(at)
	return d <= maxAge && d >= -maxAge
}

// Agree decides a member's health from the health observations of its
// probers: up when q fresh verdicts say up, down when q say down; known is
// false otherwise (too few fresh verdicts, or a split) and the caller
// keeps another answer. q <= 0 means Majority of the probers; it is
// clamped to 1..the number of probers, and a q of at most half of them
// can see both, when up wins. Observations of nodes that are not probers
// are ignored, duplicate probers count once, and of several observations
// of one node the latest counts (see Supersedes).
func Agree(health []Observation, probers []NodeID, q int, clock time.Time, maxAge time.Duration) (up, known bool) {
	n, ups, downs := 0, 0, 0
	for i, p := range probers {
		if slices.Contains(probers[:i], p) {
			continue
		}
		n++
		o, ok := latest(health, p, KindHealth)
		if !ok || !Fresh(o.At, clock, maxAge) {
			continue
		}
		if o.Up() {
			ups++
		} else {
			downs++
		}
	}
	if n == 0 {
		return false, false
	}
	if q <= 0 {
		q = Majority(n)
	}
	q = max(1, min(q, n))
	switch {
	case ups >= q:
		return true, true
	case downs >= q:
		return false, true
	}
	return false, false
}

// Median is the load a cluster serves for a member: the median of its
// probers' fresh load observations (ok false when none is fresh). The
// median, not the mean: the probers read the same agent a few seconds
// apart and normally agree, so the median is their common value, while
// one prober whose reports are off (a stale agent path, a node whose
// probes time out and keep an old smoothed value) moves it not at all
// with three probers, where it would drag a mean. With two fresh reports
// the median is their mean.
func Median(loads []Observation, probers []NodeID, clock time.Time, maxAge time.Duration) (float64, bool) {
	m, ok, _ := median(loads, probers, clock, maxAge, nil)
	return m, ok
}

// median is Median in buf's space, which it returns grown.
func median(loads []Observation, probers []NodeID, clock time.Time, maxAge time.Duration, buf []float64) (float64, bool, []float64) {
	ls := buf[:0]
	for i, p := range probers {
		if slices.Contains(probers[:i], p) {
			continue
		}
		if o, ok := latest(loads, p, KindLoad); ok && Fresh(o.At, clock, maxAge) {
			ls = append(ls, o.Value)
		}
	}
	if len(ls) == 0 {
		return 0, false, ls
	}
	slices.Sort(ls)
	m := len(ls) / 2
	if len(ls)%2 == 1 {
		return ls[m], true, ls
	}
	return (ls[m-1] + ls[m]) / 2, true, ls
}

// latest is node's observation of kind in os; of several, the one that
// supersedes the others.
func latest(os []Observation, node NodeID, kind Kind) (Observation, bool) {
	var best Observation
	found := false
	for _, o := range os {
		if o.Node != node || o.Kind != kind {
			continue
		}
		if Supersedes(best, found, o) {
			best, found = o, true
		}
	}
	return best, found
}
