package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dnsserver"
	"github.com/ternlb/tern/geo"
	"github.com/ternlb/tern/probes"
	"github.com/ternlb/tern/selector"
)

// Options tune a Node beyond its configuration.
type Options struct {
	Logger *slog.Logger
	// ProbeWait bounds how long a node waits at start for one probe round
	// before it serves pools (default 3s); members still unprobed then
	// answer with their pool's initial state.
	ProbeWait time.Duration
	// Registry receives the node's metrics; nil: a new one.
	Registry *prometheus.Registry
}

// Node is one running Tern node.
type Node struct {
	log       *slog.Logger
	dns       *dnsserver.Server
	api       *api.Server // nil when node.api is not set
	reg       *prometheus.Registry
	probeWait time.Duration
	started   time.Time

	swap chan *generation // Reload -> Run: a validated new generation

	mu    sync.Mutex // guards everything below; never taken on the query path
	gen   *generation
	admin map[probes.Key]probes.Admin // run-time admin states, kept across reloads
}

// generation is one configuration with everything compiled from it.
type generation struct {
	cfg    *config.Config
	geo    *geo.DB             // nil without a database
	base   *dnsserver.Snapshot // pools at their configured initial states
	prober *probes.Prober
	// prev is the generation this one replaced: until this one's probes
	// have a result for a member, the member keeps prev's verdict.
	prev *generation
}

// New compiles cfg and builds a node ready to Run. It fails on any problem
// in the configuration or its zone files.
func New(cfg *config.Config, o Options) (*Node, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ProbeWait == 0 {
		o.ProbeWait = 3 * time.Second
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	n := &Node{
		log:       o.Logger,
		reg:       o.Registry,
		probeWait: o.ProbeWait,
		swap:      make(chan *generation),
		admin:     map[probes.Key]probes.Admin{},
	}
	g, err := n.build(cfg, nil)
	if err != nil {
		return nil, err
	}
	srv, err := dnsserver.New(dnsserver.Options{
		Addrs:      cfg.Node.DNS,
		UDPSockets: cfg.Node.UDPSockets,
		TCPIdle:    cfg.Node.TCPIdle.D(),
		UDPSize:    cfg.Node.UDPSize,
		Logger:     o.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("dns server: %w", err)
	}
	n.dns = srv
	n.gen = g
	if cfg.Node.API != "" {
		n.api, err = api.New(api.Options{
			Addr:      cfg.Node.API,
			Status:    n,
			Pools:     apiPools{n},
			Explainer: n,
			Registry:  n.reg,
			Logger:    o.Logger,
		})
		if err != nil {
			return nil, err
		}
	}
	for _, c := range g.prober.Collectors() {
		if err := n.reg.Register(c); err != nil {
			return nil, fmt.Errorf("register probe metrics: %w", err)
		}
	}
	return n, nil
}

// build compiles cfg into a generation whose prober reports to n.
func (n *Node) build(cfg *config.Config, prev *generation) (*generation, error) {
	var reuse *geo.DB
	if prev != nil {
		reuse = prev.geo
	}
	db, ps := openGeo(cfg, reuse)
	if len(ps) > 0 {
		return nil, ps
	}
	snap, ps := compileWith(cfg, db)
	if len(ps) > 0 {
		return nil, ps
	}
	g := &generation{cfg: cfg, geo: db, base: snap}
	pr, err := probes.New(cfg, probes.Options{
		Logger:   n.log,
		Observer: probes.ObserverFunc(func([]probes.Verdict) { n.republish(g) }),
	})
	if err != nil {
		return nil, fmt.Errorf("probes: %w", err)
	}
	g.prober = pr
	return g, nil
}

// Run probes and serves until ctx ends, then stops in reverse start order:
// DNS first, then probes.
func (n *Node) Run(ctx context.Context) error {
	n.started = time.Now()
	n.mu.Lock()
	g := n.gen
	n.mu.Unlock()

	var stopProber context.CancelFunc
	proberDone := make(chan error, 1)
	// A generation's prober and geo watcher run together and stop together.
	startProber := func(g *generation) {
		var proberCtx context.Context
		proberCtx, stopProber = context.WithCancel(ctx)
		go func(g *generation, ctx context.Context) {
			if g.geo == nil {
				proberDone <- g.prober.Run(ctx)
				return
			}
			geoDone := make(chan error, 1)
			go func() { geoDone <- g.geo.Run(ctx) }()
			err := g.prober.Run(ctx)
			<-geoDone
			proberDone <- err
		}(g, proberCtx)
	}
	startProber(g)

	// No first-query blindness: one probe round before pools are served.
	if err := g.prober.FirstRound(ctx, n.probeWait); err != nil && !errors.Is(err, context.Canceled) {
		n.log.Warn("serving before every member was probed; unprobed members answer with their pool's initial state", "err", err)
	}
	n.republish(g)

	dnsCtx, stopDNS := context.WithCancel(context.Background())
	dnsDone := make(chan error, 1)
	go func() { dnsDone <- n.dns.Run(dnsCtx) }()
	apiCtx, stopAPI := context.WithCancel(context.Background())
	apiDone := make(chan error, 1)
	if n.api != nil {
		go func() { apiDone <- n.api.Run(apiCtx) }()
	} else {
		apiDone <- nil
	}

	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-dnsDone:
			dnsDone = nil
			break loop
		case err = <-apiDone:
			apiDone = nil
			if err != nil {
				break loop
			}
		case ng := <-n.swap:
			stopProber()
			<-proberDone
			startProber(ng)
			n.republish(ng)
		}
	}
	stopAPI()
	if apiDone != nil {
		if e := <-apiDone; err == nil {
			err = e
		}
	}
	stopDNS()
	if dnsDone != nil {
		if e := <-dnsDone; err == nil {
			err = e
		}
	}
	stopProber()
	<-proberDone
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// republish builds a snapshot from g's compiled pools and the latest
// verdicts, and stores it, if g is still the current generation.
func (n *Node) republish(g *generation) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if g != n.gen {
		return
	}
	n.dns.Store(n.snapshotLocked(g))
}

