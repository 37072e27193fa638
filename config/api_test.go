package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// node.api_token_file is read at load and trimmed; an unreadable or empty
// file, both keys at once, or a token that cannot travel in a header is a
// problem at its line.
func TestAPIToken(t *testing.T) {
	withNode := func(lines string) string {
		return strings.Replace(base, "  dns: [\"127.0.0.1:5354\"]\n", "  dns: [\"127.0.0.1:5354\"]\n"+lines, 1)
	}
	for _, tc := range []struct {
		name    string
		yaml    string
		file    string // content of token.txt; "-" for none
		want    string // token after load
		problem string // substring of the problem, "" for none
	}{
		{"inline", withNode("  api_token: s3cret\n  api_read_token: true\n"), "-", "s3cret", ""},
		{"from a file, trimmed", withNode("  api_token_file: token.txt\n"), "  t0ken-42\n\n", "t0ken-42", ""},
		{"file missing", withNode("  api_token_file: token.txt\n"), "-", "", "tern.yaml:4: node.api_token_file"},
		{"file empty", withNode("  api_token_file: token.txt\n"), " \n", "", "the file is empty"},
		{"both", withNode("  api_token: a\n  api_token_file: token.txt\n"), "b\n", "", "tern.yaml:5: node.api_token and node.api_token_file are both set"},
		{"a space in the token", withNode("  api_token: \"a b\"\n"), "-", "", "tern.yaml:4: node.api_token: the token holds ' '"},
		{"none", base, "-", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "tern.yaml")
			os.WriteFile(cfg, []byte(tc.yaml), 0o644)
			if tc.file != "-" {
				os.WriteFile(filepath.Join(dir, "token.txt"), []byte(tc.file), 0o600)
			}
			c, err := Load(cfg)
			if tc.problem != "" {
				var ps Problems
				if !errors.As(err, &ps) || !strings.Contains(ps.Error(), tc.problem) {
					t.Fatalf("got %v, want a problem with %q", err, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Node.APIToken != tc.want {
				t.Fatalf("token %q, want %q", c.Node.APIToken, tc.want)
			}
		})
	}
	// Parsed, not loaded from the host (a replicated bundle): the file is
	// not read.
	c, ps := Parse("tern.yaml", []byte(withNode("  api_token_file: /nonexistent/token\n")))
	if len(ps) > 0 || c.Node.APIToken != "" {
		t.Fatalf("Parse: %v, token %q", ps, c.Node.APIToken)
	}
}
