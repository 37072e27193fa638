package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// redactedYAML is base with every inline secret replaced by the
// placeholder, as a node replicates it.
const redactedYAML = `node:
  name: n1
  dns: ["127.0.0.1:5354"]
  api_token: redacted
tsig:
  keys:
    xfr: {secret: redacted}
transfer:
  allow: [{key: xfr}]
dispatcher:
  interface: eth0
  services:
    - vip: 192.0.2.10
      port: 80
      servers: [{address: 10.1.0.11, mac: "02:00:00:00:01:11"}]
  ha: {local: 10.1.0.2:7500, peers: [10.1.0.3:7500], key: redacted}
sites:
  a: {location: [1, 2]}
pools:
  p:
    members: [{address: 192.0.2.1, site: a}]
zones:
  - file: z.zone
`

// A replicated copy, whose inline secrets are the placeholder, validates
// (every node can load it); the same file loaded as a node's own is
// refused at each secret's line, and the placeholder never becomes a TSIG
// key.
func TestRedactedPlaceholder(t *testing.T) {
	c, ps := Parse("tern.yaml", []byte(redactedYAML))
	if len(ps) > 0 {
		t.Fatalf("a replicated copy with redacted secrets does not validate:\n%v", ps)
	}
	keys, ps := c.TSIGSecrets()
	if _, ok := keys["xfr"]; ok || len(ps) != 1 || !strings.Contains(ps[0].String(), `tern.yaml:7: TSIG key "xfr": the secret is "redacted"`) {
		t.Fatalf("TSIGSecrets of a redacted key = %v, %v; want no key and a problem at line 7", keys, ps)
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "z.zone"), []byte("@ 3600 IN SOA ns h 1 2 3 4 5\n"), 0o644)
	file := filepath.Join(dir, "tern.yaml")
	os.WriteFile(file, []byte(redactedYAML), 0o644)
	_, err := Load(file)
	var lps Problems
	if !errors.As(err, &lps) {
		t.Fatalf("Load of a file with placeholders: %v, want problems", err)
	}
	for _, want := range []string{
		`tern.yaml:4: node.api_token is "redacted"`,
		`tern.yaml:7: TSIG key "xfr"'s secret is "redacted"`,
		`tern.yaml:16: dispatcher.ha.key is "redacted"`,
	} {
		if !strings.Contains(lps.Error(), want) {
			t.Errorf("Load problems lack %q:\n%v", want, lps)
		}
	}
	if !strings.Contains(lps.Error(), "tsig.keys.xfr.secret_file") {
		t.Errorf("the message does not say what to write instead:\n%v", lps)
	}
}

// Every secret path names a key the configuration decodes: a path that
// does not match a field would redact nothing.
func TestSecretPathsExist(t *testing.T) {
	c, ps := Parse("tern.yaml", []byte(redactedYAML))
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	for _, p := range SecretPaths() {
		concrete := strings.ReplaceAll(p, "*", "xfr")
		if _, ok := c.pos[concrete]; !ok {
			t.Errorf("secret path %s (%s) is not in the test file: add it to redactedYAML", p, concrete)
		}
	}
}
