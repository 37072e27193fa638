package raftstore

import (
	"cmp"
	"slices"

	"github.com/ternlb/tern/health"
	"github.com/ternlb/tern/internal/mix"
)

// The replicated observations: each node's latest observation of each
// kind of each member, as health.Observation, held in a persistent trie so
// that applying one node's batch costs what the batch touches, not what
// the state holds (see obsTrie). FSM.ChangedSince tells a reader which
// members changed since the state it last read.

// Observations returns every node's latest observation of kind of a
// member, appended to dst, by node; kind "" returns every kind, by kind
// then node.
func (s *State) Observations(dst []health.Observation, pool, member string, kind health.Kind) []health.Observation {
	for _, o := range s.obs.get(MemberKey{pool, member}) {
		if kind == "" || o.Kind == kind {
			dst = append(dst, o)
		}
	}
	return dst
}

// Observation returns node's latest observation of kind of a member.
func (s *State) Observation(node NodeID, pool, member string, kind health.Kind) (health.Observation, bool) {
	obs := s.obs.get(MemberKey{pool, member})
	i, ok := slices.BinarySearchFunc(obs, obsID{kind, health.NodeID(node)}, cmpObs)
	if !ok {
		return health.Observation{}, false
	}
	return obs[i], true
}

// Observed returns every member with an observation, by pool then member.
func (s *State) Observed() []MemberKey {
	out := make([]MemberKey, 0, s.obs.members)
	s.obs.walk(func(m *memberObs) { out = append(out, m.key) })
	slices.SortFunc(out, cmpKey)
	return out
}

// ObservedCount is how many members have an observation.
func (s *State) ObservedCount() int { return s.obs.members }

// obsID orders a member's observations: by kind, then node.
type obsID struct {
	kind health.Kind
	node health.NodeID
}

func cmpObs(o health.Observation, id obsID) int {
	return cmp.Or(cmp.Compare(o.Kind, id.kind), cmp.Compare(o.Node, id.node))
}

// merge takes node's reports into the state by health.Supersedes (an
// older or identical report changes nothing; of two at the same time the
// greater value wins, whatever order they come in) and returns the
// members whose observations changed.
func (s *State) merge(node NodeID, rs []ObservationReport) []MemberKey {
	t := s.obs.edit()
	var changed []MemberKey
	for _, r := range rs {
		k := MemberKey{r.Pool, r.Member}
		o := health.Observation{Node: health.NodeID(node), Kind: r.Kind, Value: r.Value, At: normTime(r.At)}
		obs := t.get(k)
		i, ok := slices.BinarySearchFunc(obs, obsID{o.Kind, o.Node}, cmpObs)
		var held health.Observation
		if ok {
			held = obs[i]
		}
		if !health.Supersedes(held, ok, o) {
			continue
		}
		next := make([]health.Observation, len(obs), len(obs)+1)
		copy(next, obs) // a stored slice is never modified
		if ok {
			next[i] = o
		} else {
			next = slices.Insert(next, i, o)
		}
		t.set(k, next)
		if len(changed) == 0 || changed[len(changed)-1] != k {
			changed = append(changed, k) // a batch lists a member's kinds together: at most a repeat
		}
	}
	s.obs = t.done()
	return changed
}

// dropNode removes every observation of node and returns the members
// that had one.
func (s *State) dropNode(node NodeID) []MemberKey {
	var changed []MemberKey
	var keep [][]health.Observation
	s.obs.walk(func(m *memberObs) {
		if !slices.ContainsFunc(m.obs, func(o health.Observation) bool { return o.Node == health.NodeID(node) }) {
			return
		}
		changed = append(changed, m.key)
		keep = append(keep, slices.DeleteFunc(slices.Clone(m.obs), func(o health.Observation) bool { return o.Node == health.NodeID(node) }))
	})
	if len(changed) == 0 {
		return nil
	}
	t := s.obs.edit()
	for i, k := range changed {
		t.set(k, keep[i])
	}
	s.obs = t.done()
	return changed
}

// dropMembers removes every observation of ks and returns those that had
// one.
func (s *State) dropMembers(ks []MemberKey) []MemberKey {
	var changed []MemberKey
	t := s.obs.edit()
	for _, k := range ks {
		if len(t.get(k)) > 0 {
			t.set(k, nil)
			changed = append(changed, k)
		}
	}
	s.obs = t.done()
	return changed
}

// obsTrie is a persistent map from a member to its observations: a trie
// of 32-way nodes over a 64-bit hash of the member, trieLevels deep, whose
// leaves hold the members that share those hash bits. An update copies
// the nodes on one path and shares all others with the version it was
// made from, so a state with a hundred thousand members costs what a
// small one costs to change, and an older version stays valid for its
// readers. Its layout depends on nothing but the keys; its order is not
// the state's canonical one (see Observed).
type obsTrie struct {
	root    *trieNode
	members int
	// owner marks the nodes made by the edit under way, which it may
	// change in place: no published state reaches them yet.
	owner *editToken
}

