package selector

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestExplainSteps(t *testing.T) {
	pools, err := CompileLocated(configWith(t, webPool, regions), testLocator)
	if err != nil {
		t.Fatal(err)
	}
	web := withDown(pools[0], "192.0.2.11")
	a, steps := web.Explain(client("81.2.69.0/24"), IPv4)
	var stages []string
	for _, st := range steps {
		stages = append(stages, st.Stage)
	}
	if want := []string{"family", "healthy", "geo", "weighted", "first"}; !slices.Equal(stages, want) {
		t.Fatalf("stages %v, want %v", stages, want)
	}
	dropped := func(i int) []string {
		var out []string
		for _, d := range steps[i].Dropped {
			out = append(out, web.Members[d.Member].Name()+": "+d.Why)
		}
		return out
	}
	if got := dropped(0); !slices.Equal(got, []string{"2001:db8::20: IPv6 address: the query asks for A"}) {
		t.Errorf("family dropped %v", got)
	}
	if got := dropped(1); !slices.Equal(got, []string{"192.0.2.11: down"}) {
		t.Errorf("healthy dropped %v", got)
	}
	if got := dropped(2); len(got) != 3 || !strings.Contains(got[0], `site "us-east" is not in the list [eu-west]`) {
		t.Errorf("geo dropped %v", got)
	}
	if !strings.Contains(steps[2].Note, "country:GB -> [eu-west]") || steps[2].Scope != 16 {
		t.Errorf("geo note %q scope %d", steps[2].Note, steps[2].Scope)
	}
	if !slices.Equal(names(a), []string{"192.0.2.10"}) || a.Scope != 16 {
		t.Errorf("answer %v scope %d", names(a), a.Scope)
	}
	// Explain answers like Select.
	if b := web.Select(client("81.2.69.0/24"), IPv4, NewScratch(8)); !slices.Equal(names(b), names(a)) || b.Scope != a.Scope {
		t.Errorf("Select %v /%d, Explain %v /%d", names(b), b.Scope, names(a), a.Scope)
	}
}

func TestWriteExplain(t *testing.T) {
	c := configWith(t, webPool+`  spare:
    ttl: 60
    members: [{address: 198.51.100.1}]
  api:
    policy: failover
    all_down: fallback:spare
    members:
      - {address: 192.0.2.40, priority: 1}
      - {address: 192.0.2.41, priority: 2}
`, regions)
	pools, err := CompileLocated(c, testLocator)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*Pool{}
	for _, p := range pools {
		byName[p.Name] = p
	}
	tests := []struct {
		name, pool, client string
		fam                Family
		down               []string
		want               []string
	}{
		{"geo", "web", "81.2.69.142", IPv4, nil, []string{
			"pool web, A query, client 81.2.69.142/32",
			"family     kept 192.0.2.10 192.0.2.11 192.0.2.20 192.0.2.21 192.0.2.30",
			"dropped 2001:db8::20: IPv6 address: the query asks for A",
			`map "regions", client 81.2.69.142 (country "GB" continent "EU", network /16): country:GB -> [eu-west]`,
			"dropped 192.0.2.30: site \"ap-east\" is not in the list [eu-west]",
			"answer: 192.0.2.1",
			"ttl: 300",
			"ecs scope: /16",
		}},
		{"tiers", "web", "89.160.20.0/24", IPv4, []string{"192.0.2.11"}, []string{
			"geo        kept [192.0.2.10] [192.0.2.20 192.0.2.21]",
			"continent:EU -> [eu-west us-east]",
		}},
		{"priority", "api", "192.0.2.99", IPv4, []string{"192.0.2.40"}, []string{
			"priority 1: 0 of 1 up, needs 1; priority 2: 1 of 1 up, needs 1",
			"answer: 192.0.2.41",
			"ecs scope: /0",
		}},
		{"fallback", "api", "192.0.2.99", IPv4, []string{"192.0.2.40", "192.0.2.41"}, []string{
			"dropped 192.0.2.40: down",
			"all_down   all members of the family are down: all_down falls back to pool spare",
			"spare/healthy kept 198.51.100.1",
			"answer: 198.51.100.1",
			"answered by: pool spare (all_down fallback)",
			"ttl: 60",
		}},
		{"all down: all", "web", "192.0.2.99", IPv6, []string{"2001:db8::20"}, []string{
			"dropped 2001:db8::20: down",
			"all_down   all members of the family are down: all_down all answers as if every member were up",
			"all_down all: every member counts as up",
			"answer: 2001:db8::20",
		}},
		{"AAAA none of the family", "api", "2001:db8::1", IPv6, nil, []string{
			"answer: none (NODATA)",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pools := []*Pool{}
			for _, p := range byName {
				pools = append(pools, withDown(p, tc.down...))
			}
			linked, err := Link(pools)
			if err != nil {
				t.Fatal(err)
			}
			var p *Pool
			for _, q := range linked {
				if q.Name == tc.pool {
					p = q
				}
			}
			c, err := ParseClient(tc.client)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := WriteExplain(&out, p, c, tc.fam, 300); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestParseClient(t *testing.T) {
	tests := []struct {
		in   string
		addr string
		src  int
		bad  bool
	}{
		{"192.0.2.7", "192.0.2.7", 32, false},
		{"192.0.2.7/24", "192.0.2.0", 24, false},
		{"::ffff:192.0.2.7", "192.0.2.7", 32, false},
		{"2001:db8::1/56", "2001:db8::", 56, false},
		{"0.0.0.0/0", "0.0.0.0", 0, false},
		{"example.com", "", 0, true},
		{"192.0.2.7/33", "", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			c, err := ParseClient(tc.in)
			if tc.bad {
				if err == nil {
					t.Fatalf("accepted: %+v", c)
				}
				return
			}
			if err != nil || c.Addr.String() != tc.addr || c.SourcePrefix != tc.src {
				t.Errorf("got %v/%d err %v, want %s/%d", c.Addr, c.SourcePrefix, err, tc.addr, tc.src)
			}
		})
	}
}
