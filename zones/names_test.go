package zones

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestCanonicalOrder sorts the example of RFC 4034 section 6.1, plus names
// with the bytes 0x00 and 0x01 that the sort key escapes.
func TestCanonicalOrder(t *testing.T) {
	want := []string{
		"example.",
		"a.example.",
		"yljkjljk.a.example.",
		"Z.a.example.",
		"zABC.a.EXAMPLE.",
		"z.example.",
		`\000.z.example.`,
		`\000\000.z.example.`,
		`\000\001.z.example.`,
		`\001.z.example.`,
		`*.z.example.`,
		`\200.z.example.`,
	}
	for i, n := range want {
		c, ok := canonical(n)
		if !ok {
			t.Fatalf("canonical(%q) failed", n)
		}
		want[i] = c
	}
	for range 20 {
		got := slices.Clone(want)
		rand.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
		slices.SortFunc(got, compareNames)
		if !slices.Equal(got, want) {
			t.Fatalf("sorted:\n%q\nwant:\n%q", got, want)
		}
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		in, canonical string
		fqdn          bool
	}{
		{"Example.TEST", "example.test.", false},
		{`\065bc.example.`, "abc.example.", true},
		{`a\.b.example.`, `a\.b.example.`, true},
		{`a\.`, `a\..`, false},
		{`a\\.`, `a\\.`, true},
		{".", ".", true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got, _ := canonical(tc.in); got != tc.canonical {
				t.Errorf("canonical = %q, want %q", got, tc.canonical)
			}
			if got := isFqdn(tc.in); got != tc.fqdn {
				t.Errorf("isFqdn = %v, want %v", got, tc.fqdn)
			}
		})
	}
	for _, tc := range []struct {
		child, parent string
		want          bool
	}{
		{"www.example.test.", "example.test.", true},
		{"example.test.", "example.test.", true},
		{"wwwexample.test.", "example.test.", false},
		{`www\.example.test.`, "example.test.", false},
		{"www.example.test.", ".", true},
		{"test.", "example.test.", false},
	} {
		if got := isSubdomain(tc.child, tc.parent); got != tc.want {
			t.Errorf("isSubdomain(%q, %q) = %v", tc.child, tc.parent, got)
		}
	}
}