func (n *Node) snapshotLocked(g *generation) *dnsserver.Snapshot {
	vs := g.prober.Verdicts() // pool order, then member order: as base.Pools
	var prev map[probes.Key]probes.Verdict
	if g.prev != nil {
		prev = map[probes.Key]probes.Verdict{}
		for _, v := range g.prev.prober.Verdicts() {
			prev[v.Key] = v
		}
	}
	snap := *g.base
	snap.Pools = make([]*selector.Pool, len(g.base.Pools))
	i := 0
	for pi, p := range g.base.Pools {
		st := make([]selector.Status, len(p.Members))
		for mi := range p.Members {
			v := vs[i]
			i++
			if !v.Probed && !v.Forced {
				if pv, ok := prev[v.Key]; ok && pv.Probed {
					v.Up, v.Load, v.HasLoad = pv.Up, pv.Load, pv.HasLoad
				}
			}
			st[mi] = selector.Status{Up: v.Up, Drain: v.Drain, Load: v.Load}
		}
		snap.Pools[pi] = p.WithStatus(st)
	}
	// all_down fallbacks must point at the pools with these states, not at
	// the compiled ones.
	linked, err := selector.Link(snap.Pools)
	if err != nil {
		// Compile linked the same pools; only a bug gets here.
		n.log.Error("linking pools failed; serving without fallbacks' current health", "err", err)
		return &snap
	}
	snap.Pools = linked
	return &snap
}

// DNSAddrs returns the addresses the DNS server listens on.
func (n *Node) DNSAddrs() []net.Addr { return n.dns.Addrs() }

// Serving is closed once the DNS listeners serve.
func (n *Node) Serving() <-chan struct{} { return n.dns.Ready() }

// APIAddr is the address the API listens on, nil without one.
func (n *Node) APIAddr() net.Addr {
	if n.api == nil {
		return nil
	}
	return n.api.Addr()
}

// Registry is where the node's metrics are.
func (n *Node) Registry() *prometheus.Registry { return n.reg }

// Reload validates cfg whole and, only if it is good, swaps it in. A bad
// configuration changes nothing: the old one keeps serving. Run must be
// running.
func (n *Node) Reload(ctx context.Context, cfg *config.Config) error {
	ng, err := n.build(cfg, nil)
	if err != nil {
		return err
	}
	n.mu.Lock()
	old := n.gen
	if !slices.Equal(cfg.Node.DNS, old.cfg.Node.DNS) {
		n.log.Warn("node.dns changed; listeners change only on restart", "serving", old.cfg.Node.DNS, "configured", cfg.Node.DNS)
	}
	// Run-time admin states outlive a reload where their member still is.
	for k, a := range n.admin {
		if err := ng.prober.SetAdmin(k.Pool, k.Member, a); err != nil {
			delete(n.admin, k)
		}
	}
	old.prev = nil // keep one generation back, not a chain
	ng.prev = old
	n.gen = ng
	n.mu.Unlock()
	select {
	case n.swap <- ng:
	case <-ctx.Done():
		return ctx.Err()
	}
	n.log.Info("configuration reloaded", "version", ng.base.Version)
	return nil
}

// SetAdmin sets a member's admin state at run time (auto, up, down, drain).
func (n *Node) SetAdmin(pool, address, state string) error {
	a, err := probes.ParseAdmin(state)
	if err != nil {
		return err
	}
	n.mu.Lock()
	g := n.gen
	if err := g.prober.SetAdmin(pool, address, a); err != nil {
		n.mu.Unlock()
		return err
	}
	n.admin[probes.Key{Pool: pool, Member: address}] = a
	n.mu.Unlock()
	n.republish(g)
	return nil
}
