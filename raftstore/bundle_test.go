package raftstore

import (
	"io/fs"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ternlb/tern/config"
)

func TestBundleFromExampleConfig(t *testing.T) {
	c, err := config.Load("testdata/example/tern.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := BundleFrom(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Files) != 1+len(c.Zones) {
		t.Fatalf("bundle files %v, want the YAML and %d zone files", slices.Sorted(maps.Keys(b.Files)), len(c.Zones))
	}
	// Every node loads the same configuration from the bundle alone.
	got, err := b.Load("tern.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Pools, c.Pools) || !reflect.DeepEqual(got.Zones, c.Zones) {
		t.Fatal("configuration loaded from the bundle differs from the original")
	}
	for _, z := range got.Zones {
		data, err := fs.ReadFile(got.FS, got.Resolve(z.File))
		if err != nil || !strings.Contains(string(data), "POOL") {
			t.Fatalf("zone %s from the bundle: %v", z.File, err)
		}
	}
	// Through a command and the FSM, byte for byte.
	f := NewFSM()
	mustApply(t, f, 1, inlineApply(b, Change{At: t0}))
	cv, _ := f.State().Config()
	if cv.Hash != b.Manifest().Hash() || !reflect.DeepEqual(filesOf(t, f.State(), cv), b) {
		t.Fatal("bundle changed through the log")
	}
}

func TestBundleFromMissingZone(t *testing.T) {
	fsys := fstest.MapFS{
		"etc/tern.yaml": {Data: []byte("zones:\n  - file: zones/missing.zone\n")},
	}
	c, err := config.LoadFS(fsys, "etc/tern.yaml", "tern.yaml")
	if c == nil {
		t.Fatalf("config: %v", err)
	}
	_, err = BundleFrom(c)
	if err == nil || !strings.Contains(err.Error(), "missing.zone") {
		t.Fatalf("got %v, want an error naming the zone file", err)
	}
}

func TestBundleHash(t *testing.T) {
	base := bundle("a.yaml", "a.yaml", "x", "z/1.zone", "one")
	tests := []struct {
		name string
		b    Bundle
		same bool
	}{
		{"same files", bundle("a.yaml", "z/1.zone", "one", "a.yaml", "x"), true},
		{"content changed", bundle("a.yaml", "a.yaml", "x", "z/1.zone", "two"), false},
		{"file renamed", bundle("a.yaml", "a.yaml", "x", "z/2.zone", "one"), false},
		{"main changed", bundle("z/1.zone", "a.yaml", "x", "z/1.zone", "one"), false},
		{"bytes moved between path and content", bundle("a.yaml", "a.yaml", "x", "z/1.zon", "eone"), false},
		{"file added", bundle("a.yaml", "a.yaml", "x", "z/1.zone", "one", "z/3.zone", ""), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.b.Hash() == base.Hash(); got != tc.same {
				t.Fatalf("same hash %v, want %v", got, tc.same)
			}
		})
	}
	var h Hash
	if err := h.UnmarshalText([]byte(base.Hash().String())); err != nil || h != base.Hash() {
		t.Fatalf("hash text round trip: %v", err)
	}
}

func TestOptionsFor(t *testing.T) {
	c, err := config.Load("testdata/example/tern.yaml")
	if err != nil {
		t.Fatal(err)
	}
	o := OptionsFor(c)
	abs, _ := filepath.Abs("testdata/example/data/n1")
	if o.ID != "n1" || o.Dir != abs || o.RaftAddr != "127.0.0.1:7054" || o.APIAddr != "127.0.0.1:8054" || !o.Bootstrap {
		t.Fatalf("%+v", o)
	}
}
