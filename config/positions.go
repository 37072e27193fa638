package config

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// positions maps the dotted path of every node of a YAML document
// ("pools.web.members.2.address") to the line it stands on, so that
// validation, which works on decoded structs, can still name a line.
type positions map[string]int

func indexPositions(root *yaml.Node) positions {
	pos := positions{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
			return
		case yaml.MappingNode:
			pos[path] = n.Line
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := join(path, k.Value)
				walk(v, p)
				pos[p] = k.Line // the key's line reads best in a message
			}
		case yaml.SequenceNode:
			pos[path] = n.Line
			for i, c := range n.Content {
				walk(c, join(path, strconv.Itoa(i)))
			}
		default:
			pos[path] = n.Line
		}
	}
	walk(root, "")
	return pos
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// line returns the line of path, or of its nearest ancestor that has one.
func (p positions) line(path string) int {
	for {
		if l, ok := p[path]; ok {
			return l
		}
		i := strings.LastIndexByte(path, '.')
		if i < 0 {
			return p[""]
		}
		path = path[:i]
	}
}
