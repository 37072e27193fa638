package selector

import (
	"fmt"
	"slices"
	"testing"
)

// A Table holds its pools in order; an edit's new version holds the
// pools set and shares every chunk it did not write to with the old
// one, which stays as it was; Changed yields exactly the indexes that
// differ.
func TestTable(t *testing.T) {
	for _, n := range []int{0, 1, tableChunk - 1, tableChunk, tableChunk + 1, 1000} {
		t.Run(fmt.Sprintf("%d pools", n), func(t *testing.T) {
			pools := make([]*Pool, n)
			for i := range pools {
				pools[i] = &Pool{Name: fmt.Sprintf("p%d", i)}
			}
			old := NewTable(pools)
			if old.Len() != n || !slices.Equal(tablePools(old), pools) {
				t.Fatalf("NewTable holds %d pools %v", old.Len(), tablePools(old))
			}
			var set []int
			for _, i := range []int{0, n / 2, n - 1} {
				if i >= 0 && i < n && !slices.Contains(set, i) {
					set = append(set, i)
				}
			}
			slices.Sort(set)
			e := old.Edit()
			for _, i := range set {
				e.Set(i, &Pool{Name: "new"})
			}
			if n > 0 && e.At(set[0]).Name != "new" {
				t.Fatal("the edit does not read what it set")
			}
			next := e.Table()
			if !slices.Equal(tablePools(old), pools) {
				t.Fatal("the edit changed the old table")
			}
			for i, p := range next.All() {
				if want := slices.Contains(set, i); (p.Name == "new") != want {
					t.Fatalf("pool %d is %s after the edit", i, p.Name)
				}
			}
			shared := 0
			for c := range next.spine {
				if next.spine[c] == old.spine[c] {
					shared++
				}
			}
			written := map[int]bool{}
			for _, i := range set {
				written[i>>tableShift] = true
			}
			if shared != len(old.spine)-len(written) {
				t.Fatalf("%d of %d chunks shared after writing to %d", shared, len(old.spine), len(written))
			}
			if got := slices.Collect(old.Changed(next)); !slices.Equal(got, set) {
				t.Fatalf("Changed yields %v, want %v", got, set)
			}
			if got := slices.Collect(next.Changed(next)); len(got) != 0 {
				t.Fatalf("a table differs from itself at %v", got)
			}
		})
	}
}

// Tables of different lengths differ at every index past the shorter's
// end; At and Set out of range panic, as a slice index would.
func TestTableBounds(t *testing.T) {
	mk := func(n int) Table {
		pools := make([]*Pool, n)
		for i := range pools {
			pools[i] = &Pool{}
		}
		return NewTable(pools)
	}
	short, long := mk(3), mk(tableChunk+2)
	got := slices.Collect(short.Changed(long))
	if len(got) != long.Len() {
		t.Fatalf("distinct tables of 3 and %d pools differ at %d indexes", long.Len(), len(got))
	}
	if got := slices.Collect(long.Changed(Table{})); len(got) != long.Len() || got[len(got)-1] != long.Len()-1 {
		t.Fatalf("against the empty table: %v", got)
	}
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"At(-1)", func() { short.At(-1) }},
		{"At(Len)", func() { short.At(3) }},
		{"zero Table", func() { Table{}.At(0) }},
		{"Set(Len)", func() { short.Edit().Set(3, nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			tc.f()
		})
	}
}
