package node

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/raftstore"
)

func TestVerdictTiming(t *testing.T) {
	cfg := func(intervals ...string) *config.Config {
		c := &config.Config{Checks: map[string]config.Check{}}
		for i, iv := range intervals {
			d, _ := time.ParseDuration(iv)
			c.Checks[fmt.Sprint(i)] = config.Check{Interval: config.Duration(d)}
		}
		return c
	}
	for _, tc := range []struct {
		name             string
		cfg              *config.Config
		age, refresh     time.Duration
		wantAge, wantRef time.Duration
	}{
		{"defaults, short checks", cfg("1s", "5s"), 0, 0, 30 * time.Second, 10 * time.Second},
		{"defaults, a long check", cfg("1s", "20s"), 0, 0, 60 * time.Second, 20 * time.Second},
		{"given", cfg("1s"), 4 * time.Second, time.Second, 4 * time.Second, time.Second},
		{"refresh capped at the age", cfg(), 4 * time.Second, time.Minute, 4 * time.Second, 4 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			age, ref := verdictTiming(tc.cfg, tc.age, tc.refresh)
			if age != tc.wantAge || ref != tc.wantRef {
				t.Fatalf("got %v/%v, want %v/%v", age, ref, tc.wantAge, tc.wantRef)
			}
		})
	}
}

// localBundle names files relative to the configuration's folder, as
// `tern apply` does, and loads back to the same configuration.
func TestLocalBundle(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "zones"), 0o755)
	os.WriteFile(filepath.Join(dir, "tern.yaml"), []byte("node: {name: t1}\npools:\n  web: {members: [{address: 192.0.2.1}]}\nzones:\n  - file: zones/z.zone\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "zones", "z.zone"), []byte(testZone+"$INCLUDE inc/more.zone\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "zones", "inc"), 0o755)
	os.WriteFile(filepath.Join(dir, "zones", "inc", "more.zone"), []byte("included 300 IN A 192.0.2.77\n"), 0o644)
	cfg, err := config.Load(filepath.Join(dir, "tern.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := (&Node{zones: newZoneCache()}).localBundle(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if b.Main != "tern.yaml" || len(b.Files) != 3 || b.Files["zones/inc/more.zone"] == nil {
		t.Fatalf("bundle: main %q, files %v", b.Main, slices.Collect(maps.Keys(b.Files)))
	}
	c2, err := b.Load(b.Main)
	if err != nil {
		t.Fatal(err)
	}
	snap, ps := compileWith(c2, nil, nil)
	if len(ps) > 0 {
		t.Fatalf("the bundle does not compile: %v", ps)
	}
	if _, res := snap.Zones.Lookup("included.example.test.", dns.TypeA); res.Answer.Len() != 1 {
		t.Fatalf("the included record is not in the bundle's zone: %+v", res)
	}
}

// clusterDigest tells apart files that would serve differently, not files
// that differ only where a node takes its own settings.
func TestClusterDigest(t *testing.T) {
	const cluster = "pools:\n  web: {members: [{address: 192.0.2.1}]}\nzones:\n  - file: z.zone\n"
	b := func(main, yaml, zone string) raftstore.Bundle {
		return raftstore.Bundle{Main: main, Files: map[string][]byte{main: []byte(yaml), "z.zone": []byte(zone)}}
	}
	digest := func(b raftstore.Bundle) raftstore.Hash { return clusterDigest(b.Files[b.Main], b.Manifest()) }
	ref := digest(b("tern.yaml", "node: {name: n1}\n"+cluster, "z"))
	for _, tc := range []struct {
		name string
		b    raftstore.Bundle
		same bool
	}{
		{"another node section, comments, layout", b("tern.yaml", "# n2's file\nnode:\n  name: n2\n  api: 127.0.0.1:1\n\n"+cluster, "z"), true},
		{"no node section, another file name", b("cluster.yaml", cluster, "z"), true},
		{"its own rrl, tsig and transfer", b("tern.yaml", cluster+"rrl: {responses_per_second: 5}\ntransfer: {allow: [{from: 127.0.0.0/8}]}\n", "z"), true},
		{"another pool member", b("tern.yaml", strings.Replace(cluster, "192.0.2.1", "192.0.2.2", 1), "z"), false},
		{"another zone file", b("tern.yaml", cluster, "z2"), false},
		{"not YAML", b("tern.yaml", "{{", "z"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := digest(tc.b) == ref; got != tc.same {
				t.Fatalf("same digest: %v, want %v", got, tc.same)
			}
		})
	}
}

func TestAPIError(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		kind error
	}{
		{"not leader", &raftstore.NotLeaderError{}, api.ErrUnavailable},
		{"closed", raftstore.ErrClosed, api.ErrUnavailable},
		{"stale", fmt.Errorf("apply: %w", raftstore.ErrStale), api.ErrConflict},
		{"no such version", raftstore.ErrNoSuchVersion, api.ErrNotFound},
		{"content not held", fmt.Errorf("apply: %w", raftstore.ErrMissingBlob), api.ErrConflict},
		{"content not its hash", raftstore.ErrBlobMismatch, api.ErrInvalid},
		{"no room for content", raftstore.ErrBlobSpace, api.ErrInvalid},
		{"unknown node", raftstore.ErrUnknownNode, api.ErrNotFound},
		{"malformed", raftstore.ErrMalformed, api.ErrInvalid},
		{"timeout", context.DeadlineExceeded, api.ErrUnavailable},
		{"forwarded 400", &api.Error{Status: 400, Message: "x"}, api.ErrInvalid},
		{"forwarded 409", &api.Error{Status: 409, Message: "x"}, api.ErrConflict},
		{"forwarded 503", &api.Error{Status: 503, Message: "x"}, api.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := apiError(tc.err); !errors.Is(got, tc.kind) || !errors.Is(got, tc.err) {
				t.Fatalf("apiError(%v) = %v, want %v wrapping the original", tc.err, got, tc.kind)
			}
		})
	}
	if apiError(nil) != nil {
		t.Fatal("nil must stay nil")
	}
}
