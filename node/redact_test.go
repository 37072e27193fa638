package node

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ternlb/tern/raftstore"
)

const secret32 = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=" // 32 bytes, base64

// No inline secret (node.api_token, a TSIG key's secret, the dispatcher's
// HA key) reaches the replicated bundle; every other byte, and so every
// line number, stays. A secret that cannot be replaced on its line is an
// error naming the line, never a bundle with the secret in it.
func TestRedactSecrets(t *testing.T) {
	const rest = "pools:\n  web: {members: [{address: 192.0.2.1}]}\nzones: [{file: z.zone}]\n"
	for _, tc := range []struct {
		name, in, want string
		err            string // substring of the error; "" for none
	}{
		{"block", "node:\n  name: n1\n  api_token: s3cret\n" + rest, "node:\n  name: n1\n  api_token: redacted\n" + rest, ""},
		{"flow", "node: {name: n1, api_token: s3cret, api: \"127.0.0.1:1\"}\n" + rest, "node: {name: n1, api_token: redacted, api: \"127.0.0.1:1\"}\n" + rest, ""},
		{"double quoted", "node:\n  api_token: \"s3\\\"cret\"  # the token\n" + rest, "node:\n  api_token: redacted  # the token\n" + rest, ""},
		{"single quoted", "node:\n  api_token: 's3''cret'\n" + rest, "node:\n  api_token: redacted\n" + rest, ""},
		{"files are paths", "node:\n  name: n1\n  api_token_file: /etc/tern/token\ntsig:\n  keys:\n    xfr: {secret_file: xfr.key}\n" + rest,
			"node:\n  name: n1\n  api_token_file: /etc/tern/token\ntsig:\n  keys:\n    xfr: {secret_file: xfr.key}\n" + rest, ""},
		{"tsig keys", "tsig:\n  keys:\n    xfr:\n      algorithm: hmac-sha256\n      secret: " + secret32 + "\n    b: {secret: '" + secret32 + "'}\n" + rest,
			"tsig:\n  keys:\n    xfr:\n      algorithm: hmac-sha256\n      secret: redacted\n    b: {secret: redacted}\n" + rest, ""},
		{"several on one line", "node: {api_token: t0k3n}\ntsig: {keys: {a: {secret: \"" + secret32 + "\"}, b: {secret: " + secret32 + "}}}\n" + rest,
			"node: {api_token: redacted}\ntsig: {keys: {a: {secret: redacted}, b: {secret: redacted}}}\n" + rest, ""},
		{"dispatcher key", "dispatcher:\n  ha: {local: 10.0.0.1:7500, key: \"0123456789abcdef0123\"}\n" + rest,
			"dispatcher:\n  ha: {local: 10.0.0.1:7500, key: redacted}\n" + rest, ""},
		{"already redacted", "node: {api_token: redacted}\n" + rest, "node: {api_token: redacted}\n" + rest, ""},
		{"not yaml", "node: [\n", "node: [\n", ""},
		{"block scalar", "tsig:\n  keys:\n    xfr:\n      secret: |\n        " + secret32 + "\n" + rest, "", "tern.yaml:4: tsig.keys.xfr.secret: a secret cannot be redacted as written"},
		{"plain over two lines", "node:\n  api_token: s3\n    cret\n" + rest, "", "tern.yaml:2: node.api_token: a secret cannot be redacted"},
		{"quoted over two lines", "node:\n  api_token: \"s3\n    cret\"\n" + rest, "", "tern.yaml:2: node.api_token: a secret cannot be redacted"},
		{"alias", "x: &tok s3cret\nnode:\n  api_token: *tok\n" + rest, "", "tern.yaml:3: node.api_token: a secret cannot be redacted"},
		{"anchored", "node:\n  api_token: &tok s3cret\n" + rest, "", "tern.yaml:2: node.api_token: a secret cannot be redacted"},
		{"tagged", "node:\n  api_token: !!str s3cret\n" + rest, "", "node.api_token_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := raftstore.Bundle{Main: "tern.yaml", Files: map[string][]byte{"tern.yaml": []byte(tc.in), "z.zone": []byte(testZone)}}
			got, err := redactSecrets(b)
			if string(b.Files["tern.yaml"]) != tc.in {
				t.Fatal("the input bundle was changed")
			}
			if tc.err != "" {
				if !errors.Is(err, errUnredactable) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got.Files["tern.yaml"]) != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got.Files["tern.yaml"], tc.want)
			}
			if string(got.Files["z.zone"]) != testZone {
				t.Fatal("another file changed")
			}
			for _, s := range []string{"s3cret", "s3\\\"cret", "s3''cret", "t0k3n", secret32, "0123456789abcdef0123"} {
				if strings.Contains(string(got.Files["tern.yaml"]), s) {
					t.Fatalf("%q is still in\n%s", s, got.Files["tern.yaml"])
				}
			}
		})
	}
}

