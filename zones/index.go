package zones

import "hash/maphash"

// noNode marks the absence of a node (no cut, no wildcard, no parent).
const noNode = ^uint32(0)

// index finds a node by its canonical name: open addressing with linear
// probing, at most half full. A slot holds the node's number (+1; 0 is
// empty) and, above it, 32 bits of the name's hash, so that a probe
// compares names only when their hashes agree. It holds no pointers, so
// the garbage collector never scans it, and it costs 8 to 16 bytes a
// name where a map[string]uint32 costs about 30 and a string header.
type index struct {
	seed  maphash.Seed
	slots []uint64
	n     int // nodes in the index
}

func newIndex(size int) index {
	n := 16
	for n < size*2 {
		n *= 2
	}
	return index{seed: maphash.MakeSeed(), slots: make([]uint64, n)}
}

func (x *index) hash(name string) uint64 { return maphash.String(x.seed, name) }

// nodeName is the name of nodes[i], in names.
func nodeName(names string, nodes []node, i uint32) string {
	n := &nodes[i]
	return names[n.name : n.name+uint32(n.nlen)]
}

// find returns the node named name, or noNode; nodes' names are in names.
func (x *index) find(name, names string, nodes []node) uint32 {
	return x.probe(name, x.hash(name), names, nodes)
}

// probe returns the node named name, whose hash is h, or noNode.
func (x *index) probe(name string, h uint64, names string, nodes []node) uint32 {
	mask := uint64(len(x.slots) - 1)
	tag := h >> 32 << 32
	for i := h & mask; ; i = (i + 1) & mask {
		s := x.slots[i]
		if s == 0 {
			return noNode
		}
		if s&^0xFFFFFFFF == tag && nodeName(names, nodes, uint32(s)-1) == name {
			return uint32(s) - 1
		}
	}
}

// insert adds node i, whose name (of hash h) is not in the index yet.
func (x *index) insert(i uint32, h uint64, names string, nodes []node) {
	if (x.n+1)*2 > len(x.slots) {
		x.grow(names, nodes)
	}
	mask := uint64(len(x.slots) - 1)
	at := h & mask
	for x.slots[at] != 0 {
		at = (at + 1) & mask
	}
	x.slots[at] = h>>32<<32 | uint64(i+1)
	x.n++
}

func (x *index) grow(names string, nodes []node) {
	old := x.slots
	x.slots = make([]uint64, 2*len(old))
	mask := uint64(len(x.slots) - 1)
	for _, s := range old {
		if s == 0 {
			continue
		}
		i := maphash.String(x.seed, nodeName(names, nodes, uint32(s)-1)) & mask
		for x.slots[i] != 0 {
			i = (i + 1) & mask
		}
		x.slots[i] = s
	}
}

// renumber gives every node of the index its new number.
func (x *index) renumber(to []uint32) {
	for i, s := range x.slots {
		if s != 0 {
			x.slots[i] = s&^0xFFFFFFFF | uint64(to[uint32(s)-1]+1)
		}
	}
}
