package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dispatcher"
	"github.com/ternlb/tern/dnsserver"
	"github.com/ternlb/tern/geo"
	"github.com/ternlb/tern/health"
	"github.com/ternlb/tern/internal/run"
	"github.com/ternlb/tern/probes"
	"github.com/ternlb/tern/raftstore"
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

	// ProbeSource is the local address probes leave from (zero: the
	// kernel chooses), so that a backend sees which node probes it.
	ProbeSource netip.Addr
	// VerdictMaxAge: in a cluster, a node's health verdict older than this
	// is ignored (default: three times the longest check interval, at
	// least 30s). VerdictRefresh is how often a node re-proposes verdicts
	// that did not change (default VerdictMaxAge/3).
	VerdictMaxAge  time.Duration
	VerdictRefresh time.Duration
	// APIToken is the bearer token the API requires for writes (reads
	// too with node.api_read_token); empty: node.api_token or
	// node.api_token_file. Without any, a node whose node.api is beyond
	// loopback refuses to start, and a loopback one answers writes from
	// loopback clients only. In a cluster every node must have the same:
	// nodes use it to join and to forward writes to the leader.
	APIToken string
	// Raft, when set, adjusts the Raft store's options after they are
	// derived from the node section (tests shorten timeouts with it).
	Raft func(*raftstore.Options)
	// Version is the binary's version, for tern_build_info (empty: the
	// main module's).
	Version string
}

// Node is one running Tern node.
type Node struct {
	log       *slog.Logger
	dns       *dnsserver.Server
	api       *api.Server // nil when node.api is not set
	reg       *prometheus.Registry
	probeWait time.Duration
	source    netip.Addr
	token     string
	tls       *apiTLS // nil without node.tls: the API is plain HTTP
	started   time.Time

	// store is the Raft store; nil when the node runs standalone (no
	// node.raft).
	store          *raftstore.Store
	verdictMaxAge  time.Duration
	verdictRefresh time.Duration
	fresh          bool // the data directory was empty at start
	// probeNodes are the registered nodes the probe assignment is
	// computed from (see assignFilter); the FSM watcher updates it.
	probeNodes atomic.Pointer[[]raftstore.NodeID]
	kick       chan struct{} // cap 1: the reporter has something to look at (see report)

	swap   chan *generation // Reload or the FSM watcher -> Run: a validated new generation
	served atomic.Pointer[dnsserver.Snapshot]
	// zones keeps the zones of the last compiles, so that a new
	// configuration re-parses only the zone files that changed.
	zones *zoneCache

	mu    sync.Mutex     // guards everything below; never taken on the query path
	local *config.Config // the local file: node settings, and the cluster-wide part until the FSM has one
	gen   *generation
	// hv resolves every member's health and holds the snapshot built from
	// it (health.go); its run-time admin states (standalone) outlive
	// reloads where their member still is.
	hv *healthView
	// toReport are the members whose own observation changed since the
	// reporter last looked; reportAll: it must look at every member.
	toReport  map[health.Key]bool
	reportAll bool
	// reportNext is when the reporter looks at every member again for
	// refreshes (zero: only on a change).
	reportNext time.Time
	// failed is the log index of a replicated configuration that did not
	// compile here (so the watcher does not retry it every tick).
	failed uint64
	// configErr is the last failure to propose, load or compile a
	// configuration (a reload, the bootstrap proposal, a replicated
	// version); cleared when a configuration is next taken in. The node
	// keeps serving its last good configuration meanwhile.
	configErr string
	// reloadOK and reloadAt: whether the last configuration taken in was
	// good, and when one last was (tern_config_last_reload_success*).
	reloadOK bool
	reloadAt time.Time
	// localDigest is clusterDigest of the local file's cluster-wide part
	// (cluster nodes; localErr when it does not load), compared with the
	// cluster's current version for LocalFileDiffers.
	localDigest raftstore.Hash
	localErr    error
	digests     digestCache
	// lastQuorum is when this node last knew itself in quorum: the clock
	// verdicts age by while it is out of quorum.
	lastQuorum time.Time
	// forgot is what the leader last looked at to forget gone members.
	forgot forgetMark

	// seed is what a bootstrap node proposes as version 1: the bundle
	// built from the very bytes New validated and serves, and its zones'
	// stamps. nil once the cluster has a version at start, or elsewhere.
	seed *seedBundle
	// serials keeps a standalone node's zone serials (nil in a cluster).
	serials *serialStore

	events *api.EventLog // recent member state changes
	// probeLog is what this node's own probe events are computed from.
	probeLog *probeLog
	hist     *statsHistory        // the status page's plots
	rate     *api.RateMeter       // DNS queries per second
	disp     *dispatcher.Instance // nil without a dispatcher: section
}

