package node

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ternlb/tern/internal/eventually"
	"github.com/ternlb/tern/raftstore"
)

const standaloneYAML = `node:
  name: s1
  dns: ["127.0.0.1:0"]
  data: ./data
pools:
  web:
    members: [{address: 192.0.2.1}]
zones:
  - file: z.zone
`

// A standalone node keeps its zones' served serials in node.data: a reload
// to older content (a lower file serial) and a restart never serve a lower
// serial than was served.
func TestStandaloneSerialsNeverGoBack(t *testing.T) {
	o := &oneNode{t: t, dir: t.TempDir()}
	o.write(standaloneYAML, zoneWithSerial(100, ""))
	o.run(o.build())
	if got := o.soaSerial(); got != 100 {
		t.Fatalf("first start serves %d, want the file's 100", got)
	}
	reload := func(zone string) uint32 {
		t.Helper()
		o.write(standaloneYAML, zone)
		if err := o.n.Reload(context.Background(), o.load()); err != nil {
			t.Fatal(err)
		}
		// Run swaps the new generation's snapshot in just after Reload.
		o.n.mu.Lock()
		want := o.n.gen.base.Serials["example.test."]
		o.n.mu.Unlock()
		eventually.True(t, 5*time.Second, func() bool { return o.soaSerial() == want }, "the reloaded serial served")
		return want
	}
	if got := reload(zoneWithSerial(110, "two 300 IN A 192.0.2.2\n")); got != 110 {
		t.Fatalf("after raising the file's serial to 110: %d", got)
	}
	back := reload(zoneWithSerial(100, ""))
	if !raftstore.SerialLess(110, back) {
		t.Fatalf("back to the first content: serial %d, not above 110", back)
	}
	if got := reload(zoneWithSerial(100, "")); got != back {
		t.Fatalf("the same content again: serial %d, want %d kept", got, back)
	}

	o.stop()
	o.run(o.build())
	if got := o.soaSerial(); got != back {
		t.Fatalf("after a restart on the same files: serial %d, want %d", got, back)
	}
	o.stop()
	o.write(standaloneYAML, zoneWithSerial(50, "three 300 IN A 192.0.2.3\n"))
	o.run(o.build())
	if got := o.soaSerial(); !raftstore.SerialLess(back, got) {
		t.Fatalf("a restart on other content with a lower file serial: serial %d, not above %d", got, back)
	}

	data, err := os.ReadFile(filepath.Join(o.dir, "data", serialsFile))
	if err != nil {
		t.Fatal(err)
	}
	var f serialsJSON
	if err := json.Unmarshal(data, &f); err != nil || f.Zones["example.test."].Served != o.soaSerial() {
		t.Fatalf("%s: %v\n%s", serialsFile, err, data)
	}
	es, _ := os.ReadDir(filepath.Join(o.dir, "data"))
	if len(es) != 1 {
		t.Fatalf("the data directory holds %v, want %s alone (no temporary file left)", es, serialsFile)
	}
}

// A data directory the node cannot create is not fatal standalone: the
// serials live in memory (the zone file's serial at start), as before.
func TestStandaloneSerialsWithoutDataDir(t *testing.T) {
	o := &oneNode{t: t, dir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(o.dir, "afile"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	o.write(strings.Replace(standaloneYAML, "./data", "./afile/data", 1), zoneWithSerial(100, ""))
	o.run(o.build())
	if got := o.soaSerial(); got != 100 {
		t.Fatalf("serves %d, want the file's 100", got)
	}
	if o.n.serials.path != "" {
		t.Fatalf("serials kept at %q under a regular file", o.n.serials.path)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.json")
	for _, v := range []map[string]int{{"a": 1}, {"b": 2}} {
		if err := writeFileAtomic(p, v); err != nil {
			t.Fatal(err)
		}
		var got map[string]int
		data, _ := os.ReadFile(p)
		if err := json.Unmarshal(data, &got); err != nil || len(got) != 1 {
			t.Fatalf("%s after writing %v: %s %v", p, v, data, err)
		}
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Fatalf("left %d files", len(es))
	}
	if err := writeFileAtomic(filepath.Join(dir, "missing", "x.json"), 1); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
}