// A forwarded ApplyConfig whose main file still holds a secret is
// redacted on the leader before it is proposed when it carries the file,
// and refused when it names one the leader holds; other commands pass as
// they are.
func TestRedactCommand(t *testing.T) {
	secretYAML := "tsig: {keys: {xfr: {secret: " + secret32 + "}}}\npools: {}\nzones: [{file: z.zone}]\n"
	b := raftstore.Bundle{Main: "tern.yaml", Files: map[string][]byte{"tern.yaml": []byte(secretYAML), "z.zone": []byte(testZone)}}
	ch := raftstore.Change{At: time.Now().UTC(), Comment: "from an old node"}
	empty := raftstore.NewFSM().State()
	_, carried := empty.Upload(b, ch)
	// A leader that holds the secret file already (an older node put it
	// there) and the zone.
	leader := raftstore.NewFSM()
	if r, ok := leader.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: mustEncode(t, carried)}).(error); ok {
		t.Fatal(r)
	}
	named := raftstore.ApplyConfig{Manifest: b.Manifest(), Change: raftstore.Change{Base: 1, Force: true, At: ch.At}}
	for _, tc := range []struct {
		name    string
		body    raftstore.Body
		st      *raftstore.State
		changed bool
		refused bool
	}{
		{"apply carrying a secret", carried, empty, true, false},
		{"apply naming a held file with a secret", named, leader.State(), false, true},
		{"another command", raftstore.SetAdmin{States: []raftstore.AdminChange{{Pool: "web", Member: "192.0.2.1", State: raftstore.AdminDrain}}}, empty, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := mustEncode(t, tc.body)
			out, err := redactCommand(cmd, tc.st)
			if tc.refused {
				if err == nil || !strings.Contains(err.Error(), "holds a secret") {
					t.Fatalf("redactCommand: %v, want a refusal", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(out), secret32) || strings.Contains(string(out), base64.StdEncoding.EncodeToString([]byte(secretYAML))[:40]) {
				t.Fatalf("the secret is still in the command: %s", out)
			}
			if changed := string(out) != string(cmd); changed != tc.changed {
				t.Fatalf("changed %v, want %v", changed, tc.changed)
			}
			got, err := raftstore.DecodeCommand(out)
			if err != nil {
				t.Fatalf("the redacted command does not decode: %v", err)
			}
			if ac, ok := got.(raftstore.ApplyConfig); ok {
				main, whole, err := ac.Content(ac.Main, tc.st)
				if err != nil || !whole || ac.Comment != "from an old node" || !strings.Contains(string(main), "secret: redacted") {
					t.Fatalf("redacted command %+v: main %q (%v, %v)", ac, main, whole, err)
				}
				if z, _, err := ac.Content("z.zone", tc.st); err != nil || string(z) != testZone {
					t.Fatalf("the zone file of the redacted command: %q, %v", z, err)
				}
				// And the FSM takes it.
				if r, ok := raftstore.NewFSM().Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: out}).(error); ok {
					t.Fatal(r)
				}
			}
		})
	}
	if out, err := redactCommand([]byte("not a command"), empty); err != nil || string(out) != "not a command" {
		t.Fatalf("an undecodable command: %q, %v; want it passed on for the store to refuse", out, err)
	}
}

func mustEncode(t *testing.T, b raftstore.Body) []byte {
	t.Helper()
	data, err := raftstore.EncodeCommand(b)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
