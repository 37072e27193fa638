package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// maxDiffCells bounds the LCS table of one file's changed middle; beyond
// it the middle is shown as removed then added whole.
const maxDiffCells = 4 << 20

// diffContext is how many unchanged lines a hunk shows around a change.
const diffContext = 3

// bundleDiff is how two bundles (path -> content) differ: From, the
// older side (a kept version), and To, what it becomes.
type bundleDiff struct {
	From  string     `json:"from"`
	To    string     `json:"to"`
	Files []fileDiff `json:"files"` // the files that differ, by path
}

// fileDiff is one file's change: added, removed or modified, with its
// unified diff (--- and +++ lines included).
type fileDiff struct {
	Path   string `json:"path"`
	Change string `json:"change"`
	Diff   string `json:"diff"`
}

// diffBundles compares two bundles file by file.
func diffBundles(fromLabel string, from map[string]string, toLabel string, to map[string]string) bundleDiff {
	paths := make([]string, 0, len(from)+len(to))
	for p := range from {
		paths = append(paths, p)
	}
	for p := range to {
		if _, ok := from[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	d := bundleDiff{From: fromLabel, To: toLabel, Files: []fileDiff{}}
	for _, p := range paths {
		a, inA := from[p]
		b, inB := to[p]
		if inA && inB && a == b {
			continue
		}
		an, bn, change := fromLabel+"/"+p, toLabel+"/"+p, "modified"
		if !inA {
			an, change = "/dev/null", "added"
		}
		if !inB {
			bn, change = "/dev/null", "removed"
		}
		d.Files = append(d.Files, fileDiff{Path: p, Change: change,
			Diff: fmt.Sprintf("--- %s\n+++ %s\n", an, bn) + unifiedDiff(splitLines(a), splitLines(b))})
	}
	return d
}

// write writes the unified diff of every file that differs and reports
// whether any does.
func (d bundleDiff) write(w io.Writer) bool {
	for _, f := range d.Files {
		io.WriteString(w, f.Diff)
	}
	return len(d.Files) > 0
}

func splitLines(s string) []string {
	ls := strings.SplitAfter(s, "\n")
	if ls[len(ls)-1] == "" {
		ls = ls[:len(ls)-1]
	}
	return ls
}

// op is one line of an edit script: ' ' kept, '-' removed, '+' added.
type op struct {
	kind byte
	line string
}

// unifiedDiff returns the hunks (with @@ headers) turning a into b, from a
// longest common subsequence of their lines.
func unifiedDiff(a, b []string) string {
	ops := editScript(a, b)
	var sb strings.Builder
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		// A hunk: from diffContext lines before this change to
		// diffContext lines after the last change closer than
		// 2*diffContext kept lines to the next.
		start := max(0, i-diffContext)
		end := i
		for j := i; j < len(ops); j++ {
			if ops[j].kind != ' ' {
				end = j + 1
				continue
			}
			if j-end >= 2*diffContext {
				break
			}
		}
		end = min(len(ops), end+diffContext)
		aLine, bLine := 1, 1
		for _, o := range ops[:start] {
			if o.kind != '+' {
				aLine++
			}
			if o.kind != '-' {
				bLine++
			}
		}
		var aN, bN int
		for _, o := range ops[start:end] {
			if o.kind != '+' {
				aN++
			}
			if o.kind != '-' {
				bN++
			}
		}
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n", hunkRange(aLine, aN), hunkRange(bLine, bN))
		for _, o := range ops[start:end] {
			sb.WriteByte(o.kind)
			sb.WriteString(o.line)
			if !strings.HasSuffix(o.line, "\n") {
				sb.WriteString("\n\\ No newline at end of file\n")
			}
		}
		i = end
	}
	return sb.String()
}

func hunkRange(start, n int) string {
	if n == 0 {
		start-- // the line before an empty range, as diff -u writes it
	}
	if n == 1 {
		return fmt.Sprint(start)
	}
	return fmt.Sprintf("%d,%d", start, n)
}

// editScript returns a shortest edit script from a to b: common prefix and
// suffix kept, the middle by a longest common subsequence.
func editScript(a, b []string) []op {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var ops []op
	for _, l := range a[:pre] {
		ops = append(ops, op{' ', l})
	}
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]
	if len(ma)*len(mb) > maxDiffCells {
		for _, l := range ma {
			ops = append(ops, op{'-', l})
		}
		for _, l := range mb {
			ops = append(ops, op{'+', l})
		}
	} else {
		ops = append(ops, lcsScript(ma, mb)...)
	}
	for _, l := range a[len(a)-suf:] {
		ops = append(ops, op{' ', l})
	}
	return ops
}

func lcsScript(a, b []string) []op {
	// l[i][j]: length of the LCS of a[i:] and b[j:].
	w := len(b) + 1
	l := make([]int32, (len(a)+1)*w)
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				l[i*w+j] = l[(i+1)*w+j+1] + 1
			} else {
				l[i*w+j] = max(l[(i+1)*w+j], l[i*w+j+1])
			}
		}
	}
	var ops []op
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			ops = append(ops, op{' ', a[i]})
			i, j = i+1, j+1
		case l[(i+1)*w+j] >= l[i*w+j+1]:
			ops = append(ops, op{'-', a[i]})
			i++
		default:
			ops = append(ops, op{'+', b[j]})
			j++
		}
	}
	for ; i < len(a); i++ {
		ops = append(ops, op{'-', a[i]})
	}
	for ; j < len(b); j++ {
		ops = append(ops, op{'+', b[j]})
	}
	return ops
}
