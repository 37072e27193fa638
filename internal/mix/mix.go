// Package mix holds the bit mixer Tern's hashing shares: rendezvous
// hashing (selector's sticky stage, health's prober choice) and the
// probes' start-time spread hash strings with FNV-1a, whose low bits vary
// little between similar strings, and finish with this.
package mix

// Mix64 is SplitMix64's finalizer: a bijection that spreads every input
// bit over the output. Its constants are part of what every node computes
// alike: changing them moves sticky clients, probers and probe times.
func Mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
