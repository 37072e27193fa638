package ha

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Interface is how an Agent acts on the host's network: on the real host
// it is a Link; tests fake it.
type Interface interface {
	// AddVIPs puts vips on the interface so the host answers ARP for them.
	AddVIPs(ctx context.Context, vips []netip.Addr) error
	// RemoveVIPs takes them off; absent ones are not an error.
	RemoveVIPs(ctx context.Context, vips []netip.Addr) error
	// Announce sends gratuitous ARP for vips so neighbours update at once.
	Announce(ctx context.Context, vips []netip.Addr) error
}

// Reacher reports whether this dispatcher reaches its reach targets: it
// calls report on every change, starting reachable.
type Reacher interface {
	Run(ctx context.Context, report func(ok bool)) error
}

// AgentGroup is a group with the VIPs it moves.
type AgentGroup struct {
	Group
	VIPs []netip.Addr
}

// Config configures an Agent.
type Config struct {
	ID        string
	Groups    []AgentGroup
	Interval  time.Duration // default 200ms
	DeadAfter int           // default 3
	// Local is the address heartbeats are sent from and received on;
	// ignored when Conn is set.
	Local netip.AddrPort
	// Conn, when set, is the socket to use (tests bind 127.0.0.1:0).
	Conn  net.PacketConn
	Peers []netip.AddrPort
	Key   []byte
	// MaxSkew bounds the clock difference with peers (DefaultMaxSkew).
	MaxSkew time.Duration
	// ConfigDigest is sent with every heartbeat; a peer sending another
	// (non-zero) one is reported once per change, as its tables differ.
	ConfigDigest uint64

	Iface   Interface
	Reacher Reacher // optional
	// OnChange is told whether this dispatcher now forwards group: true
	// before its VIPs are added, false after they are removed, and once
	// for every group when the start wait ends. At shutdown it is not
	// called: the datapath keeps forwarding what still arrives (its maps
	// are pinned) until the peer's announcement draws the traffic away or
	// this dispatcher restarts.
	OnChange func(group string, held bool)
	Logger   *slog.Logger
}

// Agent runs the heartbeat protocol for one dispatcher.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	groups map[string]AgentGroup

	mu       sync.Mutex
	m        *Machine
	reported map[string]bool
	garps    map[string]int // announcements still to repeat per group
	seq      uint64
	verifier Verifier
	sendErrs int
	digests  map[string]uint64 // last digest seen per peer
}

// NewAgent checks cfg and returns an Agent; Run starts it.
func NewAgent(cfg Config) (*Agent, error) {
	if cfg.ID == "" {
		return nil, errors.New("ha: agent needs an ID")
	}
	if len(cfg.Key) < 16 {
		return nil, errors.New("ha: key must have at least 16 bytes")
	}
	if cfg.Iface == nil {
		return nil, errors.New("ha: agent needs an Interface")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 200 * time.Millisecond
	}
	if cfg.DeadAfter < 1 {
		cfg.DeadAfter = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, groups: map[string]AgentGroup{}, reported: map[string]bool{}, garps: map[string]int{}}
	for _, g := range cfg.Groups {
		if g.Name == "" || g.Priority == 0 {
			return nil, fmt.Errorf("ha: group %q needs a name and a priority of 1-255", g.Name)
		}
		if _, dup := a.groups[g.Name]; dup {
			return nil, fmt.Errorf("ha: group %q twice", g.Name)
		}
		a.groups[g.Name] = g
	}
	a.verifier.MaxSkew = cfg.MaxSkew
	return a, nil
}

// Holding returns the groups this dispatcher holds.
func (a *Agent) Holding() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, g := range a.cfg.Groups {
		if a.m != nil && a.m.Holding(g.Name) {
			out = append(out, g.Name)
		}
	}
	return out
}

type received struct {
	pkt  []byte
	from net.Addr
	at   time.Time
}

