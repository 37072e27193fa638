package dispatcher

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dispatcher/control"
	"github.com/ternlb/tern/dispatcher/datapath"
	"github.com/ternlb/tern/dispatcher/ha"
	"github.com/ternlb/tern/internal/run"
	"github.com/ternlb/tern/probes"
)

// RunOptions are the settings of a dispatcher that are not in the
// configuration.
type RunOptions struct {
	Instance  string // pin name; default the interface
	BPFFSRoot string // default DefaultBPFFSRoot
	Detach    bool   // detach and unpin at exit
	// Ephemeral runs the datapath even where its pins cannot outlive the
	// process (see datapath.Config.Ephemeral).
	Ephemeral     bool
	StatsInterval time.Duration
	FlowLifetime  time.Duration // see control.Options.FlowLifetime
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
	spec    control.Spec
	dcfg    datapath.Config
	opts    RunOptions
	log     *slog.Logger
	iface   string
	checks  map[string]config.Check
	targets []probes.Target // the servers the prober probes (see HealthPools)
	prober  *serverProber
	agent   *ha.Agent
	standby bool // HA decides ownership

	ctrl atomic.Pointer[control.Control]
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
	spec, err := control.SpecFromConfig(d)
	if err != nil {
		return nil, fmt.Errorf("dispatch: %w", err)
	}
	in := &Instance{spec: spec, opts: opts, log: log, iface: d.Interface, checks: cfg.Checks, standby: d.HA != nil}
	in.dcfg = datapath.Config{Interface: d.Interface, Instance: opts.Instance, BPFFSRoot: opts.BPFFSRoot, Ephemeral: opts.Ephemeral}
	if in.dcfg.XDPMode, err = datapath.ParseXDPMode(d.XDPMode); err != nil {
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
			return nil, fmt.Errorf("dispatch: %w", err) // ha's errors say "ha: "
		}
	}
	if in.targets, err = serverTargets(cfg, spec); err != nil {
		return nil, fmt.Errorf("dispatch: health checks: %w", err)
	}
	if in.prober, err = newServerProber(cfg.Checks, in.targets, opts.Health, log); err != nil {
		return nil, fmt.Errorf("dispatch: health checks: %w", err)
	}
	return in, nil
}

// Load returns each VIP's load (see Control.Load), nil before Run has
// attached the datapath.
func (in *Instance) Load() []control.VIPLoad {
	if c := in.ctrl.Load(); c != nil {
		return c.Load()
	}
	return nil
}

// Collector returns the dispatcher's per-VIP metrics for a registry.
func (in *Instance) Collector() prometheus.Collector { return control.Collector(in.Load) }

// Run attaches the datapath and runs until ctx ends, its parts in one
// run.Group: the datapath and control plane first, then the servers'
// health checks, then HA (or, alone, the VIPs on the interface), then the
// stats; they stop in reverse, so HA hands its VIPs to its peers while the
// datapath still forwards. The datapath stays attached and pinned (unless
// RunOptions.Detach) so that a restart drops nothing.
func (in *Instance) Run(ctx context.Context) error {
	log, opts := in.log, in.opts
	var (
		g    run.Group
		dp   *datapath.LB
		ctrl *control.Control
	)
	g.Add(run.Part{
		Name: "datapath",
		Start: func(context.Context) error {
			var err error
			if dp, err = datapath.Open(in.dcfg); err != nil {
				return err
			}
			log.Info("dispatch: datapath attached", "interface", in.iface, "xdp_mode", in.dcfg.XDPMode, "services", len(in.spec.Services))
			if !dp.Persistent() {
				log.Warn("dispatch: the pins are in a private bpffs (--ephemeral): the program detaches when this process exits, so a restart or a crash resets every flow through this dispatcher")
			}
			ctrl, err = control.New(dp, in.spec, control.Options{OwnAll: !in.standby, FlowLifetime: opts.FlowLifetime, Logger: log})
			if err != nil {
				dp.Close()
				return err
			}
			in.ctrl.Store(ctrl)
			if in.prober != nil {
				in.prober.SetObserver(ctrl)
			}
			return nil
		},
		Stop: func() error {
			if cs, err := dp.Counters(); err == nil {
				ctrl.SampleLoad(time.Now())
				logLoad(log, ctrl.Load())
				log.Info("dispatch: stopped", "dropped_no_backend", cs.NoBackend, "icmp_too_big", cs.ICMPTooBig, "fragments", cs.Fragments)
			}
			if opts.Detach {
				return dp.Detach()
			}
			return dp.Close()
		},
	})
	sampleEvery := 5 * time.Second
	if opts.StatsInterval > 0 {
		sampleEvery = min(sampleEvery, opts.StatsInterval)
	}
	g.Go("control", func(ctx context.Context) error { return ctrl.Run(ctx, sampleEvery) })
	if in.prober != nil {
		g.Go("health checks", in.prober.p.Run)
	}
	if opts.Health != nil {
		g.Go("agreed health", func(ctx context.Context) error { return FollowHealth(ctx, ctrl, opts.Health) })
	}
	if in.agent != nil {
		g.Go("ha", in.agent.Run)
	} else {
		g.Add(in.holdVIPs(func() *control.Control { return ctrl }))
	}
	if opts.StatsInterval > 0 {
		g.Go("stats", func(ctx context.Context) error {
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
	return g.Run(ctx)
}

// holdVIPs is the part of a dispatcher without HA: it holds every VIP,
// so it puts them on the interface (once their services forward) for
// neighbours to resolve them to it, announces them, and takes them off
// at the end.
func (in *Instance) holdVIPs(ctrl func() *control.Control) run.Part {
	link := &ha.Link{Name: in.iface}
	vips := in.spec.VIPs()
	return run.Part{
		Name: "vips",
		Start: func(ctx context.Context) error {
			if err := ctrl().Reconcile(); err != nil {
				in.log.Error("dispatch: first reconcile", "err", err)
			}
			if err := link.AddVIPs(ctx, vips); err != nil {
				in.log.Error("dispatch: add VIPs", "err", err)
			}
			if err := link.Announce(ctx, vips); err != nil {
				in.log.Error("dispatch: announce VIPs", "err", err)
			}
			in.log.Info("dispatch: holding VIPs (no ha: section)", "vips", vips)
			return nil
		},
		Stop: func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			return link.RemoveVIPs(ctx, vips)
		},
	}
}

func logLoad(log *slog.Logger, loads []control.VIPLoad) {
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
		ID:        cmp.Or(h.ID, h.Local),
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
