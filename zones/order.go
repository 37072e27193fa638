package zones

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
)

// The canonical order of a zone's names (RFC 4034 section 6.1) comes from
// sorting their sort keys. The builder sorts them in runs as it makes
// names, while the parser (the slower half of a load) reads on, and
// finish only merges the runs.

// sortRun is how many names the builder sorts at a time.
const sortRun = 1 << 15

// keyEnt is one name's sort key, without the apex's part that every key
// of the zone starts with.
type keyEnt struct {
	prefix   uint64 // the key's first 8 bytes, most names' whole key
	off, len uint32 // the key in ordering.keys
	node     uint32
}

// ordering collects the sort keys of a zone's names in sorted runs.
type ordering struct {
	apexKey int // length of the apex's key
	keys    []byte
	ents    []keyEnt
	runs    []int // ends of the sorted runs of ents
}

func (o *ordering) cmp(x, y keyEnt) int {
	if c := cmp.Compare(x.prefix, y.prefix); c != 0 {
		return c
	}
	return bytes.Compare(o.keys[x.off:x.off+x.len], o.keys[y.off:y.off+y.len])
}

// add notes the key of node, named name.
func (o *ordering) add(node uint32, name string) {
	start := len(o.keys)
	o.keys = grow(o.keys, 256)
	o.keys = appendSortKey(o.keys, name)
	n := copy(o.keys[start:], o.keys[start+o.apexKey:])
	o.keys = o.keys[:start+n]
	var p [8]byte
	copy(p[:], o.keys[start:])
	o.ents = grow(o.ents, 1)
	o.ents = append(o.ents, keyEnt{prefix: binary.BigEndian.Uint64(p[:]), off: uint32(start), len: uint32(n), node: node})
	if len(o.ents)-o.sorted() == sortRun {
		o.sortRun()
	}
}

func (o *ordering) sorted() int {
	if len(o.runs) == 0 {
		return 0
	}
	return o.runs[len(o.runs)-1]
}

func (o *ordering) sortRun() {
	if start := o.sorted(); start < len(o.ents) {
		slices.SortFunc(o.ents[start:], o.cmp)
		o.runs = append(o.runs, len(o.ents))
	}
}

// order returns the nodes in canonical order: order[rank] is a node and
// rank[node] its place.
func (o *ordering) order() (order, rank []uint32) {
	o.sortRun()
	ents := o.merge()
	order = make([]uint32, len(ents))
	rank = make([]uint32, len(ents))
	for r, e := range ents {
		order[r], rank[e.node] = e.node, uint32(r)
	}
	return order, rank
}

// merge merges the sorted runs, two by two, and returns them as one.
func (o *ordering) merge() []keyEnt {
	src, runs := o.ents, o.runs
	if len(runs) <= 1 {
		return src
	}
	dst := make([]keyEnt, len(src))
	for len(runs) > 1 {
		var next []int
		start := 0
		for i := 0; i < len(runs); i += 2 {
			if i+1 == len(runs) {
				copy(dst[start:runs[i]], src[start:runs[i]])
				next = append(next, runs[i])
				break
			}
			o.merge2(dst[start:runs[i+1]], src[start:runs[i]], src[runs[i]:runs[i+1]])
			next = append(next, runs[i+1])
			start = runs[i+1]
		}
		src, dst, runs = dst, src, next
	}
	return src
}

// merge2 merges the sorted a and b into dst, as long as both.
func (o *ordering) merge2(dst, a, b []keyEnt) {
	i, j, k := 0, 0, 0
	for i < len(a) && j < len(b) {
		if o.cmp(b[j], a[i]) < 0 {
			dst[k] = b[j]
			j++
		} else {
			dst[k] = a[i]
			i++
		}
		k++
	}
	k += copy(dst[k:], a[i:])
	copy(dst[k:], b[j:])
}
