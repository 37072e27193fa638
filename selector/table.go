package selector

import "iter"

// A Table is an immutable array of pools, indexed like zones' POOL
// records, that a new version shares with the old one wherever they hold
// the same pools: it is a fixed two-level array, a spine of pointers to
// chunks of tableChunk pools. Replacing k pools of n copies the spine
// (n/tableChunk pointers) and the k chunks that hold them, not n
// pointers; so a health change in one pool of 10,000 costs the same as in
// one of 100 (node's BenchmarkVerdictToSnapshot), and a reader comparing
// two versions skips every chunk they share (Changed).
//
// The zero Table holds no pool. Tables are values; At is two loads.
type Table struct {
	spine []*chunk
	n     int
}

const (
	tableShift = 7
	tableChunk = 1 << tableShift // pools per chunk
	tableMask  = tableChunk - 1
)

type chunk [tableChunk]*Pool

// NewTable returns a Table holding pools, in their order.
func NewTable(pools []*Pool) Table {
	t := Table{spine: make([]*chunk, (len(pools)+tableMask)>>tableShift), n: len(pools)}
	for c := range t.spine {
		ch := new(chunk)
		copy(ch[:], pools[c<<tableShift:])
		t.spine[c] = ch
	}
	return t
}

// Len is the number of pools.
func (t Table) Len() int { return t.n }

// At returns pool i; it panics unless 0 <= i < Len, as a slice would.
func (t Table) At(i int) *Pool {
	if uint(i) >= uint(t.n) {
		panic("selector: Table.At index out of range")
	}
	return t.spine[i>>tableShift][i&tableMask]
}

// All yields every index and pool, in order.
func (t Table) All() iter.Seq2[int, *Pool] {
	return func(yield func(int, *Pool) bool) {
		for i := 0; i < t.n; i++ {
			if !yield(i, t.spine[i>>tableShift][i&tableMask]) {
				return
			}
		}
	}
}

// Changed yields the indexes at which u holds another pool than t, in
// order, skipping the chunks the two share: its cost follows what
// differs. Tables of different lengths differ at every index of the
// longer one past the shorter's end as well.
func (t Table) Changed(u Table) iter.Seq[int] {
	return func(yield func(int) bool) {
		for c := 0; c < max(len(t.spine), len(u.spine)); c++ {
			var a, b *chunk
			if c < len(t.spine) {
				a = t.spine[c]
			}
			if c < len(u.spine) {
				b = u.spine[c]
			}
			if a == b {
				continue
			}
			for k := 0; k < tableChunk; k++ {
				i := c<<tableShift | k
				if i >= max(t.n, u.n) {
					return
				}
				if i >= t.n || i >= u.n || a[k] != b[k] {
					if !yield(i) {
						return
					}
				}
			}
		}
	}
}

// Edit starts a new version of t; t itself never changes.
func (t Table) Edit() *TableEdit {
	e := &TableEdit{t: Table{spine: make([]*chunk, len(t.spine)), n: t.n}, old: t.spine}
	copy(e.t.spine, t.spine)
	return e
}

// A TableEdit makes a new Table from an old one: the first Set in a
// chunk copies that chunk, the chunks not written to stay shared.
type TableEdit struct {
	t   Table
	old []*chunk // the old table's spine: a chunk still in it is shared
}

// Len is the number of pools.
func (e *TableEdit) Len() int { return e.t.n }

// At returns pool i as the edit holds it now.
func (e *TableEdit) At(i int) *Pool { return e.t.At(i) }

// Set makes pool i p.
func (e *TableEdit) Set(i int, p *Pool) {
	if uint(i) >= uint(e.t.n) {
		panic("selector: TableEdit.Set index out of range")
	}
	c := i >> tableShift
	if e.t.spine[c] == e.old[c] { // shared yet: copy it first
		ch := *e.t.spine[c]
		e.t.spine[c] = &ch
	}
	e.t.spine[c][i&tableMask] = p
}

// Table returns the new version. The edit must not be used after.
func (e *TableEdit) Table() Table {
	t := e.t
	e.t, e.old = Table{}, nil
	return t
}
