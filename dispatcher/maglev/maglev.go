package maglev

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// DefaultSize is the table size used when none is configured: a prime large
// enough that 100 backends each get about 655 slots, so a change of one of
// them moves well under 1% of flows beyond its own share.
const DefaultSize = 65537

// MaxSize bounds the table so that a typo cannot ask for gigabytes.
const MaxSize = 1<<24 - 3 // 16777213, prime

// MaxWeight bounds a backend's weight; larger ratios than this between two
// backends cannot be represented in a table of sensible size anyway.
const MaxWeight = 1 << 16

var (
	// ErrSize is returned for a size that is not a prime in [2, MaxSize].
	ErrSize = errors.New("maglev: table size must be a prime between 2 and 16777213")
	// ErrDuplicate is returned when two backends share a name.
	ErrDuplicate = errors.New("maglev: duplicate backend name")
	// ErrWeight is returned for a weight above MaxWeight.
	ErrWeight = errors.New("maglev: weight too large")
	// ErrName is returned for an empty backend name.
	ErrName = errors.New("maglev: empty backend name")
)

// Backend is one entry of a table. Name is the stable identity that fixes
// its place in every table (a server's address, say), never its position in
// a list. Weight 0 means drained or down: the backend gets no slot.
type Backend struct {
	Name   string
	Weight uint32
}

// Table is an immutable lookup table.
type Table struct {
	// Backends are the backends of positive weight, sorted by name.
	Backends []Backend
	// Slots[i] is the index in Backends of slot i's owner, or -1 when the
	// table is empty (no backend has a positive weight).
	Slots []int32
}

// Len returns the number of slots.
func (t *Table) Len() int { return len(t.Slots) }

// Lookup returns the backend that owns hash's slot, and false when the
// table has no backend.
func (t *Table) Lookup(hash uint64) (string, bool) {
	if len(t.Slots) == 0 {
		return "", false
	}
	i := t.Slots[hash%uint64(len(t.Slots))]
	if i < 0 {
		return "", false
	}
	return t.Backends[i].Name, true
}

// Counts returns how many slots each backend of t.Backends holds.
func (t *Table) Counts() []int {
	n := make([]int, len(t.Backends))
	for _, s := range t.Slots {
		if s >= 0 {
			n[s]++
		}
	}
	return n
}

// IsPrime reports whether n is prime. Sizes are at most MaxSize, so trial
// division is quick enough.
func IsPrime(n int) bool {
	if n < 2 {
		return false
	}
	if n%2 == 0 {
		return n == 2
	}
	for d := 3; d*d <= n; d += 2 {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// entry is a backend's state while the table fills.
type entry struct {
	offset, skip uint64
	next         uint64 // index into the backend's permutation
	weight       uint64
	target       uint64 // weighted turn-taking, see Build
}

// Build returns the table of the given size for backends. The result depends
// only on the set of backends and on size, not on the order of backends.
//
// Each backend fills slots in the order of its own permutation of the table,
// (offset + j*skip) mod size, with offset and skip derived from a hash of its
// name, as in the paper. Weights follow Envoy's scheme: backends take turns,
// and on round r a backend of weight w takes a turn only if r*w has caught up
// with the turns it has already had times the largest weight, so over the
// fill each backend's share is its weight over the total.
func Build(backends []Backend, size int) (*Table, error) {
	if size > MaxSize || !IsPrime(size) {
		return nil, fmt.Errorf("%w: got %d", ErrSize, size)
	}
	live := make([]Backend, 0, len(backends))
	for _, b := range backends {
		if b.Name == "" {
			return nil, ErrName
		}
		if b.Weight > MaxWeight {
			return nil, fmt.Errorf("%w: backend %q has weight %d, at most %d", ErrWeight, b.Name, b.Weight, MaxWeight)
		}
		if b.Weight > 0 {
			live = append(live, b)
		}
	}
	// Names of weight 0 are checked too, so that whether a set is accepted
	// does not depend on which of two copies happens to be drained.
	if err := checkDuplicates(backends); err != nil {
		return nil, err
	}
	slices.SortFunc(live, func(a, b Backend) int { return strings.Compare(a.Name, b.Name) })

	t := &Table{Backends: live, Slots: make([]int32, size)}
	for i := range t.Slots {
		t.Slots[i] = -1
	}
	if len(live) == 0 {
		return t, nil
	}

	m := uint64(size)
	es := make([]entry, len(live))
	var maxW uint64
	for i, b := range live {
		h1, h2 := hashes(b.Name)
		es[i] = entry{offset: h1 % m, skip: 1, weight: uint64(b.Weight)}
		if m > 1 {
			es[i].skip = h2%(m-1) + 1
		}
		maxW = max(maxW, uint64(b.Weight))
	}
	filled := uint64(0)
	for round := uint64(1); filled < m; round++ {
		for i := range es {
			if filled == m {
				break
			}
			e := &es[i]
			if round*e.weight < e.target {
				continue
			}
			e.target += maxW
			c := (e.offset + e.next*e.skip) % m
			for t.Slots[c] >= 0 {
				e.next++
				c = (e.offset + e.next*e.skip) % m
			}
			t.Slots[c] = int32(i)
			e.next++
			filled++
		}
	}
	return t, nil
}

func checkDuplicates(backends []Backend) error {
	seen := make(map[string]struct{}, len(backends))
	for _, b := range backends {
		if _, ok := seen[b.Name]; ok {
			return fmt.Errorf("%w: %q", ErrDuplicate, b.Name)
		}
		seen[b.Name] = struct{}{}
	}
	return nil
}

// hashes returns two independent 64-bit hashes of name: FNV-1a with two
// different bases, each passed through the SplitMix64 finaliser so that
// names differing in one byte land far apart. They must never change: every
// dispatcher of a site has to compute the same table.
func hashes(name string) (uint64, uint64) {
	const prime = 1099511628211
	h1 := uint64(14695981039346656037)
	h2 := uint64(0x9e3779b97f4a7c15)
	for i := 0; i < len(name); i++ {
		h1 ^= uint64(name[i])
		h1 *= prime
		h2 ^= uint64(name[i])
		h2 *= prime
	}
	return mix(h1), mix(h2 ^ 0x5bd1e9955bd1e995)
}

func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
