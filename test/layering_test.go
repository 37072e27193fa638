package test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	modulePath  = "github.com/ternlb/tern"
	designPath  = "docs/DESIGN.md"
	tableStart  = "<!-- imports table:"
	tableEnd    = "<!-- end of imports table -->"
	importsHead = "# Imports"
	ternPrefix  = "Tern packages:"
)

// goPackage is what TestLayering needs of `go list -json`: paths are
// relative to the module ("dispatcher/ha").
type goPackage struct {
	Path    string
	Dir     string
	Imports []string // non-test files
	Tests   []string // _test.go files of the package and its _test package
	Deps    []string // go list -deps: every package the non-test files need
}

// TestLayering keeps docs/DESIGN.md's imports table and every doc.go's
// "# Imports" section true of the code: see layering below.
func TestLayering(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(root, designPath))
	if err != nil {
		t.Fatal(err)
	}
	table, err := parseTable(md)
	if err != nil {
		t.Fatalf("%s: %v", designPath, err)
	}
	pkgs, err := listPackages(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range layering(table, pkgs) {
		t.Error(p)
	}
	for _, pkg := range pkgs {
		doc := filepath.Join(pkg.Dir, "doc.go")
		if _, err := os.Stat(doc); err != nil {
			continue
		}
		rel, _ := filepath.Rel(root, doc)
		stated, err := docImports(doc)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		if !slices.Equal(stated, pkg.Imports) {
			t.Errorf("%s: its %q section says %q, but %s imports %s: write\n\t// %s %s.",
				rel, importsHead, ternPrefix+" "+listOf(stated), pkg.Path, listOf(pkg.Imports), ternPrefix, listOf(pkg.Imports))
		}
	}
}

// TestLayeringFails shows that layering catches what it is for, on a
// table and packages made up here.
func TestLayeringFails(t *testing.T) {
	table := []row{{"node", []string{"selector"}, 10}, {"selector", []string{"config"}, 11}, {"config", nil, 12}}
	good := []goPackage{
		{Path: "node", Imports: []string{"selector"}, Deps: []string{"config", "selector"}},
		{Path: "selector", Imports: []string{"config"}, Deps: []string{"config"}},
		{Path: "config"},
	}
	if p := layering(table, good); len(p) > 0 {
		t.Fatalf("a true table: %q", p)
	}
	cases := []struct {
		name string
		edit func(pkgs []goPackage, table []row) ([]goPackage, []row)
		want string
	}{
		{"upward import", func(pkgs []goPackage, table []row) ([]goPackage, []row) {
			pkgs[1].Imports = []string{"config", "node"}
			pkgs[1].Deps = []string{"config", "node", "selector"}
			table[1].imports = []string{"config", "node"}
			return pkgs, table
		}, `row 11, selector, lists node, which is above it (row 10)`},
		{"import not in the table", func(pkgs []goPackage, table []row) ([]goPackage, []row) {
			pkgs[0].Imports = []string{"config", "selector"}
			return pkgs, table
		}, "write\n\t| node | config, selector |"},
		{"stale row", func(pkgs []goPackage, table []row) ([]goPackage, []row) {
			pkgs[1].Imports = nil
			return pkgs, table
		}, "write\n\t| selector | none |"},
		{"package without a row", func(pkgs []goPackage, table []row) ([]goPackage, []row) {
			return append(pkgs, goPackage{Path: "geo"}), table
		}, "package geo has no row"},
		{"row without a package", func(pkgs []goPackage, table []row) ([]goPackage, []row) {
			return pkgs[:2], table
		}, "row 12, config, names no package"},
		{"upward test import", func(pkgs []goPackage, table []row) ([]goPackage, []row) {
			pkgs[2].Tests = []string{"node"}
			return pkgs, table
		}, "config's test files import node, which is above config"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pkgs := make([]goPackage, len(good))
			copy(pkgs, good)
			tbl := slices.Clone(table)
			pkgs, tbl = tc.edit(pkgs, tbl)
			got := strings.Join(layering(tbl, pkgs), "\n")
			if !strings.Contains(got, tc.want) {
				t.Fatalf("problems:\n%s\nwant one containing %q", got, tc.want)
			}
		})
	}
}

