package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

// DecapCommand is `tern decap`: it decapsulates IPIP traffic of the given
// VIPs on a server whose kernel has no ipip module, until SIGTERM or
// SIGINT, then detaches.
func DecapCommand() *cli.Command {
	return &cli.Command{
		Name:  "decap",
		Usage: "strip IPIP from packets to VIPs on a server without kernel ipip (for dispatcher ipip mode)",
		Description: `Attaches an XDP program to --iface that removes the outer IPv4 header of
IPIP packets whose inner destination is a --vip, so the server sees the
client's packet to the VIP (which it holds on lo). Runs until SIGTERM or
SIGINT. The tunnel costs 20 bytes: clamp the MSS the server advertises
(ip route change default via GW advmss 1440) or raise the path MTU.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "iface", Usage: "interface the tunnelled packets arrive on", Required: true},
			&cli.StringSliceFlag{Name: "vip", Usage: "VIP to decapsulate for (repeat for more)", Required: true},
			&cli.StringFlag{Name: "xdp-mode", Usage: "generic or native", Value: "generic"},
		},
		Action: func(c *cli.Context) error {
			var vips []netip.Addr
			for _, s := range c.StringSlice("vip") {
				v, err := netip.ParseAddr(s)
				if err != nil {
					return fmt.Errorf("--vip %q: %w", s, err)
				}
				vips = append(vips, v)
			}
			mode, err := ParseXDPMode(c.String("xdp-mode"))
			if err != nil {
				return fmt.Errorf("--xdp-mode: %w", err)
			}
			ctx := c.Context
			if ctx == nil {
				ctx = context.Background()
			}
			ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return runDecap(ctx, c.String("iface"), vips, mode, slog.Default())
		},
	}
}
