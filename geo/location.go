package geo

import (
	"math"
	"net/netip"
)

// Location is what is known of where an address is.
type Location struct {
	// Continent is the two-letter continent code (AF, AN, AS, EU, NA, OC,
	// SA); Country the ISO 3166-1 alpha-2 code. Empty when unknown.
	Continent string
	Country   string
	// Lat and Lon are degrees; valid when HasCoords.
	Lat, Lon  float64
	HasCoords bool
	// Found reports whether the database holds a record for the address.
	Found bool
	// Bits is the prefix length (in the address's own family) of the
	// database network the address fell in, found or not: every address
	// of that network gets this same Location. 0 without a database.
	Bits int
}

// earthRadiusKm is the mean Earth radius (IUGG).
const earthRadiusKm = 6371.0088

// DistanceKm returns the great-circle distance between two points given in
// degrees, by the haversine formula.
func DistanceKm(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKm * math.Asin(math.Sqrt(min(a, 1)))
}

// Vec is a point on the unit sphere. Ordering points by the dot product of
// their Vecs with a client's orders them by great-circle distance (the
// angle is the arccosine of the dot product, which falls as it grows), at
// the price of three multiplications per point and no trigonometry.
type Vec struct{ X, Y, Z float64 }

// VecOf returns the unit vector of a point given in degrees.
func VecOf(lat, lon float64) Vec {
	const rad = math.Pi / 180
	sl, cl := math.Sincos(lat * rad)
	so, co := math.Sincos(lon * rad)
	return Vec{cl * co, cl * so, sl}
}

// Dot returns the dot product of two unit vectors: the cosine of the angle
// between them.
func (v Vec) Dot(w Vec) float64 { return v.X*w.X + v.Y*w.Y + v.Z*w.Z }

// Table maps CIDR prefixes to values by longest match: a binary trie per
// family, built once and then read concurrently without locks. A lookup
// allocates nothing and takes at most 32 or 128 steps whatever the
// table's size (fewer: the walk stops where the prefixes below end).
type Table[V any] struct {
	t4, t6 trie
	vals   []V
}

// trie is a binary trie over address bits; node 0 is the root, and a
// child index of 0 means none.
type trie struct {
	nodes []tnode
}

type tnode struct {
	child [2]int32
	val   int32 // index into vals, -1 when no prefix ends here
}

// Insert adds p (masked to its length) with value v; a prefix inserted
// twice keeps the last value. Insert is not safe to call concurrently with
// Lookup: build the table before sharing it.
func (t *Table[V]) Insert(p netip.Prefix, v V) {
	p = p.Masked()
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
	}
	tr := &t.t6
	if p.Addr().Is4() {
		tr = &t.t4
	}
	if len(tr.nodes) == 0 {
		tr.nodes = append(tr.nodes, tnode{val: -1})
	}
	hi, lo := addrBits(p.Addr())
	n := 0
	for d := 0; d < p.Bits(); d++ {
		b := bitAt(hi, lo, d)
		if tr.nodes[n].child[b] == 0 {
			tr.nodes = append(tr.nodes, tnode{val: -1})
			tr.nodes[n].child[b] = int32(len(tr.nodes) - 1)
		}
		n = int(tr.nodes[n].child[b])
	}
	if vi := tr.nodes[n].val; vi >= 0 {
		t.vals[vi] = v
		return
	}
	t.vals = append(t.vals, v)
	tr.nodes[n].val = int32(len(t.vals) - 1)
}

// Len returns the number of prefixes in t.
func (t *Table[V]) Len() int { return len(t.vals) }

// Lookup returns the value of the longest prefix holding a, whether there
// is one, and span: the shortest prefix length around a within which
// every address gets this same result (the matched prefix's own length,
// lengthened past any more specific prefix that shares the client's
// leading bits without holding it). span is what an ECS answer's scope
// must be at least when it depends on this lookup.
func (t *Table[V]) Lookup(a netip.Addr) (v V, span int, ok bool) {
	a = a.Unmap()
	tr := &t.t6
	if a.Is4() {
		tr = &t.t4
	}
	vi, span := tr.lookup(a)
	if vi < 0 {
		return v, span, false
	}
	return t.vals[vi], span, true
}

// lookup walks a's bits down the trie: the last prefix passed is the
// longest match, and where the walk must stop (no prefix below, or none
// on a's side) is where a's answer stops depending on more bits.
func (tr *trie) lookup(a netip.Addr) (vi, span int) {
	vi = -1
	if len(tr.nodes) == 0 {
		return vi, 0
	}
	hi, lo := addrBits(a)
	n, d := 0, 0
	for {
		nd := &tr.nodes[n]
		if nd.val >= 0 {
			vi = int(nd.val)
		}
		if nd.child[0] == 0 && nd.child[1] == 0 {
			return vi, d
		}
		c := nd.child[bitAt(hi, lo, d)]
		if c == 0 {
			return vi, d + 1
		}
		n, d = int(c), d+1
	}
}

// addrBits returns a's bits left-aligned in 128: an IPv4 address fills
// the top 32.
func addrBits(a netip.Addr) (hi, lo uint64) {
	if a.Is4() {
		b := a.As4()
		return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32, 0
	}
	b := a.As16()
	for i := 0; i < 8; i++ {
		hi = hi<<8 | uint64(b[i])
		lo = lo<<8 | uint64(b[8+i])
	}
	return hi, lo
}

func bitAt(hi, lo uint64, i int) int {
	if i < 64 {
		return int(hi>>(63-i)) & 1
	}
	return int(lo>>(127-i)) & 1
}
