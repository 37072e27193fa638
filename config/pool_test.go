package config

import (
	"strings"
	"testing"
)

// poolBase is a valid configuration whose pool p (line 12 on) the cases
// below change.
const poolBase = `node:
  name: n1
  dns: ["127.0.0.1:5354"]
sites:
  a: {location: [1, 2]}
  b: {location: [3, 4]}
geo:
  maps:
    m: {"10.0.0.0/8": [a], default: [b, a]}
pools:
  p:
    members:
      - {address: 192.0.2.1, site: a}
zones:
  - file: z.zone
`

func TestPoolProblems(t *testing.T) {
	withPool := func(lines string) string {
		return strings.Replace(poolBase, "  p:\n", "  p:\n"+lines, 1)
	}
	tests := []struct {
		name string
		yaml string
		want []string // each a substring of one problem, in line order
	}{
		{"valid chain", withPool("    chain: [healthy, geo, priority, weighted, first]\n    map: m\n    answers: 1\n"), nil},
		{"valid presets", withPool("    policy: sticky\n    answers: 1\n"), nil},
		{"healthy not first", withPool("    chain: [priority, healthy, first]\n"),
			[]string{`t.yaml:12: pool "p": healthy must be the chain's first stage`}},
		{"no healthy", withPool("    chain: [weighted, first]\n"),
			[]string{`t.yaml:12: pool "p": chain has no healthy stage`}},
		{"first not last", withPool("    chain: [healthy, first, weighted]\n"),
			[]string{`t.yaml:12: pool "p": first must be the chain's last stage`}},
		{"stage twice", withPool("    chain: [healthy, priority, priority]\n"),
			[]string{`t.yaml:12: pool "p": chain stage "priority" appears twice`}},
		{"two ordering stages", withPool("    chain: [healthy, weighted, sticky, first]\n"),
			[]string{`t.yaml:12: pool "p": chain orders members twice (weighted, then sticky)`}},
		{"unknown stage", withPool("    chain: [healthy, fastest]\n"),
			[]string{`t.yaml:12: pool "p": chain stage "fastest" is not one of`}},
		{"answers without first", withPool("    chain: [healthy, weighted]\n    answers: 2\n"),
			[]string{`t.yaml:13: pool "p": answers: 2 is applied by the first stage`}},
		{"map without geo stage", withPool("    policy: weighted\n    map: m\n"),
			[]string{`t.yaml:13: pool "p": map "m" is only read by the geo stage`}},
		{"min_healthy without priority", withPool("    policy: weighted\n    min_healthy: 2\n"),
			[]string{`t.yaml:13: pool "p": min_healthy is read by the priority stage`}},
		{"country keys without a database", strings.Replace(withPool("    policy: geo\n    map: m\n"), `default: [b, a]`, `"country:GB": [a], default: [b, a]`, 1),
			[]string{`t.yaml:13: pool "p": geo map "m" has country or continent keys, which need geo.database`}},
		{"CIDR keys need no database", withPool("    policy: geo\n    map: m\n"), nil},
		{"nearest without a database", withPool("    policy: geo\n"),
			[]string{`t.yaml:12: pool "p": the geo stage without a map: chooses the nearest site`}},
		{"nearest with a database", strings.Replace(withPool("    policy: geo\n"), "geo:\n", "geo:\n  database: x.mmdb\n", 1), nil},
		{"geo map member without site", strings.Replace(withPool("    policy: geo\n    map: m\n"), "192.0.2.1, site: a}", "192.0.2.1}", 1),
			[]string{`t.yaml:15: pool "p": a geo map chooses by site`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ps := Parse("t.yaml", []byte(tc.yaml))
			if len(ps) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(tc.want), ps)
			}
			for i, w := range tc.want {
				if !strings.Contains(ps[i].String(), w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, ps[i].String(), w)
				}
			}
		})
	}
}