// generation is one configuration with everything compiled from it.
type generation struct {
	// cv is the replicated configuration version this generation was
	// built from (zero: the local file).
	cv     raftstore.ConfigVersion
	cfg    *config.Config
	geo    *geo.DB             // nil without a database
	base   *dnsserver.Snapshot // pools at their configured initial states
	prober *probes.Prober
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
		source:    o.ProbeSource,
		token:     apiToken(cfg, o),
		swap:      make(chan *generation),
		kick:      make(chan struct{}, 1),
		toReport:  map[health.Key]bool{},
		reportAll: true,
		local:     cfg,
		zones:     newZoneCache(),
		events:    api.NewEventLog(eventsKept),
		probeLog:  newProbeLog(),
		hist:      newStatsHistory(),
		rate:      api.NewRateMeter(rateWindow),
		reloadOK:  true,
		reloadAt:  time.Now(),
	}
	n.verdictMaxAge, n.verdictRefresh = verdictTiming(cfg, o.VerdictMaxAge, o.VerdictRefresh)
	if cfg.Node.APIReadToken && n.token == "" {
		return nil, fmt.Errorf("node %q: node.api_read_token is set but there is no token: set node.api_token_file (or --api-token)", cfg.Node.Name)
	}
	if cfg.Node.API != "" && n.token == "" && !api.LoopbackOnly(cfg.Node.API) {
		return nil, insecureAPI(cfg, api.ErrInsecure)
	}
	var err error
	if n.tls, err = apiTLSFor(cfg); err != nil {
		return nil, fmt.Errorf("node %q: %w", cfg.Node.Name, err)
	}
	built := false
	defer func() {
		if !built && n.store != nil {
			n.store.Close()
		}
	}()
	start := cfg
	var cv raftstore.ConfigVersion
	if cfg.Node.Raft != "" {
		if err := n.openStore(cfg, o); err != nil {
			return nil, err
		}
		n.setProbeNodes(n.store.State())
		// The local file as `tern apply` would send it, its zones compiled
		// once here: the cluster's version of the same files, and the
		// generation built below, take them from the cache.
		local, lerr := n.localBundle(cfg)
		st := n.store.State()
		// A restarted node resumes from its snapshot's configuration (the
		// log after it is applied once a leader is heard from).
		v, has := st.Config()
		if has {
			if c, err := n.clusterConfig(st, v); err != nil {
				n.log.Error("the replicated configuration does not load here; serving the local file until a good version arrives", "version", v.Version, "err", err)
				n.noteConfigLocked(fmt.Sprintf("version %d does not load here: %v", v.Version, err))
			} else {
				start, cv = c, v
			}
		}
		switch {
		case cv.Version > 0:
		case lerr == nil:
			// Serve (and, bootstrapping, later propose) the bytes read now,
			// not whatever the files hold when this node first leads.
			if start, err = n.bundleConfig(local); err != nil {
				return nil, err
			}
			if cfg.Node.Bootstrap && !has {
				n.seed = &seedBundle{bundle: local}
			}
		case cfg.Node.Bootstrap && !has:
			return nil, lerr
		}
		n.noteLocalFile(local, lerr)
	}
	g, err := n.build(start, nil)
	if err != nil && cv.Version > 0 {
		n.log.Error("the replicated configuration does not compile here; serving the local file until a good version arrives", "version", cv.Version, "err", err)
		n.failed = cv.Index
		n.noteConfigLocked(fmt.Sprintf("version %d does not compile here: %v", cv.Version, err))
		start, cv = cfg, raftstore.ConfigVersion{}
		g, err = n.build(cfg, nil)
	}
	if err != nil {
		return nil, err
	}
	g.setVersion(cv)
	if n.seed != nil {
		n.seed.zones = n.zones.stamps(g.cfg, g.base)
	}
	if n.store == nil {
		var serr error
		if n.serials, serr = openSerials(cfg); serr != nil {
			n.log.Warn("zone serials are kept in memory only: after a restart the zone files' serials are served again", "err", serr)
		}
		n.setSerials(g)
	}
	// Listeners, RRL, TSIG keys and transfer settings come from the local
	// file and take effect at start.
	do, err := dnsserver.OptionsFrom(cfg)
	if err != nil {
		return nil, fmt.Errorf("dnsserver: %w", err)
	}
	do.Logger = o.Logger
	do.CookieSecret = cookieSecret(n.token)
	srv, err := dnsserver.New(do)
	if err != nil {
		return nil, err // dnsserver names itself
	}
	n.hv = n.newHealthView()
	if cfg.Dispatcher != nil {
		ro := dispatcher.RunOptions{Logger: o.Logger}
		if n.store != nil {
			// Both dispatchers of a pair forward by the cluster's agreed
			// health of their servers, so they build the same tables.
			ro.Health = dispatcherHealth{n}
		}
		n.disp, err = dispatcher.NewInstance(cfg, ro)
		if err != nil {
			return nil, err // "dispatch: ..." from the dispatcher
		}
		if n.store != nil {
			n.hv.disp, n.hv.dispChecks = n.disp.HealthPools(), cfg.Checks
		}
	}
	n.dns = srv
	n.gen = g
	if err := n.installHealthLocked(g); err != nil {
		return nil, err
	}
	if cfg.Node.API != "" {
		ao := api.Options{
			Addr:          cfg.Node.API,
			Token:         n.token,
			ReadToken:     cfg.Node.APIReadToken,
			PublicMetrics: cfg.Node.APIPublicMetrics,
			Status:        n,
			Pools:         apiPools{n},
			Explainer:     n,
			Events:        n,
			Stats:         n,
			Site:          n,
			Shedder:       apiPools{n},
			Registry:      n.reg,
			Logger:        o.Logger,
		}
		if n.tls != nil {
			// Peers present the node certificate: it admits their joins
			// and forwarded commands (see api.Options.ClientCAs).
			ao.CertFile, ao.KeyFile, ao.ClientCAs = n.tls.certFile, n.tls.keyFile, n.tls.cas
		}
		if n.store != nil {
			ao.Cluster, ao.Configs, ao.Forwarder = apiCluster{n}, apiConfigs{n}, apiForwarder{n}
			ao.Snapshots = apiSnapshots{n}
		}
		n.api, err = api.New(ao)
		if errors.Is(err, api.ErrInsecure) {
			return nil, insecureAPI(cfg, err)
		}
		if err != nil {
			return nil, err
		}
	}
	collectors := append(g.prober.Collectors(), srv.Collectors()...)
	collectors = append(collectors, dnssecCollector{n}, latencyCollector{n})
	if n.store != nil {
		collectors = append(collectors, n.store.Collector())
	}
	if n.disp != nil {
		collectors = append(collectors, n.disp.Collector())
	}
	if err := n.registerMetrics(collectors, o.Version); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	built = true
	return n, nil
}