// Run exchanges heartbeats until ctx ends, then resigns: it removes the
// VIPs it holds and tells its peers so they take over at once.
func (a *Agent) Run(ctx context.Context) error {
	conn := a.cfg.Conn
	if conn == nil {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(a.cfg.Local))
		if err != nil {
			return fmt.Errorf("ha: listen on %s: %w", a.cfg.Local, err)
		}
		conn = c
	}
	defer conn.Close()

	mcfg := MachineConfig{ID: a.cfg.ID, Interval: a.cfg.Interval, DeadAfter: a.cfg.DeadAfter}
	for _, g := range a.cfg.Groups {
		mcfg.Groups = append(mcfg.Groups, g.Group)
	}
	a.mu.Lock()
	a.m = NewMachine(mcfg, time.Now())
	a.seq = uint64(time.Now().UnixNano())
	a.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()

	in := make(chan received, 256)
	var readErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, MaxPacket)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				if ctx.Err() == nil {
					readErr = fmt.Errorf("ha: read heartbeats: %w", err)
					cancel()
				}
				return
			}
			select {
			case in <- received{pkt: slices.Clone(buf[:n]), from: from, at: time.Now()}:
			case <-ctx.Done():
				return
			}
		}
	}()
	context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })

	reach := make(chan bool, 1)
	if a.cfg.Reacher != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := a.cfg.Reacher.Run(ctx, func(ok bool) {
				select {
				case reach <- ok:
				case <-ctx.Done():
				}
			})
			if err != nil && ctx.Err() == nil {
				a.log.Error("ha: reach checks stopped", "err", err)
			}
		}()
	}

	// Heartbeats go out from their own goroutine: carrying out an action
	// (adding VIPs, the control plane swapping tables in) can take longer
	// than a peer's dead time, and a dispatcher busy taking over must not
	// look dead meanwhile.
	sendNow := make(chan struct{}, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(a.cfg.Interval)
		defer tick.Stop()
		for {
			a.send(ctx, conn)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			case <-sendNow:
			}
		}
	}()
	kickSend := func() {
		select {
		case sendNow <- struct{}{}:
		default:
		}
	}

	tick := time.NewTicker(a.cfg.Interval)
	defer tick.Stop()
	// expire fires when a peer is due to be declared dead, so a takeover
	// does not wait for the next tick.
	expire := time.NewTimer(time.Hour)
	defer expire.Stop()
	rearm := func() {
		a.mu.Lock()
		next := a.m.Deadline(time.Now())
		a.mu.Unlock()
		if !next.IsZero() {
			expire.Reset(time.Until(next) + time.Millisecond)
		}
	}
	rejects := 0
	receive := func(r received) {
		hb, err := a.accept(r.pkt, r.at)
		if err != nil {
			// Log a misconfigured or hostile sender without flooding.
			if rejects++; rejects <= 3 || rejects%100 == 0 {
				a.log.Warn("ha: heartbeat rejected", "from", r.from, "err", err, "rejected", rejects)
			}
			return
		}
		a.checkDigest(hb)
		// Judged at arrival: a heartbeat that waited in the queue while
		// an action ran still proves the peer was alive then.
		a.step(ctx, func(m *Machine) []Action { return m.Receive(r.at, hb) })
	}
	// tickNow takes in what has arrived before letting time declare a
	// peer dead, so a backlog is never mistaken for silence.
	tickNow := func() {
		for {
			select {
			case r := <-in:
				receive(r)
				continue
			default:
			}
			break
		}
		a.step(ctx, func(m *Machine) []Action { return m.Tick(time.Now()) })
	}
	for {
		rearm()
		select {
		case <-ctx.Done():
			a.resign(conn)
			wg.Wait()
			return readErr
		case <-expire.C:
			tickNow()
			kickSend()
		case <-tick.C:
			tickNow()
			a.repeatAnnouncements(ctx)
		case r := <-in:
			receive(r)
		case ok := <-reach:
			if ok {
				a.log.Info("ha: reach targets answer again")
			} else {
				a.log.Warn("ha: reach targets unreachable, giving up VIPs")
			}
			a.step(ctx, func(m *Machine) []Action { return m.SetReach(time.Now(), ok) })
			kickSend()
		}
	}
}

// checkDigest warns when a peer's configuration digest differs from ours.
func (a *Agent) checkDigest(hb Heartbeat) {
	a.mu.Lock()
	if a.digests == nil {
		a.digests = map[string]uint64{}
	}
	prev, seen := a.digests[hb.ID]
	a.digests[hb.ID] = hb.Config
	a.mu.Unlock()
	if seen && prev == hb.Config {
		return
	}
	mine := a.cfg.ConfigDigest
	switch {
	case hb.Config == 0 || mine == 0:
	case hb.Config != mine:
		a.log.Warn("ha: peer's services and servers differ from ours: flows will change server when it takes over",
			"peer", hb.ID, "peer_config", fmt.Sprintf("%016x", hb.Config), "config", fmt.Sprintf("%016x", mine))
	case seen:
		a.log.Info("ha: peer's services and servers match ours again", "peer", hb.ID)
	}
}

