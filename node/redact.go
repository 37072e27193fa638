package node

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/raftstore"
)

// errUnredactable is a secret that cannot be replaced on its own line.
var errUnredactable = errors.New("a secret cannot be redacted as written")

// redactSecrets returns b with the value of every inline secret of its
// main file (config.SecretPaths: node.api_token, tsig.keys.*.secret,
// dispatcher.ha.key) replaced by config.Redacted, on the same line, so that
// no secret of the node that proposes a configuration is stored in the
// Raft log or shown to whoever may read configuration versions. Nothing
// else changes (every other line and column stays where it was, so
// messages still name the right file:line). The node section of a
// replicated configuration is never used (each node takes its own
// file's), nor are its TSIG keys and dispatcher key (the DNS server and
// the dispatcher read the local file).
//
// A secret that cannot be replaced on its line (a multi-line or block
// scalar, an alias, a tagged value) is an error naming its line: nothing
// is proposed then, rather than a secret. b is returned as it is when its
// main file does not parse (validation reports that, and it is never
// proposed).
func redactSecrets(b raftstore.Bundle) (raftstore.Bundle, error) {
	data := b.Files[b.Main]
	root, ok := parseYAML(data)
	if !ok {
		return b, nil
	}
	found := secretNodes(root)
	if len(found) == 0 {
		return b, nil
	}
	lines := strings.Split(string(data), "\n")
	// Right to left on each line, so that a replacement leaves the
	// columns of the others on the line (a flow mapping) where they are.
	slices.SortFunc(found, func(x, y secretNode) int {
		if x.v.Line != y.v.Line {
			return x.v.Line - y.v.Line
		}
		return y.v.Column - x.v.Column
	})
	for _, s := range found {
		v := s.v
		if s.hidden() {
			continue
		}
		bad := s.unredactable(b.Main)
		if v.Kind != yaml.ScalarNode || v.Line < 1 || v.Line > len(lines) {
			return b, bad
		}
		line := []rune(lines[v.Line-1])
		start := v.Column - 1
		if start < 0 || start >= len(line) {
			return b, bad
		}
		end := scalarEnd(line, start, v)
		if end < 0 {
			return b, bad
		}
		lines[v.Line-1] = string(line[:start]) + config.Redacted + string(line[end:])
	}
	redacted := []byte(strings.Join(lines, "\n"))
	// Whatever the file's shape, nothing but the placeholder may be left.
	check, ok := parseYAML(redacted)
	if !ok {
		return b, fmt.Errorf("%s: %w: the file does not parse once redacted", b.Main, errUnredactable)
	}
	for _, s := range secretNodes(check) {
		if !s.hidden() {
			return b, s.unredactable(b.Main)
		}
	}
	out := raftstore.Bundle{Main: b.Main, Files: make(map[string][]byte, len(b.Files))}
	for p, d := range b.Files {
		out.Files[p] = d
	}
	out.Files[b.Main] = redacted
	return out, nil
}

// parseYAML parses data into its document's root node.
func parseYAML(data []byte) (*yaml.Node, bool) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return nil, false
	}
	return doc.Content[0], true
}

// secretNode is one value at a secret path: the pattern it matched
// (tsig.keys.*.secret), the concrete path (tsig.keys.xfr.secret) and the
// value's node.
type secretNode struct {
	pattern, path string
	v             *yaml.Node
}

// hidden reports whether the value holds no secret: empty, null, or the
// placeholder already.
func (s secretNode) hidden() bool {
	return s.v.Kind == yaml.ScalarNode && (s.v.Value == "" || s.v.Value == config.Redacted || s.v.Tag == "!!null")
}

func (s secretNode) unredactable(file string) error {
	return fmt.Errorf("%s:%d: %s: %w: write it as a plain or quoted value on one line, or better in a file (%s_file)", file, s.v.Line, s.path, errUnredactable, s.pattern)
}

// secretNodes returns the value of every key of root at a secret path.
func secretNodes(root *yaml.Node) []secretNode {
	var out []secretNode
	for _, pattern := range config.SecretPaths() {
		var walk func(n *yaml.Node, steps []string, path string)
		walk = func(n *yaml.Node, steps []string, path string) {
			if len(steps) == 0 {
				out = append(out, secretNode{pattern: pattern, path: path, v: n})
				return
			}
			if n.Kind != yaml.MappingNode {
				return
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				if k := n.Content[i].Value; steps[0] == "*" || k == steps[0] {
					walk(n.Content[i+1], steps[1:], strings.TrimPrefix(path+"."+k, "."))
				}
			}
		}
		walk(root, strings.Split(pattern, "."), "")
	}
	return out
}

// scalarEnd returns where the scalar v that starts at line[start] ends on
// its line (exclusive), -1 when it does not end there (a multi-line
// scalar, a block scalar, a tag or anchor before it: left to the caller).
func scalarEnd(line []rune, start int, v *yaml.Node) int {
	switch v.Style {
	case yaml.DoubleQuotedStyle:
		if line[start] != '"' {
			return -1
		}
		for i := start + 1; i < len(line); i++ {
			switch line[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
		return -1
	case yaml.SingleQuotedStyle:
		if line[start] != '\'' {
			return -1
		}
		for i := start + 1; i < len(line); i++ {
			if line[i] == '\'' {
				if i+1 < len(line) && line[i+1] == '\'' {
					i++
					continue
				}
				return i + 1
			}
		}
		return -1
	case 0:
		end := start + len([]rune(v.Value))
		if end > len(line) || string(line[start:end]) != v.Value {
			return -1
		}
		return end
	}
	return -1
}

// redactCommand returns a forwarded command with the main file of an
// ApplyConfig redacted, so that the leader proposes no secret even when
// the node that forwarded it did not redact it: a main file the command
// carries is replaced by its redacted content; one it names from st (the
// leader's state, where an earlier version or upload put it) that holds a
// secret is refused. Any other command, and one that does not decode or
// whose main file is not to be had (the store refuses those), is returned
// as it is.
func redactCommand(cmd []byte, st *raftstore.State) ([]byte, error) {
	body, err := raftstore.DecodeCommand(cmd)
	if err != nil {
		return cmd, nil
	}
	ac, ok := body.(raftstore.ApplyConfig)
	if !ok {
		return cmd, nil
	}
	main, carried, err := ac.Content(ac.Main, st)
	if err != nil {
		return cmd, nil
	}
	rb, err := redactSecrets(raftstore.Bundle{Main: ac.Main, Files: map[string][]byte{ac.Main: main}})
	if err != nil {
		return nil, err
	}
	redacted := rb.Files[rb.Main]
	if bytes.Equal(redacted, main) {
		return cmd, nil
	}
	if !carried {
		return nil, fmt.Errorf("%s holds a secret and was uploaded apart from the change: the node that sent it did not redact it", ac.Main)
	}
	return raftstore.EncodeCommand(ac.WithContent(ac.Main, redacted))
}

// Redacted returns files (path -> content, main the YAML file's path) as
// a node stores them when they are applied: each inline secret of the
// main file replaced by config.Redacted. A client diffs what it would
// send against a kept version with it, so that a secret is neither
// shown as a change nor printed.
func Redacted(main string, files map[string]string) (map[string]string, error) {
	b := raftstore.Bundle{Main: main, Files: make(map[string][]byte, len(files))}
	for p, d := range files {
		b.Files[p] = []byte(d)
	}
	r, err := redactSecrets(b)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(r.Files))
	for p, d := range r.Files {
		out[p] = string(d)
	}
	return out, nil
}