// insecureAPI is the refusal to start an API beyond loopback without a
// token, at node.api's line, saying how to fix it either way.
func insecureAPI(cfg *config.Config, err error) error {
	port := "8054"
	if _, p, e := net.SplitHostPort(cfg.Node.API); e == nil && p != "" {
		port = p
	}
	at := cfg.Name
	if l := cfg.Line("node.api"); l > 0 {
		at = fmt.Sprintf("%s:%d", at, l)
	}
	return fmt.Errorf("%s: node.api %q: %w, so anyone who reaches it could change the cluster (add exec checks, replace zones): give the node a token with node.api_token_file: /etc/tern/api-token (a file holding it, the same on every node; or --api-token / TERN_API_TOKEN), or listen on loopback only: api: \"127.0.0.1:%s\"",
		at, cfg.Node.API, err, port)
}

// build compiles cfg into a generation whose prober reports to n.
func (n *Node) build(cfg *config.Config, prev *generation) (*generation, error) {
	var reuse *geo.DB
	if prev != nil {
		reuse = prev.geo
	}
	db, snap, ps := n.compile(cfg, reuse)
	if len(ps) > 0 {
		return nil, ps
	}
	g := &generation{cfg: cfg, geo: db, base: snap}
	var filter func(pool, member string) bool
	if n.store != nil {
		filter = assignFilter(n.store.ID(), func() []raftstore.NodeID { return *n.probeNodes.Load() })
	}
	pr, err := probes.New(cfg, probes.Options{
		Logger: n.log,
		Source: n.source,
		Filter: filter,
		// cfg's node section is the local file's, also for a replicated
		// configuration (clusterConfig): only this host decides whether
		// it runs commands.
		AllowExec: cfg.Node.AllowExecChecks,
		Observer: probes.ObserverFunc(func(changed []probes.Verdict) {
			n.recordProbes(cfg.Node.Name, changed)
			n.probed(g, changed)
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("probes: %w", err)
	}
	g.prober = pr
	if prev != nil {
		pr.Inherit(prev.prober)
	}
	return g, nil
}

// compile compiles cfg with the geo database it names (reuse: an open one
// to keep when it is the same file) without building a prober: the whole
// validation a configuration passes before it serves or is proposed.
func (n *Node) compile(cfg *config.Config, reuse *geo.DB) (*geo.DB, *dnsserver.Snapshot, config.Problems) {
	return n.compileGeo(cfg, n.geoFile(cfg), reuse)
}

// compileGeo is compile with the geo database at geoPath on this host.
func (n *Node) compileGeo(cfg *config.Config, geoPath string, reuse *geo.DB) (*geo.DB, *dnsserver.Snapshot, config.Problems) {
	db, ps := openGeo(cfg, geoPath, reuse, n.log)
	if len(ps) > 0 {
		return nil, nil, ps
	}
	snap, ps := compileKeyed(cfg, db, n.zones, func(p string) string { return n.keyFile(cfg, p) })
	if len(ps) > 0 {
		return nil, nil, ps
	}
	return db, snap, nil
}

// geoFile is where cfg's MaxMind database is on this host. A replicated
// configuration was not loaded from this host: its database is the one the
// local file names, or, when the local file names none, the replicated
// path resolved against the local file's folder.
func (n *Node) geoFile(cfg *config.Config) string {
	if cfg.Geo.Database == "" {
		return ""
	}
	if p := cfg.HostPath(cfg.Geo.Database); p != "" {
		return p
	}
	n.mu.Lock()
	local := n.local
	n.mu.Unlock()
	if local == nil || local == cfg {
		return ""
	}
	if local.Geo.Database != "" {
		return local.HostPath(local.Geo.Database)
	}
	return local.HostPath(cfg.Geo.Database)
}

// Run probes and serves until ctx ends or a part fails, then stops in
// reverse start order: the cluster tasks, the re-signer and rate sampler,
// the dispatcher, the API, DNS, probes, and last the Raft store. It is one
// run.Group, so the first part to fail stops the others; the error names
// the part.
func (n *Node) Run(ctx context.Context) error {
	n.started = time.Now()
	var g run.Group
	if n.store != nil {
		// Closed last; a failure to close is logged, not the node's.
		g.Add(run.Part{Name: "raft store", Stop: func() error {
			if err := n.store.Close(); err != nil {
				n.log.Warn("close the raft store", "err", err)
			}
			return nil
		}})
	}
	g.Add(n.probing())
	g.Go("dns", n.dns.Run)
	if n.api != nil {
		g.Go("api", untilStopped(n.api.Run))
	}
	if n.disp != nil {
		g.Go("dispatcher", untilStopped(n.disp.Run))
	}
	g.Go("query rate", func(ctx context.Context) error { n.sampleRate(ctx); return nil })
	g.Go("re-sign", func(ctx context.Context) error {
		keys := ""
		n.mu.Lock()
		if n.local != nil {
			keys = keyStatePath(n.local)
		}
		n.mu.Unlock()
		resign(ctx, n.served.Load, time.Minute, keys, n.log)
		return nil
	})
	if n.store != nil {
		n.addCluster(&g)
	}
	err := g.Run(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// untilStopped runs f and, when it returns nil before ctx ends (a part
// with nothing to do), waits for ctx: only its error stops the node.
func untilStopped(f func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := f(ctx); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}
}

// probing is the part that runs the current generation's prober and geo
// watcher. Start runs one probe round before the later parts (DNS) start,
// so no pool is served blind; Run swaps in each new generation's prober
// (Reload, the FSM watcher) until the node stops, then stops the last.
func (n *Node) probing() run.Part {
	var cur *run.Started
	// A generation's prober and geo watcher run together and stop together.
	start := func(ctx context.Context, g *generation) {
		var pg run.Group
		pg.Go("checks", g.prober.Run)
		if g.geo != nil {
			pg.Go("geo database", g.geo.Run)
		}
		cur = pg.Start(ctx)
	}
	return run.Part{
		Name: "probes",
		Start: func(ctx context.Context) error {
			n.mu.Lock()
			g := n.gen
			n.mu.Unlock()
			start(ctx, g)
			if err := g.prober.FirstRound(ctx, n.probeWait); err != nil && !errors.Is(err, context.Canceled) {
				n.log.Warn("serving before every member was probed; unprobed members answer with their pool's initial state", "err", err)
			}
			n.republish(g)
			return nil
		},
		Run: func(ctx context.Context) error {
			for {
				select {
				case <-ctx.Done():
					return cur.Stop()
				case <-cur.Done(): // ended or failed on its own
					return cur.Err()
				case ng := <-n.swap:
					if err := cur.Stop(); err != nil {
						return err
					}
					start(ctx, ng)
					n.republish(ng)
				}
			}
		},
	}
}

// republish serves g's pools with their members' current states, if g is
// still the current generation: it re-resolves what the clock made due and
// serves the last snapshot built (Run calls it once g's prober runs).
func (n *Node) republish(g *generation) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if g != n.gen {
		return
	}
	n.resolveLocked(nil)
	n.serveLocked()
}

// probed takes in g's probe changes: their members are re-resolved, and
// reported to the cluster.
func (n *Node) probed(g *generation, changed []probes.Verdict) {
	keys := make([]health.Key, len(changed))
	for i, v := range changed {
		keys[i] = health.Key{Pool: v.Key.Pool, Member: v.Key.Member}
	}
	n.mu.Lock()
	if g == n.gen {
		n.resolveLocked(keys)
		n.reportLocked(keys)
	}
	n.mu.Unlock()
}

// newHealthView returns the node's health resolution: by this node's
// store ID and the quorum clock in a cluster.
func (n *Node) newHealthView() *healthView {
	if n.store == nil {
		return newHealthView(health.NodeID(n.local.Node.Name), false, 0, func() (time.Time, bool) { return time.Now(), true })
	}
	h := newHealthView(health.NodeID(n.store.ID()), true, n.verdictMaxAge, n.clockLocked)
	h.fsm = n.store.FSM()
	st := h.fsm.State()
	h.src.st, h.since = st, st.Index()
	h.r.SetNodes(healthNodes(st))
	return h
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

// APIURL is the base URL of the API (https with node.tls), without a
// trailing slash; the status page is at its root. Empty without an API.
func (n *Node) APIURL() string {
	if n.api == nil {
		return ""
	}
	scheme := "http"
	if n.tls != nil {
		scheme = "https"
	}
	return scheme + "://" + n.api.Addr().String()
}

// Registry is where the node's metrics are.
func (n *Node) Registry() *prometheus.Registry { return n.reg }

// Reload takes in a new local configuration file. Standalone, it is
// validated whole and, only if it is good, swapped in; a bad one changes
// nothing. In a cluster it is validated the same way, but only its node
// settings and DNS protection settings (rrl, tsig, transfer) are taken in:
// the cluster-wide part is never proposed (that is `tern apply`'s job); a
// file whose cluster-wide part differs from the cluster's current version
// is logged and reported (Status.LocalFileDiffers). A rejected reload is
// reported as Status.LastConfigError. Run must be running.
func (n *Node) Reload(ctx context.Context, cfg *config.Config) error {
	err := n.reload(ctx, cfg)
	if err != nil && ctx.Err() == nil {
		n.ReloadFailed(err)
	}
	return err
}

// ReloadFailed records a reload that failed before Reload (the file did
// not load), for Status.LastConfigError.
func (n *Node) ReloadFailed(err error) {
	n.setConfigErr(fmt.Sprintf("reload rejected, the previous configuration keeps serving: %v", err))
}

func (n *Node) reload(ctx context.Context, cfg *config.Config) error {
	if n.store != nil {
		return n.reloadCluster(cfg)
	}
	n.mu.Lock()
	old := n.gen
	n.mu.Unlock()
	ng, err := n.build(cfg, old)
	if err != nil {
		return err
	}
	n.setSerials(ng)
	n.mu.Lock()
	n.local = cfg
	n.mu.Unlock()
	if err := n.install(ctx, ng); err != nil {
		return err
	}
	n.reconfigureDNS(cfg)
	n.setConfigErr("")
	n.log.Info("configuration reloaded", "version", ng.base.Version)
	return nil
}

// setSerials gives a standalone generation its zones' serials from the
// node's serial store (see serials.go).
func (n *Node) setSerials(g *generation) {
	serials, err := n.serials.next(n.zones.stamps(g.cfg, g.base))
	if err != nil {
		n.log.Warn("zone serials not written: a restart may serve older ones", "err", err)
	}
	g.base.Serials = serials
}

// setConfigErr records the last configuration failure ("" clears it).
func (n *Node) setConfigErr(msg string) {
	n.mu.Lock()
	n.noteConfigLocked(msg)
	n.mu.Unlock()
}

// reconfigureDNS applies the local file's rate limiting, TSIG keys and
// transfer settings to the running DNS server (its listeners change only
// on restart). The file was validated whole before this; a failure here is
// logged and the previous settings stay.
func (n *Node) reconfigureDNS(cfg *config.Config) {
	do, err := dnsserver.OptionsFrom(cfg)
	if err == nil {
		do.Logger = n.log
		do.CookieSecret = cookieSecret(n.token)
		err = n.dns.Reconfigure(do)
	}
	if err != nil {
		n.log.Error("DNS settings not reloaded; the previous ones stay", "err", err)
	}
}

// setVersion records the replicated configuration version g serves and
// takes each zone's SOA serial from it (derived by the FSM when it made
// the version, see serials.go), so every node serves and transfers the
// same serial, and it never goes backwards.
func (g *generation) setVersion(cv raftstore.ConfigVersion) {
	g.cv = cv
	if cv.Version > 0 {
		g.base.Serials = versionSerials(cv, g.base.Zones)
	}
}

// install makes ng the current generation, serves its pools, and has Run
// start its prober.
func (n *Node) install(ctx context.Context, ng *generation) error {
	n.mu.Lock()
	old := n.gen
	if !slices.Equal(ng.cfg.Node.DNS, old.cfg.Node.DNS) {
		n.log.Warn("node.dns changed; listeners change only on restart", "serving", old.cfg.Node.DNS, "configured", ng.cfg.Node.DNS)
	}
	// Run-time admin states outlive a reload where their member still is
	// (the prober keeps them too, for its metrics).
	for k, a := range n.hv.src.admin {
		pa, _ := probes.ParseAdmin(a.String())
		if err := ng.prober.SetAdmin(k.Pool, k.Member, pa); err != nil {
			delete(n.hv.src.admin, k)
		}
	}
	if err := n.installHealthLocked(ng); err != nil {
		n.mu.Unlock()
		return err
	}
	n.gen = ng
	n.serveLocked()
	n.reportAllLocked()
	byKey := n.hv.byKey
	n.probeLog.keep(func(k probes.Key) bool { _, ok := byKey[health.Key(k)]; return ok })
	n.mu.Unlock()
	select {
	case n.swap <- ng:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SetAdmin sets a member's admin state at run time (auto, up, down,
// drain) on this node alone; in a cluster use the API's SetAdmin, which
// replicates it.
func (n *Node) SetAdmin(pool, address, state string) error {
	ha, err := health.ParseAdmin(state)
	if err != nil {
		return fmt.Errorf("admin state %q: %w", state, probes.ErrAdmin)
	}
	a := probes.AdminAuto // a shed share changes answers, not probing
	if ha.Shed() == 0 {
		if a, err = probes.ParseAdmin(ha.String()); err != nil {
			return err
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	g := n.gen
	v, err := g.prober.Verdict(pool, address)
	if err != nil {
		return err
	}
	if err := g.prober.SetAdmin(pool, address, a); err != nil {
		return err
	}
	k := health.Key{Pool: v.Key.Pool, Member: v.Key.Member}
	n.hv.src.admin[k] = ha
	n.hv.r.Touch(k)
	n.resolveLocked(nil)
	return nil
}
