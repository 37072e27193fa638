package control

// The control plane; see the package documentation, Control plane.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dispatcher/datapath"
	"github.com/ternlb/tern/dispatcher/maglev"
)

// Maps is the datapath as the control plane writes it. *Datapath
// implements it; tests use a fake map set.
type Maps interface {
	SetBackend(id uint32, b datapath.Backend) error
	DeleteBackend(id uint32) error
	SetService(key datapath.ServiceKey, svc datapath.Service, table []uint32) error
	DeleteService(key datapath.ServiceKey) error
}

// serviceLister lists the services a datapath holds; when Maps has it, the
// first reconcile removes services a previous run left that the
// configuration no longer has.
type serviceLister interface {
	Services() ([]datapath.ServiceKey, error)
}

// counterReader reads the datapath's counters, for Load.
type counterReader interface {
	Counters() (datapath.Counters, error)
}

// ServerSpec is a real server of a service.
type ServerSpec struct {
	Addr netip.Addr
	// MAC is the server's (mac mode) or its next hop's (ipip mode); nil
	// means the datapath's NextHopMAC.
	MAC net.HardwareAddr
	// Weight 0 drains the server.
	Weight uint32
	// Check names the health check that decides whether it is up; "" or
	// "none" means it is never checked (always up).
	Check string
}

// ServiceSpec is a virtual service and its servers.
type ServiceSpec struct {
	Key     datapath.ServiceKey
	Mode    datapath.Mode
	Servers []ServerSpec
}

// Spec is the desired state of every service.
type Spec struct {
	TableSize int // Maglev table size, a prime
	Services  []ServiceSpec
}

// SpecFromConfig turns a validated configuration into a Spec.
func SpecFromConfig(d *config.Dispatcher) (Spec, error) {
	spec := Spec{TableSize: d.TableSize}
	if spec.TableSize == 0 {
		spec.TableSize = maglev.DefaultSize
	}
	for i, s := range d.Services {
		vip, err := netip.ParseAddr(s.VIP)
		if err != nil {
			return Spec{}, fmt.Errorf("service %d: vip %q: %w", i, s.VIP, err)
		}
		proto, err := datapath.ParseProto(cmp.Or(s.Proto, "tcp"))
		if err != nil {
			return Spec{}, fmt.Errorf("service %d: %w", i, err)
		}
		mode, err := datapath.ParseMode(cmp.Or(s.Mode, d.Mode, "mac"))
		if err != nil {
			return Spec{}, fmt.Errorf("service %d: %w", i, err)
		}
		ss := ServiceSpec{Key: datapath.ServiceKey{VIP: vip, Port: uint16(s.Port), Proto: proto}, Mode: mode}
		for j, srv := range s.Servers {
			a, err := netip.ParseAddr(srv.Address)
			if err != nil {
				return Spec{}, fmt.Errorf("service %d server %d: address %q: %w", i, j, srv.Address, err)
			}
			var mac net.HardwareAddr
			if srv.MAC != "" {
				if mac, err = net.ParseMAC(srv.MAC); err != nil {
					return Spec{}, fmt.Errorf("service %d server %d: mac %q: %w", i, j, srv.MAC, err)
				}
			}
			w := srv.W()
			if w < 0 || w > maglev.MaxWeight {
				return Spec{}, fmt.Errorf("service %d server %d: weight %d out of range", i, j, w)
			}
			ss.Servers = append(ss.Servers, ServerSpec{Addr: a, MAC: mac, Weight: uint32(w), Check: cmp.Or(srv.Check, s.Check)})
		}
		spec.Services = append(spec.Services, ss)
	}
	return spec, nil
}

