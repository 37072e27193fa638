package test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternlb/tern/internal/eventually"
	"github.com/ternlb/tern/internal/nsrun"
)

// nsProxy is an HTTP reverse proxy serving :80 in a namespace, each
// request on a new connection to upstream (so the tier below balances
// every request), which it dials from inside that namespace too.
type nsProxy struct {
	served atomic.Int64
}

// startProxy runs an nsProxy in role's namespace, in this process: its
// listening socket and every socket it dials are made on a thread
// switched into the namespace (nsrun.Do), so they live there.
func (tp *dtopo) startProxy(role, upstream string) *nsProxy {
	t := tp.t
	ns := tp.hosts[role]
	var ln net.Listener
	if err := nsrun.Do(ns, func() (err error) { ln, err = net.Listen("tcp", ":80"); return err }); err != nil {
		t.Fatalf("proxy %s: listen: %v", role, err)
	}
	target := &url.URL{Scheme: "http", Host: upstream}
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			err = nsrun.Do(ns, func() error { c, err = dialer.DialContext(ctx, network, addr); return err })
			return c, err
		},
	}
	p := &nsProxy{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			p.served.Add(1)
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return p
}

// TestDispatcherLayered: the layered topology of IBM's Edge Load
// Balancer, a proxy tier in front of a content tier. A front dispatcher
// balances the front VIP over two reverse proxies p1, p2 (which hold it on
// lo); their upstream is a second, internal dispatcher's VIP, balanced over
// three content servers s1-s3 (which hold that on lo). Every request from
// the client reaches a content server through both tiers, both proxies and
// all three content servers take requests, and each tier's replies bypass
// its dispatcher: the content servers answer the proxies, the proxies the
// client, straight. Each dispatcher's counters see only the requests (the
// direction to its VIP), and its interface receives a small part of the
// bytes the replies carry.
func TestDispatcherLayered(t *testing.T) {
	tp := newDTopo(t)
	front, inner := tp.addr(200), tp.addr(201)
	tp.host("client", 100)
	tp.host("f1", 2) // the front dispatcher
	tp.host("i1", 3) // the internal dispatcher
	var contents, proxies strings.Builder
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("s%d", i)
		tp.server(name, 10+i, inner)
		fmt.Fprintf(&contents, "        - {address: %s, mac: %q}\n", tp.addr(10+i), tp.mac(name))
	}
	proxy := map[string]*nsProxy{}
	for i := 1; i <= 2; i++ {
		name := fmt.Sprintf("p%d", i)
		tp.realServer(name, 20+i, front)
		proxy[name] = tp.startProxy(name, inner+":80")
		fmt.Fprintf(&proxies, "        - {address: %s, mac: %q}\n", tp.addr(20+i), tp.mac(name))
	}
	svc := func(vip, servers string) string {
		return fmt.Sprintf("  interface: eth0\n  services:\n    - vip: %s\n      port: 80\n      mode: mac\n      check: http\n      servers:\n%s", vip, servers)
	}
	di := tp.dispatch("i1", svc(inner, contents.String()))
	eventually.True(t, 10*time.Second, func() bool {
		return strings.Contains(di.out.String(), "serving=3") && tp.hasAddr("i1", inner)
	}, "internal dispatcher forwarding to 3 content servers")
	// The front's checks of the proxies pass through them to the
	// internal tier: a proxy is up when the tier behind it answers.
	df := tp.dispatch("f1", svc(front, proxies.String()))
	eventually.True(t, 10*time.Second, func() bool {
		return strings.Contains(df.out.String(), "serving=2") && tp.hasAddr("f1", front)
	}, "front dispatcher forwarding to 2 proxies")

	frx0, _ := tp.ifaceBytes("f1")
	irx0, _ := tp.ifaceBytes("i1")
	crx0, _ := tp.ifaceBytes("client")
	prx0 := map[string]int64{}
	for name := range proxy {
		prx0[name], _ = tp.ifaceBytes(name)
	}
	fb0, ib0 := dispLoad(df.out.String(), front, "bytes"), dispLoad(di.out.String(), inner, "bytes")
	const n = 60
	by, errs := tp.get("client", "http://"+front+"/", n)
	if len(errs) > 0 {
		t.Fatalf("%d of %d requests through both tiers failed: %v", len(errs), n, errs[0])
	}
	for _, s := range []string{"s1", "s2", "s3"} {
		if by[s] == 0 {
			t.Fatalf("content server %s got none of %d requests: %v", s, n, by)
		}
	}
	var viaProxies int64
	for name, p := range proxy {
		if p.served.Load() == 0 {
			t.Fatalf("proxy %s got none of the %d requests", name, n)
		}
		viaProxies += p.served.Load()
	}
	if viaProxies != n {
		t.Fatalf("the proxies served %d requests, the client made %d", viaProxies, n)
	}
	frx1, _ := tp.ifaceBytes("f1")
	irx1, _ := tp.ifaceBytes("i1")
	crx1, _ := tp.ifaceBytes("client")
	var proxiesRx int64
	for name := range proxy {
		rx, _ := tp.ifaceBytes(name)
		proxiesRx += rx - prx0[name]
	}
	toClient := crx1 - crx0
	t.Logf("requests by content server %v, by proxy p1=%d p2=%d; client received %d bytes, proxies %d; front dispatcher received %d, internal %d",
		by, proxy["p1"].served.Load(), proxy["p2"].served.Load(), toClient, proxiesRx, frx1-frx0, irx1-irx0)
	if toClient < n*20000 || proxiesRx < n*20000 {
		t.Fatalf("client received %d bytes, proxies %d: want at least %d each", toClient, proxiesRx, n*20000)
	}
	// Replies bypass each dispatcher: the proxies' replies to the client
	// never reach the front one, the content servers' replies to the
	// proxies never the internal one.
	if frx1-frx0 > toClient/10 {
		t.Fatalf("front dispatcher received %d bytes of the client's %d: the proxies' replies do not bypass it", frx1-frx0, toClient)
	}
	if irx1-irx0 > proxiesRx/10 {
		t.Fatalf("internal dispatcher received %d bytes of the proxies' %d: the content servers' replies do not bypass it", irx1-irx0, proxiesRx)
	}
	// Each dispatcher's program forwarded the requests (SYN, request,
	// ACKs, FIN: several packets per request) and only them: what it
	// forwarded is a small part of what the replies carried.
	eventually.True(t, 3*time.Second, func() bool {
		return dispForwarded(df.out.String(), front) >= n*4 && dispForwarded(di.out.String(), inner) >= n*4
	}, "both dispatchers counted the requests")
	fb, ib := dispLoad(df.out.String(), front, "bytes")-fb0, dispLoad(di.out.String(), inner, "bytes")-ib0
	t.Logf("forwarded by the front dispatcher %d bytes, by the internal %d", fb, ib)
	if fb == 0 || fb > toClient/10 || ib == 0 || ib > proxiesRx/10 {
		t.Fatalf("forwarded bytes: front %d (client received %d), internal %d (proxies received %d): want each above 0 and at most a tenth of its tier's replies", fb, toClient, ib, proxiesRx)
	}
}
