package dispatcher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dispatcher/ha"
	"github.com/ternlb/tern/probes"
)

// Command is `tern dispatch --config FILE`: it runs the dispatcher of the
// configuration's dispatcher: section until SIGTERM or SIGINT.
func Command() *cli.Command {
	return &cli.Command{
		Name:  "dispatch",
		Usage: "run the packet dispatcher (XDP load balancer with direct server return)",
		Description: `Attaches the XDP load balancer to dispatcher.interface, keeps its Maglev
tables in step with the servers' health checks, and shares the VIPs with
peer dispatchers (dispatcher.ha). On SIGTERM or SIGINT it gives its VIPs
to its peers and exits, leaving the program and maps pinned in bpffs so
that a restart drops no packet and forgets no flow; --detach removes them.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "configuration file", Required: true},
			&cli.StringFlag{Name: "instance", Usage: "name of the pinned program and maps under --bpffs (default: the interface)"},
			&cli.StringFlag{Name: "bpffs", Usage: "directory the instances are pinned in", Value: DefaultBPFFSRoot},
			&cli.BoolFlag{Name: "detach", Usage: "at exit, detach the program and remove its pins"},
			&cli.DurationFlag{Name: "stats-interval", Usage: "log each VIP's load this often (0: never)", Value: time.Minute},
			&cli.DurationFlag{Name: "flow-lifetime", Usage: "longest a TCP flow whose FIN or RST was never seen counts as active", Value: DefaultFlowLifetime},
		},
		Action: func(c *cli.Context) error {
			cfg, err := config.Load(c.String("config"))
			if err != nil {
				return err
			}
			ctx := c.Context
			if ctx == nil {
				ctx = context.Background()
			}
			ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return Run(ctx, cfg, RunOptions{
				Instance:      c.String("instance"),
				BPFFSRoot:     c.String("bpffs"),
				Detach:        c.Bool("detach"),
				StatsInterval: c.Duration("stats-interval"),
				FlowLifetime:  c.Duration("flow-lifetime"),
				Logger:        slog.Default(),
			})
		},
	}
}

// RunOptions are the settings of a dispatcher that are not in the
// configuration.
type RunOptions struct {
	Instance      string // pin name; default the interface
	BPFFSRoot     string // default DefaultBPFFSRoot
	Detach        bool   // detach and unpin at exit
	StatsInterval time.Duration
	FlowLifetime  time.Duration // see ControlOptions.FlowLifetime
	Logger        *slog.Logger
	// Health, when set, decides the servers' health in place of this
	// dispatcher's own probes, which go to it instead (a cluster node's
	// agreed health; see Health). Nil: the dispatcher's own probes decide.
	Health Health
}

// Run runs the dispatcher of cfg until ctx ends.
func Run(ctx context.Context, cfg *config.Config, opts RunOptions) error {
	in, err := NewInstance(cfg, opts)
	if err != nil {
		return err
	}
	return in.Run(ctx)
}

// Instance is one configured dispatcher: datapath, control plane, health
// checks of its servers and HA agent. `tern dispatch` runs one; a node
// whose configuration has a dispatcher: section runs one beside its DNS
// server and reads Load for its site.
type Instance struct {
	spec    Spec
	dcfg    DatapathConfig
	opts    RunOptions
	log     *slog.Logger
	iface   string
	prober  *serverProber
	pools   map[string]config.Pool // the prober's pools of servers (see HealthPools)
	agent   *ha.Agent
	standby bool // HA decides ownership

	ctrl atomic.Pointer[Control]
}

// NewInstance checks cfg's dispatcher: section and prepares an Instance;
// nothing on the host changes until Run.
func NewInstance(cfg *config.Config, opts RunOptions) (*Instance, error) {
	d := cfg.Dispatcher
	if d == nil {
		return nil, errors.New("dispatch: the configuration has no dispatcher: section")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	spec, err := SpecFromConfig(d)
	if err != nil {
		return nil, fmt.Errorf("dispatch: %w", err)
	}
	in := &Instance{spec: spec, opts: opts, log: log, iface: d.Interface, standby: d.HA != nil}
	in.dcfg = DatapathConfig{Interface: d.Interface, Instance: opts.Instance, BPFFSRoot: opts.BPFFSRoot}
	if in.dcfg.XDPMode, err = ParseXDPMode(d.XDPMode); err != nil {
		return nil, fmt.Errorf("dispatch: %w", err)
	}
	if d.NextHopMAC != "" {
		if in.dcfg.NextHopMAC, err = net.ParseMAC(d.NextHopMAC); err != nil {
			return nil, fmt.Errorf("dispatch: next_hop_mac: %w", err)
		}
	}
	if d.TunnelSource != "" {
		if in.dcfg.TunnelSrc, err = netip.ParseAddr(d.TunnelSource); err != nil {
			return nil, fmt.Errorf("dispatch: tunnel_source: %w", err)
		}
	}
	if d.HA != nil {
		ac, err := agentConfig(cfg, d, log)
		if err != nil {
			return nil, fmt.Errorf("dispatch: ha: %w", err)
		}
		ac.ConfigDigest = spec.Digest()
		groupVIPs := map[string][]netip.Addr{}
		for _, g := range ac.Groups {
			groupVIPs[g.Name] = g.VIPs
		}
		// Synchronous: a VIP is added to the interface only once its
		// services forward, or the host's own stack would answer (and
		// reset) the first connections.
		ac.OnChange = func(group string, held bool) {
			ctrl := in.ctrl.Load()
			ctrl.SetOwned(groupVIPs[group], held)
			if err := ctrl.Reconcile(); err != nil {
				log.Error("dispatch: reconcile after HA change", "group", group, "held", held, "err", err)
			}
		}
		if in.agent, err = ha.NewAgent(*ac); err != nil {
			return nil, fmt.Errorf("dispatch: ha: %w", err)
		}
	}
	if in.pools, err = healthPools(cfg, spec); err != nil {
		return nil, fmt.Errorf("dispatch: health checks: %w", err)
	}
	if in.prober, err = newServerProber(cfg, in.pools, opts.Health, log); err != nil {
		return nil, fmt.Errorf("dispatch: health checks: %w", err)
	}
	return in, nil
}

// HealthPools are the pools the dispatcher's prober probes, by name
// (CheckPoolPrefix and a check's name): one per check, its members the
// servers the check decides. Its verdicts and a Health's agreed states
// are keyed by them.
func (in *Instance) HealthPools() map[string]config.Pool { return maps.Clone(in.pools) }

// Load returns each VIP's load (see Control.Load), nil before Run has
// attached the datapath.
func (in *Instance) Load() []VIPLoad {
	if c := in.ctrl.Load(); c != nil {
		return c.Load()
	}
	return nil
}

// Run attaches the datapath and runs until ctx ends. At the end the HA
// agent hands its VIPs to its peers; the datapath stays attached and
// pinned (unless RunOptions.Detach) so that a restart drops nothing.
func (in *Instance) Run(ctx context.Context) error {
	log, opts := in.log, in.opts
	dp, err := OpenDatapath(in.dcfg)
	if err != nil {
		return fmt.Errorf("dispatch: %w", err)
	}
	defer func() {
		if opts.Detach {
			if err := dp.Detach(); err != nil {
				log.Error("dispatch: detach", "err", err)
			}
			return
		}
		if err := dp.Close(); err != nil {
			log.Error("dispatch: close datapath", "err", err)
		}
	}()
	log.Info("dispatch: datapath attached", "interface", in.iface, "xdp_mode", in.dcfg.XDPMode, "services", len(in.spec.Services))

	ctrl, err := NewControl(dp, in.spec, ControlOptions{OwnAll: !in.standby, FlowLifetime: opts.FlowLifetime, Logger: log})
	if err != nil {
		return fmt.Errorf("dispatch: %w", err)
	}
	in.ctrl.Store(ctrl)
	if in.prober != nil {
		in.prober.SetObserver(ctrl)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	goRun := func(name string, run func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				mu.Unlock()
				cancel()
			}
		}()
	}
	sampleEvery := 5 * time.Second
	if opts.StatsInterval > 0 {
		sampleEvery = min(sampleEvery, opts.StatsInterval)
	}
	goRun("control", func(ctx context.Context) error { return ctrl.Run(ctx, sampleEvery) })
	if in.prober != nil {
		goRun("health checks", in.prober.p.Run)
	}
	if in.opts.Health != nil {
		goRun("agreed health", func(ctx context.Context) error { return ctrl.FollowHealth(ctx, in.opts.Health) })
	}
	link := &ha.Link{Name: in.iface}
	vips := in.spec.VIPs()
	if in.agent != nil {
		goRun("ha", in.agent.Run)
	} else {
		// Alone, this dispatcher holds every VIP: put them on the
		// interface so neighbours resolve them to it, and say so.
		if err := ctrl.Reconcile(); err != nil {
			log.Error("dispatch: first reconcile", "err", err)
		}
		if err := link.AddVIPs(ctx, vips); err != nil {
			log.Error("dispatch: add VIPs", "err", err)
		}
		if err := link.Announce(ctx, vips); err != nil {
			log.Error("dispatch: gratuitous ARP", "err", err)
		}
		log.Info("dispatch: holding VIPs (no ha: section)", "vips", vips)
	}
	if opts.StatsInterval > 0 {
		goRun("stats", func(ctx context.Context) error {
			t := time.NewTicker(opts.StatsInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-t.C:
					logLoad(log, ctrl.Load())
				}
			}
		})
	}

	<-ctx.Done()
	wg.Wait()
	if in.agent == nil {
		// The agent removes what it holds itself; alone, remove here.
		rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
		if err := link.RemoveVIPs(rctx, vips); err != nil {
			log.Error("dispatch: remove VIPs", "err", err)
		}
		rcancel()
	}
	if cs, err := dp.Counters(); err == nil {
		ctrl.sampleLoad(dp, time.Now())
		logLoad(log, ctrl.Load())
		log.Info("dispatch: stopped", "dropped_no_backend", cs.NoBackend, "icmp_too_big", cs.ICMPTooBig, "fragments", cs.Fragments)
	}
	return errors.Join(errs...)
}

func logLoad(log *slog.Logger, loads []VIPLoad) {
	for _, l := range loads {
		log.Info("dispatch: load", "vip", l.VIP, "forwarding", l.Forwarding, "packets", l.Packets, "bytes", l.Bytes,
			"pps", int64(l.PacketRate), "bps", int64(8*l.ByteRate), "active_flows", l.ActiveFlows, "new_flows", l.NewFlows,
			"new_flows_per_s", math.Round(l.NewFlowRate*10)/10, "servers", l.Servers, "serving", l.Serving)
	}
}

// agentConfig builds the HA agent's configuration: the configured groups,
// plus group "default" of the VIPs no group names.
func agentConfig(cfg *config.Config, d *config.Dispatcher, log *slog.Logger) (*ha.Config, error) {
	h := d.HA
	key := []byte(h.Key)
	if h.KeyFile != "" {
		p := h.KeyFile
		if hp := cfg.HostPath(h.KeyFile); hp != "" {
			p = hp
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("key_file: %w", err)
		}
		key = bytes.TrimSpace(b)
	}
	if len(key) < 16 {
		return nil, fmt.Errorf("key of %d bytes: at least 16 are needed", len(key))
	}
	local, err := netip.ParseAddrPort(h.Local)
	if err != nil {
		return nil, fmt.Errorf("local %q: %w", h.Local, err)
	}
	ac := &ha.Config{
		ID:        cmpOr(h.ID, h.Local),
		Interval:  h.Interval.D(),
		DeadAfter: h.DeadAfter,
		Local:     local,
		Key:       key,
		Iface:     &ha.Link{Name: d.Interface},
		Logger:    log,
	}
	for _, p := range h.Peers {
		ap, err := netip.ParseAddrPort(p)
		if err != nil {
			return nil, fmt.Errorf("peer %q: %w", p, err)
		}
		ac.Peers = append(ac.Peers, ap)
	}
	grouped := map[netip.Addr]bool{}
	for _, g := range h.Groups {
		ag := ha.AgentGroup{Group: ha.Group{Name: g.Name, Priority: uint8(g.Priority), Preempt: h.GroupPreempt(g)}}
		for _, v := range g.VIPs {
			a, err := netip.ParseAddr(v)
			if err != nil {
				return nil, fmt.Errorf("group %q vip %q: %w", g.Name, v, err)
			}
			ag.VIPs = append(ag.VIPs, a)
			grouped[a] = true
		}
		ac.Groups = append(ac.Groups, ag)
	}
	var rest []netip.Addr
	for _, s := range d.Services {
		a, err := netip.ParseAddr(s.VIP)
		if err == nil && !grouped[a] && !slices.Contains(rest, a) {
			rest = append(rest, a)
		}
	}
	if len(rest) > 0 {
		ac.Groups = append(ac.Groups, ha.AgentGroup{Group: ha.Group{Name: "default", Priority: uint8(h.Priority), Preempt: h.Preempt}, VIPs: rest})
	}
	if len(h.Reach) > 0 {
		r := &ha.Reach{Iface: d.Interface, Logger: log}
		for _, t := range h.Reach {
			a, err := netip.ParseAddr(t.Address)
			if err != nil {
				return nil, fmt.Errorf("reach %q: %w", t.Address, err)
			}
			r.Targets = append(r.Targets, ha.Target{Addr: a, Type: t.Type, Port: t.Port, Interval: t.Interval.D(), Timeout: t.Timeout.D(), Fall: t.Fall})
		}
		ac.Reacher = r
	}
	return ac, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// CheckPoolPrefix names the pools Tern makes for the probes package out
// of the dispatcher's servers: one per check, its members the servers the
// check applies to.
const CheckPoolPrefix = "dispatcher:"

// serverProber runs the servers' health checks with package probes and
// passes verdicts to a Control, or to a Health that decides instead.
type serverProber struct {
	p    *probes.Prober
	feed Health // nil: the verdicts decide

	mu   sync.Mutex
	ctrl *Control
}

// healthPools returns the pools of spec's servers that have a check (see
// Instance.HealthPools), nil when none has.
func healthPools(cfg *config.Config, spec Spec) (map[string]config.Pool, error) {
	pools := map[string]config.Pool{}
	for _, s := range spec.Services {
		for _, srv := range s.Servers {
			if srv.Check == "" || srv.Check == "none" {
				continue
			}
			if _, ok := cfg.Checks[srv.Check]; !ok {
				return nil, fmt.Errorf("service %s server %s: check %q is not under checks:", s.Key, srv.Addr, srv.Check)
			}
			name := CheckPoolPrefix + srv.Check
			pool := pools[name]
			pool.Check = srv.Check
			m := config.Member{Address: srv.Addr.String()}
			if !slices.ContainsFunc(pool.Members, func(x config.Member) bool { return x.Address == m.Address }) {
				pool.Members = append(pool.Members, m)
			}
			pools[name] = pool
		}
	}
	if len(pools) == 0 {
		return nil, nil
	}
	return pools, nil
}

// newServerProber returns the prober of pools (nil for none) whose
// verdicts go to feed, or when it is nil to the Control SetObserver names.
func newServerProber(cfg *config.Config, pools map[string]config.Pool, feed Health, log *slog.Logger) (*serverProber, error) {
	if len(pools) == 0 {
		return nil, nil
	}
	sp := &serverProber{feed: feed}
	p, err := probes.New(&config.Config{Checks: cfg.Checks, Pools: pools}, probes.Options{
		Observer: probes.ObserverFunc(sp.observe),
		Logger:   log,
	})
	if err != nil {
		return nil, err
	}
	sp.p = p
	if feed != nil {
		feed.Observe(p.Verdicts())
	}
	return sp, nil
}

// SetObserver starts passing verdicts to ctrl, beginning with the current
// ones (unless a Health decides).
func (sp *serverProber) SetObserver(ctrl *Control) {
	sp.mu.Lock()
	sp.ctrl = ctrl
	sp.mu.Unlock()
	sp.observe(sp.p.Verdicts())
}

func (sp *serverProber) observe(vs []probes.Verdict) {
	if sp.feed != nil {
		sp.feed.Observe(vs)
		return
	}
	sp.mu.Lock()
	ctrl := sp.ctrl
	sp.mu.Unlock()
	if ctrl == nil {
		return
	}
	for _, v := range vs {
		if a, check, ok := serverOf(v.Key); ok {
			ctrl.SetHealth(a, check, v.Up && !v.Drain)
		}
	}
}

// serverOf reads a key of the prober's pools: the server and its check.
func serverOf(k probes.Key) (netip.Addr, string, bool) {
	check, ok := strings.CutPrefix(k.Pool, CheckPoolPrefix)
	if !ok {
		return netip.Addr{}, "", false
	}
	a, err := netip.ParseAddr(k.Member)
	if err != nil {
		return netip.Addr{}, "", false
	}
	return a, check, true
}
