package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dispatcher/control"
	"github.com/ternlb/tern/dispatcher/control/controltest"
	"github.com/ternlb/tern/dispatcher/datapath"
	"github.com/ternlb/tern/internal/eventually"
	"github.com/ternlb/tern/probes"
)

func ctlLoadConfig(t *testing.T, dispatcher string, files map[string]string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	doc := "node: {name: n1}\nzones: [{file: z.zone}]\n" + dispatcher
	p := filepath.Join(dir, "tern.yaml")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return cfg
}

func TestAgentConfig(t *testing.T) {
	cfg := ctlLoadConfig(t, `
dispatcher:
  interface: eth0
  services:
    - {vip: 192.0.2.1, port: 80, servers: [{address: 10.0.0.1, mac: "02:00:00:00:00:01"}]}
    - {vip: 192.0.2.1, port: 443, servers: [{address: 10.0.0.1, mac: "02:00:00:00:00:01"}]}
    - {vip: 192.0.2.2, port: 80, servers: [{address: 10.0.0.1, mac: "02:00:00:00:00:01"}]}
    - {vip: 192.0.2.3, port: 80, servers: [{address: 10.0.0.1, mac: "02:00:00:00:00:01"}]}
  ha:
    local: 10.0.0.2:7500
    peers: [10.0.0.3:7500]
    key_file: ha.key
    priority: 150
    groups:
      - {name: ctlWeb, vips: [192.0.2.2], priority: 250, preempt: true}
    reach:
      - {address: 10.0.0.254, type: tcp, port: 22}
`, map[string]string{"ha.key": "  a-key-from-a-file-0123\n"})
	ac, err := agentConfig(cfg, cfg.Dispatcher, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if string(ac.Key) != "a-key-from-a-file-0123" {
		t.Fatalf("key %q: want the file's content without surrounding space", ac.Key)
	}
	if ac.ID != "10.0.0.2:7500" || ac.Interval != 200*time.Millisecond || ac.DeadAfter != 3 {
		t.Fatalf("defaults: id %q interval %v dead_after %d", ac.ID, ac.Interval, ac.DeadAfter)
	}
	got := fmt.Sprint(ac.Groups)
	want := "[{{ctlWeb 250 true} [192.0.2.2]} {{default 150 false} [192.0.2.1 192.0.2.3]}]"
	if got != want {
		t.Fatalf("groups\n%s\nwant\n%s", got, want)
	}
	r, ok := ac.Reacher.(interface {
		Run(context.Context, func(bool)) error
	})
	if !ok || r == nil {
		t.Fatal("no reach checks")
	}
}

func TestAgentConfigShortKeyFile(t *testing.T) {
	cfg := ctlLoadConfig(t, `
dispatcher:
  interface: eth0
  services:
    - {vip: 192.0.2.1, port: 80, servers: [{address: 10.0.0.1, mac: "02:00:00:00:00:01"}]}
  ha: {local: 10.0.0.2:7500, peers: [10.0.0.3:7500], key_file: ha.key}
`, map[string]string{"ha.key": "a-good-key-0123456789\n"})
	// tern check (Load) refuses a short key file; one made short after
	// the load is refused when the dispatcher reads it.
	if err := os.WriteFile(cfg.HostPath("ha.key"), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := agentConfig(cfg, cfg.Dispatcher, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("a 5-byte key file was accepted")
	}
}

// The servers' checks run through package probes and their verdicts reach
// the control plane: a server whose health endpoint fails loses its slots.
// switchedService is a one-VIP dispatcher configuration whose first
// server is checked over HTTP against a test server that answers 503
// while down is set; the second server has no check.
func switchedService(t *testing.T, down *atomic.Bool) *config.Config {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return ctlLoadConfig(t, `
checks:
  up: {type: http, port: `+port+`, path: /, interval: 20ms, timeout: 15ms, rise: 1, fall: 1}
dispatcher:
  interface: eth0
  table_size: 251
  services:
    - vip: 192.0.2.1
      port: 80
      check: up
      servers:
        - {address: 127.0.0.1, mac: "02:00:00:00:00:01"}
        - {address: 127.0.0.2, mac: "02:00:00:00:00:02", check: none}
`, nil)
}

func TestHealthProberDrivesControl(t *testing.T) {
	var down atomic.Bool
	cfg := switchedService(t, &down)
	spec, err := control.SpecFromConfig(cfg.Dispatcher)
	if err != nil {
		t.Fatal(err)
	}
	targets, err := serverTargets(cfg, spec)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := newServerProber(cfg.Checks, targets, nil, slog.New(slog.DiscardHandler))
	if err != nil || sp == nil {
		t.Fatalf("newServerProber = %v, %v", sp, err)
	}
	f := controltest.NewMaps(t)
	ctrl := newControl(t, f, spec)
	sp.SetObserver(ctrl)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 2)
	go func() { done <- sp.p.Run(ctx) }()
	key := datapath.ServiceKey{VIP: netip.MustParseAddr("192.0.2.1"), Port: 80, Proto: datapath.ProtoTCP}
	holds := func(addr string) bool {
		if err := ctrl.Reconcile(); err != nil {
			t.Fatal(err)
		}
		return f.Shares(key)[addr] > 0
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		eventually.True(t, 3*time.Second, cond, what)
	}
	wait("127.0.0.1 serving", func() bool { return holds("127.0.0.1") })
	down.Store(true)
	wait("127.0.0.1 drained after its check fails", func() bool { return !holds("127.0.0.1") })
	if !holds("127.0.0.2") {
		t.Fatal("the unchecked server lost its slots")
	}
	down.Store(false)
	wait("127.0.0.1 back", func() bool { return holds("127.0.0.1") })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// fakeHealth is a Health the test decides.
type fakeHealth struct {
	mu      sync.Mutex
	own     map[probes.Key]bool
	agreed  map[probes.Key]bool
	changed chan struct{}
}

func (h *fakeHealth) Observe(vs []probes.Verdict) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, v := range vs {
		if v.Probed {
			h.own[v.Key] = v.ProbeUp
		}
	}
}

func (h *fakeHealth) Agreed() (map[probes.Key]bool, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.agreed), h.changed
}

