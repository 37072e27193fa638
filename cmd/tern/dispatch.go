package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dispatcher"
	"github.com/ternlb/tern/dispatcher/control"
	"github.com/ternlb/tern/dispatcher/datapath"
)

// dispatchCommand is `tern dispatch --config FILE`: it runs the dispatcher
// of the configuration's dispatcher: section until SIGTERM or SIGINT.
func dispatchCommand() *cli.Command {
	return &cli.Command{
		Name:  "dispatch",
		Usage: "run the packet dispatcher (XDP load balancer with direct server return)",
		Description: `Attaches the XDP load balancer to dispatcher.interface, keeps its Maglev
tables in step with the servers' health checks, and shares the VIPs with
peer dispatchers (dispatcher.ha). On SIGTERM or SIGINT it gives its VIPs
to its peers and exits, leaving the program and maps pinned in bpffs so
that a restart drops no packet and forgets no flow; --detach removes them.
The pins must be in the host's bpffs: in a network namespace, start it
with nsenter --net=/run/netns/NS, not ip netns exec (which gives it a
private /sys whose bpffs vanishes at exit), or pass --ephemeral.`,
		Flags: append(logFlags(),
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "configuration file", Required: true},
			&cli.StringFlag{Name: "instance", Usage: "name of the pinned program and maps under --bpffs (default: the interface)"},
			&cli.StringFlag{Name: "bpffs", Usage: "directory the instances are pinned in", Value: datapath.DefaultBPFFSRoot},
			&cli.BoolFlag{Name: "detach", Usage: "at exit, detach the program and remove its pins"},
			&cli.BoolFlag{Name: "ephemeral", Usage: "run even where the pins cannot outlive the process (a private bpffs): the program detaches at exit"},
			&cli.DurationFlag{Name: "stats-interval", Usage: "log each VIP's load this often (0: never)", Value: time.Minute},
			&cli.DurationFlag{Name: "flow-lifetime", Usage: "longest a TCP flow whose FIN or RST was never seen counts as active", Value: control.DefaultFlowLifetime},
		),
		Action: func(c *cli.Context) error {
			log, err := commandLogger(c)
			if err != nil {
				return err
			}
			cfg, err := config.Load(c.String("config"))
			if err != nil {
				return err
			}
			ctx, stop := signalContext(c.Context)
			defer stop()
			return dispatcher.Run(ctx, cfg, dispatcher.RunOptions{
				Instance:      c.String("instance"),
				BPFFSRoot:     c.String("bpffs"),
				Detach:        c.Bool("detach"),
				Ephemeral:     c.Bool("ephemeral"),
				StatsInterval: c.Duration("stats-interval"),
				FlowLifetime:  c.Duration("flow-lifetime"),
				Logger:        log,
			})
		},
	}
}

// decapCommand is `tern decap`: it decapsulates IPIP traffic of the given
// VIPs on a server whose kernel has no ipip module, until SIGTERM or
// SIGINT, then detaches.
func decapCommand() *cli.Command {
	return &cli.Command{
		Name:  "decap",
		Usage: "strip IPIP from packets to VIPs on a server without kernel ipip (for dispatcher ipip mode)",
		Description: `Attaches an XDP program to --iface that removes the outer IPv4 header of
IPIP packets whose inner destination is a --vip, so the server sees the
client's packet to the VIP (which it holds on lo). Runs until SIGTERM or
SIGINT. The tunnel costs 20 bytes: clamp the MSS the server advertises
(ip route change default via GW advmss 1440) or raise the path MTU.`,
		Flags: append(logFlags(),
			&cli.StringFlag{Name: "iface", Usage: "interface the tunnelled packets arrive on", Required: true},
			&cli.StringSliceFlag{Name: "vip", Usage: "VIP to decapsulate for (repeat for more)", Required: true},
			&cli.StringFlag{Name: "xdp-mode", Usage: "generic or native", Value: "generic"},
		),
		Action: func(c *cli.Context) error {
			log, err := commandLogger(c)
			if err != nil {
				return err
			}
			var vips []netip.Addr
			for _, s := range c.StringSlice("vip") {
				v, err := netip.ParseAddr(s)
				if err != nil {
					return fmt.Errorf("--vip %q: %w", s, err)
				}
				vips = append(vips, v)
			}
			mode, err := datapath.ParseXDPMode(c.String("xdp-mode"))
			if err != nil {
				return fmt.Errorf("--xdp-mode: %w", err)
			}
			ctx, stop := signalContext(c.Context)
			defer stop()
			return runDecap(ctx, c.String("iface"), vips, mode, log)
		},
	}
}

// signalContext is ctx (Background when nil) ended by SIGTERM or SIGINT.
func signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
}

// runDecap attaches the decapsulator and keeps it until ctx ends.
func runDecap(ctx context.Context, iface string, vips []netip.Addr, mode datapath.XDPMode, log *slog.Logger) error {
	d, err := datapath.AttachDecap(iface, vips, mode)
	if err != nil {
		return err
	}
	log.Info("decap attached", "iface", iface, "vips", vips, "xdp_mode", mode)
	<-ctx.Done()
	n, cerr := d.Counter()
	if err := d.Close(); err != nil {
		return fmt.Errorf("detach decap from %s: %w", iface, err)
	}
	if cerr == nil {
		log.Info("decap detached", "iface", iface, "packets", n.Packets, "bytes", n.Bytes)
	}
	return nil
}
