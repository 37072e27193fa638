package main

import (
	"strings"
	"testing"
)

func TestUnifiedDiff(t *testing.T) {
	lines := func(n int, change map[int]string) string {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			if c, ok := change[i]; ok {
				b.WriteString(c)
				continue
			}
			b.WriteString("line " + string(rune('a'+i%26)) + "\n")
		}
		return b.String()
	}
	for _, tc := range []struct {
		name, a, b, want string
	}{
		{"same", "x\ny\n", "x\ny\n", ""},
		{"one line changed", "a\nb\nc\n", "a\nB\nc\n", "@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"},
		{"added at the end", "a\n", "a\nb\n", "@@ -1 +1,2 @@\n a\n+b\n"},
		{"removed all", "a\nb\n", "", "@@ -1,2 +0,0 @@\n-a\n-b\n"},
		{"into an empty file", "", "a\n", "@@ -0,0 +1 @@\n+a\n"},
		{"no newline at the end", "a\nb", "a\nc", "@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"},
		{"two hunks far apart", lines(20, map[int]string{2: "two\n", 18: "eighteen\n"}), lines(20, nil),
			"@@ -1,5 +1,5 @@\n line b\n-two\n+line c\n line d\n line e\n line f\n" +
				"@@ -15,6 +15,6 @@\n line p\n line q\n line r\n-eighteen\n+line s\n line t\n line u\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := unifiedDiff(splitLines(tc.a), splitLines(tc.b)); got != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestWriteBundleDiff(t *testing.T) {
	var b strings.Builder
	differ := diffBundles("version 3",
		map[string]string{"tern.yaml": "a\n", "zones/old.zone": "x\n", "same": "s\n"},
		"sent", map[string]string{"tern.yaml": "b\n", "zones/new.zone": "y\n", "same": "s\n"}).write(&b)
	want := "--- version 3/tern.yaml\n+++ sent/tern.yaml\n@@ -1 +1 @@\n-a\n+b\n" +
		"--- /dev/null\n+++ sent/zones/new.zone\n@@ -0,0 +1 @@\n+y\n" +
		"--- version 3/zones/old.zone\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"
	if !differ || b.String() != want {
		t.Fatalf("diff (differ %v):\n%s\nwant\n%s", differ, b.String(), want)
	}
	if diffBundles("a", map[string]string{"x": "1"}, "b", map[string]string{"x": "1"}).write(&b) {
		t.Fatal("equal bundles differ")
	}
}