// VIPs returns the distinct VIPs of spec, sorted.
func (s Spec) VIPs() []netip.Addr {
	var out []netip.Addr
	for _, svc := range s.Services {
		out = append(out, svc.Key.VIP)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// Digest is a hash of what decides forwarding (table size, services,
// modes, servers, their MACs and weights; not health checks), sorted so
// that the order of the configuration does not matter. Dispatchers of a
// pair exchange it in heartbeats: different digests mean different
// Maglev tables.
func (s Spec) Digest() uint64 {
	var lines []string
	for _, svc := range s.Services {
		for _, srv := range svc.Servers {
			lines = append(lines, fmt.Sprintf("%s %s %s %s %d", svc.Key, svc.Mode, srv.Addr, srv.MAC, srv.Weight))
		}
		if len(svc.Servers) == 0 {
			lines = append(lines, fmt.Sprintf("%s %s", svc.Key, svc.Mode))
		}
	}
	slices.Sort(lines)
	h := fnv.New64a()
	fmt.Fprintf(h, "%d\n", s.TableSize)
	for _, l := range lines {
		fmt.Fprintln(h, l)
	}
	return h.Sum64() | 1 // never 0, which means "no digest"
}

// ownership of a VIP: unknown until HA has decided (a restart keeps what
// the pinned maps forward), then forward or not.
type ownership uint8

const (
	ownUnknown ownership = iota
	ownForward
	ownStandby
)

type healthKey struct {
	addr  netip.Addr
	check string
}

type backendKey struct {
	addr netip.Addr
	mac  string
}

func keyOf(s ServerSpec) backendKey { return backendKey{s.Addr, s.MAC.String()} }

// appliedService is what was last written for a service.
type appliedService struct {
	svc   datapath.Service
	input string // the Maglev input (names and weights) its table came from
	ids   string // the backend ids its names mapped to
	table []uint32
}

// Control is the dispatcher's control plane: it turns the Spec, the
// servers' health and the VIPs this dispatcher holds into datapath state,
// and reconciles whenever one of them changes. Tables are built aside and
// swapped in by the datapath in one update.
type Control struct {
	maps Maps
	log  *slog.Logger

	mu     sync.Mutex
	spec   Spec
	health map[healthKey]bool
	owned  map[netip.Addr]ownership
	kick   chan struct{}

	// Touched only by reconcile, under rmu.
	rmu      sync.Mutex
	first    bool
	ids      map[backendKey]uint32
	backends map[uint32]datapath.Backend
	services map[datapath.ServiceKey]appliedService
	tables   map[string]*maglev.Table // Maglev input -> table, for this round

	lmu          sync.Mutex
	load         map[netip.Addr]*VIPLoad
	lastRead     time.Time
	last         datapath.Counters
	flows        map[datapath.ServiceKey]*flowEstimate
	flowLifetime time.Duration
}

// Options configures a Control.
type Options struct {
	// OwnAll starts with every VIP forwarded (no HA); otherwise VIPs wait
	// for SetOwned.
	OwnAll bool
	// FlowLifetime is how long a TCP flow whose close the dispatcher never
	// saw counts as active at most (default DefaultFlowLifetime).
	FlowLifetime time.Duration
	Logger       *slog.Logger
}

// New returns a Control writing to maps.
func New(maps Maps, spec Spec, opts Options) (*Control, error) {
	if err := checkSpec(spec); err != nil {
		return nil, err
	}
	c := &Control{
		maps:     maps,
		log:      opts.Logger,
		spec:     spec,
		health:   map[healthKey]bool{},
		owned:    map[netip.Addr]ownership{},
		kick:     make(chan struct{}, 1),
		first:    true,
		ids:      map[backendKey]uint32{},
		backends: map[uint32]datapath.Backend{},
		services: map[datapath.ServiceKey]appliedService{},
		load:     map[netip.Addr]*VIPLoad{},
		flows:    map[datapath.ServiceKey]*flowEstimate{},

		flowLifetime: opts.FlowLifetime,
	}
	if c.flowLifetime <= 0 {
		c.flowLifetime = DefaultFlowLifetime
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if opts.OwnAll {
		for _, v := range spec.VIPs() {
			c.owned[v] = ownForward
		}
	}
	return c, nil
}

func checkSpec(spec Spec) error {
	if !maglev.IsPrime(spec.TableSize) || spec.TableSize > maglev.MaxSize {
		return fmt.Errorf("%w: got %d", maglev.ErrSize, spec.TableSize)
	}
	seen := map[datapath.ServiceKey]bool{}
	for _, s := range spec.Services {
		if seen[s.Key] {
			return fmt.Errorf("service %s twice", s.Key)
		}
		seen[s.Key] = true
		names := map[netip.Addr]bool{}
		for _, srv := range s.Servers {
			if names[srv.Addr] {
				return fmt.Errorf("service %s: server %s twice", s.Key, srv.Addr)
			}
			names[srv.Addr] = true
		}
	}
	return nil
}

// SetSpec replaces the desired services (a configuration reload).
func (c *Control) SetSpec(spec Spec) error {
	if err := checkSpec(spec); err != nil {
		return err
	}
	c.mu.Lock()
	c.spec = spec
	c.mu.Unlock()
	c.changed()
	return nil
}

// SetHealth records a health verdict: server addr, as checked by check, is
// up or not. A server is up until its first verdict says otherwise, so a
// restart does not drain servers while the first probes run.
func (c *Control) SetHealth(addr netip.Addr, check string, up bool) {
	c.mu.Lock()
	k := healthKey{addr, check}
	old, known := c.health[k]
	c.health[k] = up
	c.mu.Unlock()
	if !known || old != up {
		c.log.Info("dispatcher: server health", "server", addr, "check", check, "up", up)
		c.changed()
	}
}

// SetOwned says whether this dispatcher forwards vips (HA took or released
// them).
func (c *Control) SetOwned(vips []netip.Addr, forward bool) {
	o := ownStandby
	if forward {
		o = ownForward
	}
	c.mu.Lock()
	for _, v := range vips {
		c.owned[v] = o
	}
	c.mu.Unlock()
	c.changed()
}

func (c *Control) changed() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Run reconciles on every change until ctx ends, retrying failures every
// second, and samples the counters for Load every loadEvery (0: never).
// The datapath keeps its state when Run returns.
func (c *Control) Run(ctx context.Context, loadEvery time.Duration) error {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	var sample <-chan time.Time
	if cr, ok := c.maps.(counterReader); ok && loadEvery > 0 {
		t := time.NewTicker(loadEvery)
		defer t.Stop()
		sample = t.C
		c.sampleLoad(cr, time.Now())
	}
	c.changed()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.kick:
		case <-retry.C:
		case now := <-sample:
			c.sampleLoad(c.maps.(counterReader), now)
			continue
		}
		if err := c.Reconcile(); err != nil {
			c.log.Error("dispatcher: reconcile failed, retrying in 1s", "err", err)
			retry.Reset(time.Second)
		}
	}
}

// desired returns copies of the spec, the servers' health and the VIPs'
// ownership, taken together under mu, for work done without it.
func (c *Control) desired() (Spec, map[healthKey]bool, map[netip.Addr]ownership) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.spec, maps.Clone(c.health), maps.Clone(c.owned)
}

