package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dnsserver"
)

// Node is one running Tern node.
type Node struct {
	log *slog.Logger
	dns *dnsserver.Server

	mu  sync.Mutex // serialises reloads; never taken on the query path
	cfg *config.Config
}

// New compiles cfg and builds a node ready to Run. It fails on any problem
// in the configuration or its zone files.
func New(cfg *config.Config, log *slog.Logger) (*Node, error) {
	if log == nil {
		log = slog.Default()
	}
	snap, ps := Compile(cfg)
	if len(ps) > 0 {
		return nil, ps
	}
	srv, err := dnsserver.New(dnsserver.Options{
		Addrs:      cfg.Node.DNS,
		UDPSockets: cfg.Node.UDPSockets,
		TCPIdle:    cfg.Node.TCPIdle.D(),
		UDPSize:    cfg.Node.UDPSize,
		Logger:     log,
	})
	if err != nil {
		return nil, fmt.Errorf("dns server: %w", err)
	}
	srv.Store(snap)
	return &Node{log: log, dns: srv, cfg: cfg}, nil
}

// Run serves until ctx ends, then shuts down in reverse start order.
func (n *Node) Run(ctx context.Context) error {
	err := n.dns.Run(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// DNSAddrs returns the addresses the DNS server listens on.
func (n *Node) DNSAddrs() []net.Addr { return n.dns.Addrs() }

// Ready is closed once the DNS listeners are bound.
func (n *Node) Ready() <-chan struct{} { return n.dns.Ready() }

// Reload validates cfg whole and, only if it is good, swaps it in. A bad
// configuration changes nothing: the old one keeps serving.
func (n *Node) Reload(cfg *config.Config) error {
	snap, ps := Compile(cfg)
	if len(ps) > 0 {
		return ps
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !slices.Equal(cfg.Node.DNS, n.cfg.Node.DNS) {
		n.log.Warn("node.dns changed; listeners change only on restart", "serving", n.cfg.Node.DNS, "configured", cfg.Node.DNS)
	}
	n.dns.Store(snap)
	n.cfg = cfg
	n.log.Info("configuration reloaded", "version", snap.Version)
	return nil
}
