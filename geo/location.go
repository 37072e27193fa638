package geo

import (
	"math"
	"math/bits"
	"net/netip"
	"slices"
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

// Table maps CIDR prefixes to values by longest match. It is built once
// and then read concurrently without locks; a lookup allocates nothing and
// costs one pass over the prefixes of the address's family, which suits
// the tens to hundreds of entries a geo map holds.
type Table[V any] struct {
	v4, v6 []entry[V] // longest prefix first
}

type entry[V any] struct {
	p netip.Prefix
	v V
}

// Insert adds p (masked to its length) with value v; a prefix inserted
// twice keeps the last value. Insert is not safe to call concurrently with
// Lookup: build the table before sharing it.
func (t *Table[V]) Insert(p netip.Prefix, v V) {
	p = p.Masked()
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
	}
	list := &t.v6
	if p.Addr().Is4() {
		list = &t.v4
	}
	for i := range *list {
		if (*list)[i].p == p {
			(*list)[i].v = v
			return
		}
	}
	*list = append(*list, entry[V]{p, v})
	slices.SortStableFunc(*list, func(a, b entry[V]) int { return b.p.Bits() - a.p.Bits() })
}

// Len returns the number of prefixes in t.
func (t *Table[V]) Len() int { return len(t.v4) + len(t.v6) }

// Lookup returns the value of the longest prefix holding a, whether there
// is one, and span: the shortest prefix length around a within which
// every address gets this same result (the matched prefix's own length,
// lengthened past any more specific prefix that shares the client's
// leading bits without holding it). span is what an ECS answer's scope
// must be at least when it depends on this lookup.
func (t *Table[V]) Lookup(a netip.Addr) (v V, span int, ok bool) {
	a = a.Unmap()
	list := t.v6
	if a.Is4() {
		list = t.v4
	}
	for _, e := range list {
		if e.p.Contains(a) {
			if !ok {
				v, span, ok = e.v, max(span, e.p.Bits()), true
			}
			continue
		}
		// e does not hold a: every prefix around a of length up to the
		// bits they share would hold e, and so answer differently for
		// some of its addresses.
		if c := commonBits(a, e.p.Addr()); c+1 > span {
			span = c + 1
		}
	}
	return v, span, ok
}

// commonBits returns how many leading bits two addresses of the same
// family share.
func commonBits(a, b netip.Addr) int {
	if a.Is4() {
		x, y := a.As4(), b.As4()
		av := uint32(x[0])<<24 | uint32(x[1])<<16 | uint32(x[2])<<8 | uint32(x[3])
		bv := uint32(y[0])<<24 | uint32(y[1])<<16 | uint32(y[2])<<8 | uint32(y[3])
		return bits.LeadingZeros32(av ^ bv)
	}
	x, y := a.As16(), b.As16()
	for i := 0; i < 16; i += 8 {
		var av, bv uint64
		for j := 0; j < 8; j++ {
			av = av<<8 | uint64(x[i+j])
			bv = bv<<8 | uint64(y[i+j])
		}
		if av != bv {
			return i*8 + bits.LeadingZeros64(av^bv)
		}
	}
	return 128
}