// Reconcile pushes the desired state into the datapath now. Order keeps
// every table valid at every step: backends first, then each service's
// new table (swapped in whole by the datapath), then removals of services,
// and last of backends no table names any more.
func (c *Control) Reconcile() error {
	c.rmu.Lock()
	defer c.rmu.Unlock()

	spec, health, owned := c.desired()

	var errs []error
	var existing map[datapath.ServiceKey]bool
	if c.first {
		existing = map[datapath.ServiceKey]bool{}
		if l, ok := c.maps.(serviceLister); ok {
			keys, err := l.Services()
			if err != nil {
				return fmt.Errorf("list datapath services: %w", err)
			}
			for _, k := range keys {
				existing[k] = true
			}
		}
		c.allocateInitial(spec)
	}

	// Which services forward: owned VIPs, and at the first round after a
	// restart those HA has not decided yet that the pinned maps still hold.
	want := map[datapath.ServiceKey]ServiceSpec{}
	for _, s := range spec.Services {
		switch owned[s.Key.VIP] {
		case ownForward:
			want[s.Key] = s
		case ownUnknown:
			if c.first && existing[s.Key] {
				want[s.Key] = s
			} else if _, ok := c.services[s.Key]; ok {
				want[s.Key] = s // keep what we forward until HA decides
			}
		}
	}

	// Backends of wanted services.
	wantBackends := map[uint32]datapath.Backend{}
	for _, s := range spec.Services {
		if _, ok := want[s.Key]; !ok {
			continue
		}
		for _, srv := range s.Servers {
			id, err := c.idFor(keyOf(srv))
			if err != nil {
				return err
			}
			wantBackends[id] = datapath.Backend{IP: srv.Addr, MAC: srv.MAC}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(wantBackends)) {
		b := wantBackends[id]
		if old, ok := c.backends[id]; ok && old.IP == b.IP && old.MAC.String() == b.MAC.String() {
			continue
		}
		if err := c.maps.SetBackend(id, b); err != nil {
			errs = append(errs, fmt.Errorf("backend %s: %w", b.IP, err))
			continue
		}
		c.backends[id] = b
	}

	// Services: build each table aside, then swap it in.
	c.tables = map[string]*maglev.Table{}
	for _, s := range spec.Services {
		if _, ok := want[s.Key]; !ok {
			continue
		}
		if err := c.applyService(s, spec.TableSize, health); err != nil {
			errs = append(errs, err)
		}
	}
	c.tables = nil
	for _, k := range sortedKeys(c.services) {
		if _, ok := want[k]; ok {
			continue
		}
		if err := c.maps.DeleteService(k); err != nil {
			errs = append(errs, fmt.Errorf("delete service %s: %w", k, err))
			continue
		}
		delete(c.services, k)
		c.log.Info("dispatcher: service stopped", "service", k)
	}
	if c.first {
		for k := range existing {
			if _, ok := want[k]; ok {
				continue
			}
			if err := c.maps.DeleteService(k); err != nil {
				errs = append(errs, fmt.Errorf("delete stale service %s: %w", k, err))
			}
		}
	}

	// Backends no service names any more. A service whose update failed
	// still names its old ids, so keep those.
	inUse := map[uint32]bool{}
	for _, a := range c.services {
		for _, id := range a.table {
			inUse[id] = true
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.backends)) {
		if _, ok := wantBackends[id]; ok || inUse[id] {
			continue
		}
		if err := c.maps.DeleteBackend(id); err != nil {
			errs = append(errs, fmt.Errorf("delete backend %s: %w", c.backends[id].IP, err))
			continue
		}
		delete(c.backends, id)
	}
	// Forget ids of servers gone from the configuration once unused.
	live := map[backendKey]bool{}
	for _, s := range spec.Services {
		for _, srv := range s.Servers {
			live[keyOf(srv)] = true
		}
	}
	for k, id := range c.ids {
		if _, set := c.backends[id]; !live[k] && !set && !inUse[id] {
			delete(c.ids, k)
		}
	}
	if len(errs) == 0 {
		c.first = false
	}
	return errors.Join(errs...)
}

func (c *Control) applyService(s ServiceSpec, size int, health map[healthKey]bool) error {
	// A backend that could not be written must not be named by a table:
	// keep the service's old table until a retry succeeds.
	for _, srv := range s.Servers {
		if b, ok := c.backends[c.ids[keyOf(srv)]]; !ok || b.IP != srv.Addr {
			return fmt.Errorf("service %s: server %s is not in the datapath yet, table kept", s.Key, srv.Addr)
		}
	}
	in := make([]maglev.Backend, len(s.Servers))
	var sig strings.Builder
	sorted := slices.Clone(s.Servers)
	slices.SortFunc(sorted, func(a, b ServerSpec) int { return a.Addr.Compare(b.Addr) })
	for i, srv := range sorted {
		w := srv.Weight
		if up, ok := health[healthKey{srv.Addr, srv.Check}]; ok && !up && srv.Check != "" && srv.Check != "none" {
			w = 0
		}
		in[i] = maglev.Backend{Name: srv.Addr.String(), Weight: w}
		fmt.Fprintf(&sig, "%s=%d,", srv.Addr, w)
	}
	input := strconv.Itoa(size) + ":" + sig.String()
	// ids the names map to, so a re-allocated id also rewrites the table.
	idOf := map[string]uint32{}
	var idSig strings.Builder
	for _, srv := range sorted {
		id := c.ids[keyOf(srv)]
		idOf[srv.Addr.String()] = id
		fmt.Fprintf(&idSig, "%d,", id)
	}
	svc := datapath.Service{Mode: s.Mode}
	if old, ok := c.services[s.Key]; ok && old.input == input && old.ids == idSig.String() && old.svc == svc {
		return nil
	}
	t := c.tables[input]
	if t == nil {
		var err error
		if t, err = maglev.Build(in, size); err != nil {
			return fmt.Errorf("service %s: %w", s.Key, err)
		}
		c.tables[input] = t
	}
	table := make([]uint32, 0, t.Len())
	if len(t.Backends) > 0 {
		ids := make([]uint32, len(t.Backends))
		for i, b := range t.Backends {
			ids[i] = idOf[b.Name]
		}
		for _, slot := range t.Slots {
			table = append(table, ids[slot])
		}
	}
	if err := c.maps.SetService(s.Key, svc, table); err != nil {
		return fmt.Errorf("service %s: %w", s.Key, err)
	}
	_, existed := c.services[s.Key]
	c.services[s.Key] = appliedService{svc: svc, input: input, ids: idSig.String(), table: table}
	up := 0
	for _, b := range in {
		if b.Weight > 0 {
			up++
		}
	}
	if !existed {
		c.log.Info("dispatcher: service forwarding", "service", s.Key, "mode", s.Mode, "servers", len(in), "serving", up)
	} else {
		c.log.Info("dispatcher: service table updated", "service", s.Key, "servers", len(in), "serving", up)
	}
	if up == 0 {
		c.log.Warn("dispatcher: no server of the service is up: its packets are dropped", "service", s.Key)
	}
	return nil
}

// allocateInitial numbers the configuration's backends in sorted order,
// so a restart with the same configuration writes the same ids the pinned
// tables already name.
func (c *Control) allocateInitial(spec Spec) {
	var keys []backendKey
	for _, s := range spec.Services {
		for _, srv := range s.Servers {
			keys = append(keys, keyOf(srv))
		}
	}
	slices.SortFunc(keys, func(a, b backendKey) int {
		return cmp.Or(a.addr.Compare(b.addr), strings.Compare(a.mac, b.mac))
	})
	keys = slices.Compact(keys)
	for i, k := range keys {
		c.ids[k] = uint32(i)
	}
}

// idFor returns k's id, giving a new backend the lowest id that neither
// another backend nor an applied table uses.
func (c *Control) idFor(k backendKey) (uint32, error) {
	if id, ok := c.ids[k]; ok {
		return id, nil
	}
	taken := map[uint32]bool{}
	for _, id := range c.ids {
		taken[id] = true
	}
	for _, a := range c.services {
		for _, id := range a.table {
			taken[id] = true
		}
	}
	for id := uint32(0); id < datapath.DefaultMaxBackends; id++ {
		if !taken[id] {
			c.ids[k] = id
			return id, nil
		}
	}
	return 0, fmt.Errorf("no free backend id for %s (at most %d backends)", k.addr, datapath.DefaultMaxBackends)
}

func sortedKeys[V any](m map[datapath.ServiceKey]V) []datapath.ServiceKey {
	return slices.SortedFunc(maps.Keys(m), datapath.ServiceKey.Compare)
}
