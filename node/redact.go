package node

import (
	"bytes"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ternlb/tern/raftstore"
)

// redactedToken stands in for node.api_token in a replicated bundle.
const redactedToken = "redacted"

// redactToken returns b with the value of node.api_token in its main file
// replaced by "redacted", on the same line, so that the write token of
// the node that proposed a configuration is not stored in the Raft log
// nor shown to whoever may read configuration versions. Nothing else
// changes (every other line and column stays where it was, so messages
// still name the right file:line); the node section of a replicated
// configuration is never used (each node takes its own file's). b is
// returned as it is when the file has no inline token or does not parse
// (validation reports that).
func redactToken(b raftstore.Bundle) raftstore.Bundle {
	data := b.Files[b.Main]
	if !bytes.Contains(data, []byte("api_token")) {
		return b
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil || len(root.Content) == 0 {
		return b
	}
	v := lookup(lookup(root.Content[0], "node"), "api_token")
	if v == nil || v.Kind != yaml.ScalarNode || v.Value == "" || v.Value == redactedToken {
		return b
	}
	lines := strings.Split(string(data), "\n")
	if v.Line < 1 || v.Line > len(lines) {
		return b
	}
	line := []rune(lines[v.Line-1])
	start := v.Column - 1
	if start < 0 || start >= len(line) {
		return b
	}
	end := scalarEnd(line, start, v)
	if end < 0 {
		return b
	}
	lines[v.Line-1] = string(line[:start]) + redactedToken + string(line[end:])
	out := raftstore.Bundle{Main: b.Main, Files: make(map[string][]byte, len(b.Files))}
	for p, d := range b.Files {
		out.Files[p] = d
	}
	out.Files[b.Main] = []byte(strings.Join(lines, "\n"))
	return out
}

// lookup returns the value of key in mapping m, nil when m is not a
// mapping or has no such key.
func lookup(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// scalarEnd returns where the scalar v that starts at line[start] ends on
// its line (exclusive), -1 when it does not end there (a multi-line
// scalar: left alone).
func scalarEnd(line []rune, start int, v *yaml.Node) int {
	switch v.Style {
	case yaml.DoubleQuotedStyle:
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
