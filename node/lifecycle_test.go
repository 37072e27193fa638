package node

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ternlb/tern/config"
)

// TestRunStopsAllWhenAPartFails: the node's parts are one run.Group. A
// part that fails once running (here the dispatcher, whose interface does
// not exist) stops every other part in reverse order: Run returns its
// error, named by the part, and the DNS and API listeners are closed (the
// addresses can be bound again).
func TestRunStopsAllWhenAPartFails(t *testing.T) {
	dir := t.TempDir()
	yaml := `node:
  name: s1
  dns: ["127.0.0.1:0"]
  api: 127.0.0.1:0
  data: ./data
pools:
  web:
    members: [{address: 192.0.2.1}]
zones:
  - file: z.zone
dispatcher:
  interface: tern-no-such0
  services:
    - vip: 192.0.2.200
      port: 80
      mode: mac
      check: none
      servers:
        - {address: 192.0.2.11, mac: "02:00:00:00:00:11"}
`
	for p, data := range map[string]string{"tern.yaml": yaml, "z.zone": testZone} {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(filepath.Join(dir, "tern.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler), ProbeWait: time.Second})
	if err != nil {
		t.Skipf("no dispatcher here to fail at run time: %v", err)
	}
	dnsAddr, apiAddr := n.DNSAddrs()[0].String(), n.APIAddr().String()
	done := make(chan error, 1)
	go func() { done <- n.Run(context.Background()) }()
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the node runs on with its dispatcher failed")
	}
	if err == nil || !strings.HasPrefix(err.Error(), "dispatcher: ") {
		t.Fatalf("Run returned %v, want the dispatcher's error, named", err)
	}
	t.Logf("Run: %v", err)
	for _, l := range []struct{ network, addr string }{{"udp", dnsAddr}, {"tcp", dnsAddr}, {"tcp", apiAddr}} {
		var c interface{ Close() error }
		if l.network == "udp" {
			c, err = net.ListenPacket("udp", l.addr)
		} else {
			c, err = net.Listen("tcp", l.addr)
		}
		if err != nil {
			t.Fatalf("%s %s still bound after Run returned: %v", l.network, l.addr, err)
		}
		c.Close()
	}
}
