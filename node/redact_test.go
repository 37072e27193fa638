package node

import (
	"strings"
	"testing"

	"github.com/ternlb/tern/raftstore"
)

// An inline node.api_token never reaches the replicated bundle; every
// other byte, and so every line number, stays.
func TestRedactToken(t *testing.T) {
	const rest = "pools:\n  web: {members: [{address: 192.0.2.1}]}\nzones: [{file: z.zone}]\n"
	for _, tc := range []struct {
		name, in, want string
	}{
		{"block", "node:\n  name: n1\n  api_token: s3cret\n" + rest, "node:\n  name: n1\n  api_token: redacted\n" + rest},
		{"flow", "node: {name: n1, api_token: s3cret, api: \"127.0.0.1:1\"}\n" + rest, "node: {name: n1, api_token: redacted, api: \"127.0.0.1:1\"}\n" + rest},
		{"double quoted", "node:\n  api_token: \"s3\\\"cret\"  # the token\n" + rest, "node:\n  api_token: redacted  # the token\n" + rest},
		{"single quoted", "node:\n  api_token: 's3''cret'\n" + rest, "node:\n  api_token: redacted\n" + rest},
		{"none", "node:\n  name: n1\n  api_token_file: /etc/tern/token\n" + rest, "node:\n  name: n1\n  api_token_file: /etc/tern/token\n" + rest},
		{"not yaml", "node: [\n", "node: [\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := raftstore.Bundle{Main: "tern.yaml", Files: map[string][]byte{"tern.yaml": []byte(tc.in), "z.zone": []byte(testZone)}}
			got := redactToken(b)
			if string(got.Files["tern.yaml"]) != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got.Files["tern.yaml"], tc.want)
			}
			if string(b.Files["tern.yaml"]) != tc.in {
				t.Fatal("the input bundle was changed")
			}
			if string(got.Files["z.zone"]) != testZone {
				t.Fatal("another file changed")
			}
			if strings.Contains(tc.name, "quoted") || tc.name == "block" || tc.name == "flow" {
				if _, err := got.Load(got.Main); err != nil {
					t.Fatalf("the redacted bundle does not load: %v", err)
				}
			}
		})
	}
}
