package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

type fakeNode struct {
	ready  error
	admin  map[string]string
	pools  []Pool
	joined []JoinRequest
}

func (f *fakeNode) Status(context.Context) (Status, error) {
	return Status{Node: "n1", RaftState: "Leader", InQuorum: true, Serving: true}, nil
}
func (f *fakeNode) Ready(context.Context) error { return f.ready }
func (f *fakeNode) Pools(context.Context) ([]Pool, error) {
	return f.pools, nil
}
func (f *fakeNode) SetAdmin(_ context.Context, pool, addr, state string) error {
	if pool != "web" {
		return fmt.Errorf("%w: no pool %q", ErrNotFound, pool)
	}
	f.admin[addr] = state
	return nil
}
func (f *fakeNode) Members(context.Context) ([]ClusterMember, error) { return nil, nil }
func (f *fakeNode) Join(_ context.Context, r JoinRequest) error {
	f.joined = append(f.joined, r)
	return nil
}
func (f *fakeNode) Remove(context.Context, string) error {
	return fmt.Errorf("%w: no leader", ErrUnavailable)
}

func serve(t *testing.T, o Options) *Server {
	t.Helper()
	o.Addr = "127.0.0.1:0"
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestTokenGuardsWrites(t *testing.T) {
	f := &fakeNode{admin: map[string]string{}}
	s := serve(t, Options{Token: "s3cret", Status: f, Pools: f, Cluster: f})
	ctx := context.Background()
	addr := s.Addr().String()

	anon := NewClient(addr, "", nil)
	if _, err := anon.Status(ctx); err != nil {
		t.Fatalf("reads are open without ReadToken: %v", err)
	}
	var apiErr *Error
	err := anon.SetAdmin(ctx, "web", "192.0.2.1", "drain")
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized || !strings.Contains(apiErr.Message, "bearer token") {
		t.Fatalf("write without token: %v, want 401 naming the token", err)
	}
	if err := NewClient(addr, "wrong", nil).SetAdmin(ctx, "web", "192.0.2.1", "drain"); !errors.As(err, &apiErr) || apiErr.Status != 401 {
		t.Fatalf("write with a wrong token: %v", err)
	}
	if len(f.admin) != 0 {
		t.Fatal("an unauthorised write reached the node")
	}

	c := NewClient(addr, "s3cret", nil)
	if err := c.SetAdmin(ctx, "web", "192.0.2.1", "drain"); err != nil {
		t.Fatal(err)
	}
	if f.admin["192.0.2.1"] != "drain" {
		t.Fatalf("admin state not set: %v", f.admin)
	}
}

func TestErrorsAreJSONAndMapped(t *testing.T) {
	f := &fakeNode{admin: map[string]string{}}
	s := serve(t, Options{Status: f, Pools: f, Cluster: f})
	c := NewClient(s.Addr().String(), "", nil)
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		code int
		msg  string
	}{
		{"unknown pool", func() error { return c.SetAdmin(ctx, "nope", "192.0.2.1", "down") }, 404, `no pool "nope"`},
		{"bad state", func() error { return c.SetAdmin(ctx, "web", "192.0.2.1", "sleep") }, 400, "write auto, up, down, drain or shed:PERCENT"},
		{"no leader", func() error { return c.Remove(ctx, "n2") }, 503, "no leader"},
		{"not wired", func() error { _, err := c.Versions(ctx); return err }, 501, "not available"},
		{"join without id", func() error { return c.Join(ctx, JoinRequest{RaftAddr: "127.0.0.1:1"}) }, 400, "join needs id"},
		{"bad version", func() error { _, err := c.Version(ctx, 0); return err }, 400, "not a positive number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var apiErr *Error
			err := tc.call()
			if !errors.As(err, &apiErr) || apiErr.Status != tc.code || !strings.Contains(apiErr.Message, tc.msg) {
				t.Fatalf("got %v, want HTTP %d with %q", err, tc.code, tc.msg)
			}
		})
	}
	resp, err := http.Post("http://"+s.Addr().String()+"/v1/cluster/join", "application/json", strings.NewReader(`{"id":"n2","raft_addr":"x","bogus":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || len(f.joined) != 0 {
		t.Fatalf("unknown JSON field: status %d, joined %v; want 400 and nothing joined", resp.StatusCode, f.joined)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	f := &fakeNode{ready: errors.New("not in quorum")}
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "tern_test_gauge", Help: "test"})
	reg.MustRegister(g)
	s := serve(t, Options{Status: f, Registry: reg})
	base := "http://" + s.Addr().String()
	get := func(p string) (int, string) {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp.StatusCode, b.String()
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "not in quorum") {
		t.Errorf("/readyz = %d %s, want 503 with the reason", code, body)
	}
	f.ready = nil
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz when ready = %d", code)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "tern_test_gauge") {
		t.Errorf("/metrics = %d, lacks the registered gauge", code)
	}
	if code, body := get("/v1/nothing"); code != 404 || !strings.Contains(body, `"error"`) {
		t.Errorf("unknown endpoint = %d %s", code, body)
	}
}

type fakeSite struct{ load SiteLoad }

func (f fakeSite) SiteLoad(context.Context) (SiteLoad, error) { return f.load, nil }

// TestSiteLoadShape: /v1/site/load answers in the shape Tern's own load
// check reads: "load" set, and no "capacity" (a zero capacity is not a
// capacity; the pool member's own capacity: applies).
func TestSiteLoadShape(t *testing.T) {
	s := serve(t, Options{Site: fakeSite{SiteLoad{Load: 42, PacketRate: 1000, VIPs: 1, Servers: 3, Serving: 2}}})
	resp, err := http.Get("http://" + s.Addr().String() + "/v1/site/load")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d, %v", resp.StatusCode, err)
	}
	if body["load"] != 42.0 {
		t.Errorf("load = %v, want 42", body["load"])
	}
	if _, ok := body["capacity"]; ok {
		t.Errorf("capacity present in %v: a load check would read it as the member's capacity", body)
	}
	noSite := serve(t, Options{})
	resp2, err := http.Get("http://" + noSite.Addr().String() + "/v1/site/load")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusNotImplemented {
		t.Errorf("without a dispatcher backend: %d, want 501", resp2.StatusCode)
	}
}