func (a *Agent) accept(pkt []byte, at time.Time) (Heartbeat, error) {
	hb, err := Decode(pkt, a.cfg.Key)
	if err != nil {
		return hb, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if hb.ID == a.cfg.ID {
		return hb, fmt.Errorf("heartbeat with our own id %q: two dispatchers share it", hb.ID)
	}
	return hb, a.verifier.Check(at, hb)
}

// step runs one event through the machine and carries out its actions.
func (a *Agent) step(ctx context.Context, event func(*Machine) []Action) {
	a.mu.Lock()
	now := time.Now()
	acts := event(a.m)
	started := now.Sub(a.m.start) >= time.Duration(a.cfg.DeadAfter)*a.cfg.Interval
	a.mu.Unlock()

	for _, act := range acts {
		g := a.groups[act.Group]
		a.log.Info("ha: "+act.Kind.String(), "group", act.Group, "vips", g.VIPs, "reason", act.Reason)
		switch act.Kind {
		case Take:
			a.report(act.Group, true)
			if err := a.cfg.Iface.AddVIPs(ctx, g.VIPs); err != nil {
				a.log.Error("ha: add VIPs", "group", act.Group, "err", err)
			}
			a.announce(ctx, g)
			a.mu.Lock()
			a.garps[act.Group] = 2 // repeat twice: one lost frame must not strand clients
			a.mu.Unlock()
		case Release:
			a.mu.Lock()
			delete(a.garps, act.Group)
			a.mu.Unlock()
			if err := a.cfg.Iface.RemoveVIPs(ctx, g.VIPs); err != nil {
				a.log.Error("ha: remove VIPs", "group", act.Group, "err", err)
			}
			a.report(act.Group, false)
		case Announce:
			a.announce(ctx, g)
		}
	}
	if !started {
		return
	}
	// Once the start wait is over, settle every group not decided yet: a
	// previous run may have left VIPs or forwarding behind.
	for _, g := range a.cfg.Groups {
		a.mu.Lock()
		_, done := a.reported[g.Name]
		held := a.m.Holding(g.Name)
		a.mu.Unlock()
		if done || held {
			continue
		}
		if err := a.cfg.Iface.RemoveVIPs(ctx, g.VIPs); err != nil {
			a.log.Error("ha: remove VIPs", "group", g.Name, "err", err)
		}
		a.log.Info("ha: backup", "group", g.Name, "vips", g.VIPs)
		a.report(g.Name, false)
	}
}

func (a *Agent) report(group string, held bool) {
	a.mu.Lock()
	a.reported[group] = held
	a.mu.Unlock()
	if a.cfg.OnChange != nil {
		a.cfg.OnChange(group, held)
	}
}

func (a *Agent) announce(ctx context.Context, g AgentGroup) {
	if err := a.cfg.Iface.Announce(ctx, g.VIPs); err != nil {
		a.log.Error("ha: gratuitous ARP", "group", g.Name, "err", err)
	}
}

func (a *Agent) repeatAnnouncements(ctx context.Context) {
	a.mu.Lock()
	var due []string
	for name, n := range a.garps {
		if a.m.Holding(name) {
			due = append(due, name)
		}
		if n <= 1 {
			delete(a.garps, name)
		} else {
			a.garps[name] = n - 1
		}
	}
	a.mu.Unlock()
	for _, name := range due {
		a.announce(ctx, a.groups[name])
	}
}

func (a *Agent) send(ctx context.Context, conn net.PacketConn) {
	a.mu.Lock()
	hb := a.m.Heartbeat()
	hb.Config = a.cfg.ConfigDigest
	a.seq++
	hb.Seq = a.seq
	hb.Time = time.Now()
	a.mu.Unlock()
	pkt, err := Encode(nil, hb, a.cfg.Key)
	if err != nil {
		a.log.Error("ha: encode heartbeat", "err", err)
		return
	}
	for _, p := range a.cfg.Peers {
		if _, err := conn.WriteTo(pkt, net.UDPAddrFromAddrPort(p)); err != nil {
			// A peer's host being down makes this fail on every beat:
			// log the first few only.
			a.mu.Lock()
			a.sendErrs++
			n := a.sendErrs
			a.mu.Unlock()
			if n <= 3 || n%100 == 0 {
				a.log.Warn("ha: send heartbeat", "peer", p, "err", err, "failures", n)
			}
		}
	}
}

// resign gives up held groups' VIPs and sends a last heartbeat saying so.
func (a *Agent) resign(conn net.PacketConn) {
	a.mu.Lock()
	acts := a.m.Resign(time.Now())
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, act := range acts {
		if act.Kind == Release {
			g := a.groups[act.Group]
			a.log.Info("ha: release", "group", act.Group, "vips", g.VIPs, "reason", act.Reason)
			if err := a.cfg.Iface.RemoveVIPs(ctx, g.VIPs); err != nil {
				a.log.Error("ha: remove VIPs", "group", act.Group, "err", err)
			}
		}
	}
	a.send(ctx, conn)
}