// row is one row of DESIGN.md's imports table; line is its line in the file.
type row struct {
	pkg     string
	imports []string
	line    int
}

// layering checks pkgs against table: every package has a row, every row
// a package; a row lists exactly its package's imports; every import of a
// package, and of its test files, is a row below its own (so imports point
// down); and go list -deps of a package holds nothing but what its rows
// reach.
func layering(table []row, pkgs []goPackage) []string {
	var problems []string
	where := make(map[string]int, len(table)) // package -> index in table
	for i, r := range table {
		where[r.pkg] = i
	}
	have := make(map[string]bool, len(pkgs))
	for _, pkg := range pkgs {
		have[pkg.Path] = true
	}
	for _, r := range table {
		if !have[r.pkg] {
			problems = append(problems, fmt.Sprintf("%s:%d: row %d, %s, names no package of the module: remove the row (or fix its name)", designPath, r.line, r.line, r.pkg))
		}
		for _, imp := range r.imports {
			j, ok := where[imp]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("%s:%d: row %d, %s, lists %s, which has no row", designPath, r.line, r.line, r.pkg, imp))
			case j <= where[r.pkg]:
				problems = append(problems, fmt.Sprintf("%s:%d: row %d, %s, lists %s, which is above it (row %d): imports point down the table; "+
					"move %s's row below %s's if that is the layering you mean, else remove the import", designPath, r.line, r.line, r.pkg, imp, table[j].line, imp, r.pkg))
			}
		}
	}
	for _, pkg := range pkgs {
		i, ok := where[pkg.Path]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: package %s has no row in the imports table: add\n\t| %s | %s |\nbelow every package that imports it and above every one it imports",
				designPath, pkg.Path, pkg.Path, listOf(pkg.Imports)))
			continue
		}
		r := table[i]
		if !slices.Equal(r.imports, pkg.Imports) {
			problems = append(problems, fmt.Sprintf("%s:%d: row %s says it imports %s, but its non-test files import %s: write\n\t| %s | %s |",
				designPath, r.line, pkg.Path, listOf(r.imports), listOf(pkg.Imports), pkg.Path, listOf(pkg.Imports)))
		}
		for _, imp := range pkg.Tests {
			if j, ok := where[imp]; ok && j <= i {
				problems = append(problems, fmt.Sprintf("%s:%d: %s's test files import %s, which is above %s in the table (row %d): a test may import only packages below its own; move the test or the helper it needs down",
					designPath, r.line, pkg.Path, imp, pkg.Path, table[j].line))
			}
		}
		reach := reachable(table, where, pkg.Path)
		for _, dep := range pkg.Deps {
			if dep != pkg.Path && !reach[dep] {
				problems = append(problems, fmt.Sprintf("%s:%d: go list -deps %s has %s, which %s's rows do not reach", designPath, r.line, pkg.Path, dep, pkg.Path))
			}
		}
	}
	return problems
}

// reachable is the set of packages the table lets pkg depend on.
func reachable(table []row, where map[string]int, pkg string) map[string]bool {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(p string) {
		i, ok := where[p]
		if !ok {
			return
		}
		for _, imp := range table[i].imports {
			if !seen[imp] {
				seen[imp] = true
				walk(imp)
			}
		}
	}
	walk(pkg)
	return seen
}

