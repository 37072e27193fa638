package config

import (
	"fmt"
	"maps"
	"slices"
)

// Redacted stands in for an inline secret in the copy of a configuration
// file that a node replicates (see SecretPaths). A replicated copy with it
// validates; a file loaded from the host with it does not (Load reports
// it), and a TSIG key whose secret is Redacted is never a usable key
// (TSIGSecrets refuses it), so the placeholder can never become a secret
// that works.
const Redacted = "redacted"

// SecretPaths returns the paths of the inline secrets a configuration file
// can hold, dotted as Line takes them, with "*" for any key of a mapping.
// A node replaces their values by Redacted before a file leaves it (the
// Raft log, the API). Every key that holds a secret belongs here; its
// *_file form (a path, not a secret) does not.
func SecretPaths() []string {
	return []string{
		"node.api_token",
		"tsig.keys.*.secret",
		"dispatcher.ha.key",
	}
}

// redactedOnHost reports each inline secret of a file loaded from this
// host that is the placeholder Redacted: a copy of a replicated
// configuration used as a node's own file, whose secrets are gone.
func (c *Config) redactedOnHost() Problems {
	var ps Problems
	bad := func(path, what string) {
		ps = append(ps, Problem{File: c.Name, Line: c.Line(path),
			Msg: fmt.Sprintf("%s is %q, the placeholder a replicated copy carries instead of the secret: write the secret itself here, or better its file (%s_file)", what, Redacted, path)})
	}
	if c.Node.APITokenFile == "" && c.Node.APIToken == Redacted {
		bad("node.api_token", "node.api_token")
	}
	for _, name := range slices.Sorted(maps.Keys(c.TSIG.Keys)) {
		if c.TSIG.Keys[name].Secret == Redacted {
			bad("tsig.keys."+name+".secret", fmt.Sprintf("TSIG key %q's secret", name))
		}
	}
	if d := c.Dispatcher; d != nil && d.HA != nil && d.HA.Key == Redacted {
		bad("dispatcher.ha.key", "dispatcher.ha.key")
	}
	return ps
}