type editToken struct{ _ byte } // not zero-sized: every token is a distinct pointer

const (
	trieBits   = 5
	trieFan    = 1 << trieBits
	trieLevels = 4 // 2^20 leaves
)

type trieNode struct {
	kids  *[trieFan]*trieNode // inner nodes only
	items []memberObs         // leaves only, by key
	owner *editToken
}

type memberObs struct {
	key MemberKey
	obs []health.Observation // by kind then node; never modified once stored
}

func trieHash(k MemberKey) uint64 {
	h := uint64(14695981039346656037)
	for i, s := range [2]string{k.Pool, k.Member} {
		for j := 0; j < len(s); j++ {
			h ^= uint64(s[j])
			h *= 1099511628211
		}
		if i == 0 {
			h *= 1099511628211 // a 0 between pool and member
		}
	}
	return mix.Mix64(h)
}

func (t obsTrie) get(k MemberKey) []health.Observation {
	n, h := t.root, trieHash(k)
	for l := 0; l < trieLevels && n != nil; l++ {
		n = n.kids[h&(trieFan-1)]
		h >>= trieBits
	}
	if n == nil {
		return nil
	}
	if i, ok := slices.BinarySearchFunc(n.items, k, func(m memberObs, k MemberKey) int { return cmpKey(m.key, k) }); ok {
		return n.items[i].obs
	}
	return nil
}

// edit starts a batch of changes; done ends it.
func (t obsTrie) edit() obsTrie {
	t.owner = new(editToken)
	return t
}

func (t obsTrie) done() obsTrie {
	t.owner = nil
	return t
}

// own returns n, or a copy of it this edit may change.
func (t *obsTrie) own(n *trieNode, leaf bool) *trieNode {
	switch {
	case n == nil && leaf:
		return &trieNode{owner: t.owner}
	case n == nil:
		return &trieNode{kids: new([trieFan]*trieNode), owner: t.owner}
	case n.owner == t.owner:
		return n
	}
	c := &trieNode{owner: t.owner}
	if n.kids != nil {
		kids := *n.kids
		c.kids = &kids
	} else {
		c.items = slices.Clone(n.items)
	}
	return c
}

// set makes obs k's observations (none: k is removed). Call it between
// edit and done.
func (t *obsTrie) set(k MemberKey, obs []health.Observation) {
	var path [trieLevels]*trieNode
	var slot [trieLevels]uint64
	h := trieHash(k)
	n := t.root
	for l := range trieLevels {
		path[l] = n
		slot[l] = h & (trieFan - 1)
		h >>= trieBits
		if n != nil {
			n = n.kids[slot[l]]
		}
	}
	leaf := t.own(n, true)
	i, found := slices.BinarySearchFunc(leaf.items, k, func(m memberObs, k MemberKey) int { return cmpKey(m.key, k) })
	switch {
	case len(obs) == 0 && !found:
		return
	case len(obs) == 0:
		leaf.items = slices.Delete(leaf.items, i, i+1)
		t.members--
	case found:
		leaf.items[i].obs = obs
	default:
		leaf.items = slices.Insert(leaf.items, i, memberObs{key: k, obs: obs})
		t.members++
	}
	child := leaf
	if len(leaf.items) == 0 {
		child = nil
	}
	for l := trieLevels - 1; l >= 0; l-- {
		if child == nil && (path[l] == nil || onlyKid(path[l], slot[l])) {
			continue // the node would hold nothing: drop it
		}
		p := t.own(path[l], false)
		p.kids[slot[l]] = child
		child = p
	}
	t.root = child
}

// onlyKid reports whether n's only child is at slot.
func onlyKid(n *trieNode, slot uint64) bool {
	for i, c := range n.kids {
		if c != nil && uint64(i) != slot {
			return false
		}
	}
	return true
}

// walk calls f for every member, in the trie's order.
func (t obsTrie) walk(f func(*memberObs)) {
	var rec func(n *trieNode, level int)
	rec = func(n *trieNode, level int) {
		if n == nil {
			return
		}
		if level == trieLevels {
			for i := range n.items {
				f(&n.items[i])
			}
			return
		}
		for _, c := range n.kids {
			rec(c, level+1)
		}
	}
	rec(t.root, 0)
}

// sorted returns every member's observations by pool then member.
func (t obsTrie) sorted() []*memberObs {
	out := make([]*memberObs, 0, t.members)
	t.walk(func(m *memberObs) { out = append(out, m) })
	slices.SortFunc(out, func(a, b *memberObs) int { return cmpKey(a.key, b.key) })
	return out
}

// restoreObs adds one observation read from a snapshot (an edit must be
// under way).
func (t *obsTrie) restoreObs(k MemberKey, o health.Observation) bool {
	obs := t.get(k)
	i, ok := slices.BinarySearchFunc(obs, obsID{o.Kind, o.Node}, cmpObs)
	if ok {
		return false
	}
	next := make([]health.Observation, len(obs), len(obs)+1)
	copy(next, obs)
	t.set(k, slices.Insert(next, i, o))
	return true
}