// parseTable reads the rows between the imports table's markers:
// "| package | a, b |", "none" for no import.
func parseTable(md []byte) ([]row, error) {
	var rows []row
	in, ended := false, false
	sc := bufio.NewScanner(bytes.NewReader(md))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, tableStart):
			in = true
			continue
		case line == tableEnd:
			in, ended = false, true
		}
		if !in || !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 2 {
			return nil, fmt.Errorf("line %d: want | package | imports |, got %q", n, line)
		}
		pkg := strings.TrimSpace(cells[0])
		if pkg == "package" || strings.Trim(pkg, "-") == "" {
			continue // the header and its rule
		}
		imps, err := parseList(cells[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", n, err)
		}
		rows = append(rows, row{pkg: pkg, imports: imps, line: n})
	}
	if !ended || len(rows) == 0 {
		return nil, fmt.Errorf("no imports table (rows between %q and %q)", tableStart+" ... -->", tableEnd)
	}
	return rows, sc.Err()
}

// parseList reads "a, b, c" or "none" into a sorted list.
func parseList(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "none" {
		return nil, nil
	}
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		f = strings.Trim(strings.TrimSpace(f), "`")
		if f == "" || strings.ContainsAny(f, " \t") {
			return nil, fmt.Errorf("%q: want package paths separated by commas, or none", s)
		}
		out = append(out, f)
	}
	if !slices.IsSorted(out) {
		return nil, fmt.Errorf("%q: list the packages in alphabetical order: %s", s, listOf(slices.Sorted(slices.Values(out))))
	}
	return out, nil
}

func listOf(pkgs []string) string {
	if len(pkgs) == 0 {
		return "none"
	}
	return strings.Join(pkgs, ", ")
}

// docImports reads the "Tern packages: a, b." sentence that opens the
// "# Imports" section of a doc.go's package comment.
func docImports(file string) ([]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		return nil, err
	}
	if f.Doc == nil {
		return nil, errors.New("no package comment")
	}
	text := f.Doc.Text()
	_, section, ok := strings.Cut(text, "\n"+importsHead+"\n")
	if !ok {
		return nil, fmt.Errorf("the package comment has no %q section: end it with\n\t// %s\n\t//\n\t// %s a, b (or none).", importsHead, importsHead, ternPrefix)
	}
	section = strings.TrimSpace(section)
	rest, ok := strings.CutPrefix(section, ternPrefix)
	if !ok {
		return nil, fmt.Errorf("its %q section does not start with %q", importsHead, ternPrefix)
	}
	list, _, ok := strings.Cut(dropParens(rest), ".")
	if !ok {
		return nil, fmt.Errorf("%q is not ended by a full stop", ternPrefix)
	}
	// Words after a name ("none outside its test files") are kept out.
	var names []string
	for f := range strings.SplitSeq(list, ",") {
		f = strings.TrimSpace(strings.ReplaceAll(f, "\n", " "))
		if i := strings.IndexAny(f, " ("); i >= 0 {
			f = f[:i]
		}
		names = append(names, f)
	}
	return parseList(strings.Join(names, ", "))
}

// dropParens removes the parenthesized asides ("config (for Bundle
// helpers)") of s.
func dropParens(s string) string {
	var b strings.Builder
	depth := 0
	for _, r := range s {
		switch {
		case r == '(':
			depth++
		case r == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// listPackages runs go list -deps -json over the module's packages and
// keeps the Tern imports of each.
func listPackages(root string) ([]goPackage, error) {
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %v: %s", err, stderr.Bytes())
	}
	own := func(paths ...[]string) []string {
		var o []string
		for _, ps := range paths {
			for _, p := range ps {
				if rel, ok := strings.CutPrefix(p, modulePath+"/"); ok && !slices.Contains(o, rel) {
					o = append(o, rel)
				}
			}
		}
		slices.Sort(o)
		return o
	}
	var pkgs []goPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath, Dir                    string
			Imports, TestImports, XTestImports []string
			Deps                               []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		path := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, modulePath), "/")
		tests := slices.DeleteFunc(own(p.TestImports, p.XTestImports), func(s string) bool { return s == path })
		pkgs = append(pkgs, goPackage{Path: path, Dir: p.Dir, Imports: own(p.Imports), Tests: tests, Deps: own(p.Deps)})
	}
	return pkgs, nil
}