func (h *fakeHealth) set(k probes.Key, up bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.agreed[k] = up
	close(h.changed)
	h.changed = make(chan struct{})
}

// With a Health, the dispatcher's own probes go to it and do not decide:
// a server its own probe finds down keeps its slots while the agreed
// state says up, and loses them when that says down, whatever its probe
// says then.
func TestHealthFeedDecides(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	cfg := switchedService(t, &down)
	feed := &fakeHealth{own: map[probes.Key]bool{}, agreed: map[probes.Key]bool{}, changed: make(chan struct{})}
	in, err := NewInstance(cfg, RunOptions{Health: feed, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	k := probes.Key{Pool: CheckPoolPrefix + "up", Member: "127.0.0.1"}
	if pools := in.HealthPools(); len(pools) != 1 || len(pools[k.Pool].Members) != 1 || pools[k.Pool].Members[0].Address != k.Member {
		t.Fatalf("health pools %+v, want the checked server under %s", pools, k.Pool)
	}
	f := controltest.NewMaps(t)
	ctrl := newControl(t, f, in.spec)
	in.prober.SetObserver(ctrl)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 2)
	go func() { done <- in.prober.p.Run(ctx) }()
	go func() { done <- FollowHealth(ctx, ctrl, feed) }()
	key := datapath.ServiceKey{VIP: netip.MustParseAddr("192.0.2.1"), Port: 80, Proto: datapath.ProtoTCP}
	holds := func() bool {
		if err := ctrl.Reconcile(); err != nil {
			t.Fatal(err)
		}
		return f.Shares(key)["127.0.0.1"] > 0
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		eventually.True(t, 3*time.Second, cond, what)
	}
	wait("its own probe's down verdict handed to the feed", func() bool {
		feed.mu.Lock()
		defer feed.mu.Unlock()
		up, ok := feed.own[k]
		return ok && !up
	})
	feed.set(k, true)
	wait("up by the agreed state, though its own probe says down", holds)
	feed.set(k, false)
	down.Store(false)
	wait("its own probe up", func() bool {
		feed.mu.Lock()
		defer feed.mu.Unlock()
		return feed.own[k]
	})
	wait("down by the agreed state, though its own probe says up", func() bool { return !holds() })
	cancel()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// newControl is a Control of spec writing to f, forwarding every VIP.
func newControl(t *testing.T, f *controltest.Maps, spec control.Spec) *control.Control {
	t.Helper()
	c, err := control.New(f, spec, control.Options{OwnAll: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
