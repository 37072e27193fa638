package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// runErr runs tern with args and returns its output and error.
func runErr(args ...string) (string, error) {
	app := newApp()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	app.ExitErrHandler = func(*cli.Context, error) {}
	err := app.Run(append([]string{"tern"}, args...))
	return out.String(), err
}

// A file without node: is a cluster-wide part: tern check passes it (it
// is what tern apply sends) and says tern serve will not; tern serve
// refuses it rather than serve a node of defaults on [::]:53 without an
// API.
func TestServeNeedsNodeSection(t *testing.T) {
	dir := t.TempDir()
	zone := "$ORIGIN example.test.\n@ 300 IN SOA ns1 h 1 3600 600 604800 60\n@ 300 IN NS ns1\nns1 300 IN A 192.0.2.53\n"
	cluster := "pools:\n  web: {members: [{address: 192.0.2.1}]}\nzones:\n  - file: z.zone\n"
	os.WriteFile(filepath.Join(dir, "z.zone"), []byte(zone), 0o644)
	for _, tc := range []struct {
		name, yaml string
		serves     bool
	}{
		{"no node section", cluster, false},
		{"an empty node section", "node:\n" + cluster, false},
		{"a node section", "node: {name: t1, dns: [\"127.0.0.1:0\"], api: \"127.0.0.1:0\"}\n" + cluster, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, "tern.yaml")
			os.WriteFile(file, []byte(tc.yaml), 0o644)
			out, err := runErr("check", "--config", file)
			if err != nil || !strings.Contains(out, ": ok") || strings.Contains(out, "no node: section") == tc.serves {
				t.Fatalf("tern check: %v\n%s", err, out)
			}
			if tc.serves {
				return // serving is tested end to end (test/)
			}
			out, err = runErr("serve", "--config", file)
			if err == nil || !strings.Contains(err.Error(), "has no node: section") {
				t.Fatalf("tern serve: %v, want a refusal\n%s", err, out)
			}
		})
	}
}
