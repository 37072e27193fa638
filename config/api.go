package config

import (
	"fmt"
	"io/fs"
	"strings"
	"unicode"
)

// validateAPIToken checks node.api_token and node.api_token_file: one or
// the other, and an inline token that can travel in an HTTP header.
func (c *Config) validateAPIToken(add func(path, format string, args ...any)) {
	n := c.Node
	if n.APIToken != "" && n.APITokenFile != "" {
		add("node.api_token_file", "node.api_token and node.api_token_file are both set: keep one (api_token_file keeps the secret out of the configuration file)")
	}
	if n.APIToken != "" {
		if err := checkToken(n.APIToken); err != nil {
			add("node.api_token", "node.api_token: %v", err)
		}
	}
}

// checkToken accepts what a bearer token header can carry: printable,
// no spaces.
func checkToken(t string) error {
	for _, r := range t {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' {
			return fmt.Errorf("the token holds %q: write printable ASCII without spaces", r)
		}
	}
	return nil
}

// readAPIToken reads node.api_token_file into Node.APIToken, trimmed of
// surrounding white space (a trailing newline). Like node.tls, the file is
// on this host: a configuration not loaded from the host is not read.
func (c *Config) readAPIToken() Problems {
	f := c.Node.APITokenFile
	if !c.onHost || f == "" {
		return nil
	}
	bad := func(format string, args ...any) Problems {
		return Problems{{File: c.Name, Line: c.Line("node.api_token_file"),
			Msg: fmt.Sprintf("node.api_token_file %s: ", c.DisplayPath(f)) + fmt.Sprintf(format, args...)}}
	}
	b, err := fs.ReadFile(c.FS, c.Resolve(f))
	if err != nil {
		return bad("%v", unwrapPath(err))
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return bad("the file is empty: write the token in it (every node's must be the same)")
	}
	if err := checkToken(t); err != nil {
		return bad("%v", err)
	}
	c.Node.APIToken = t
	return nil
}
