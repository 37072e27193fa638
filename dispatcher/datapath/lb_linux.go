package datapath

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Values shared with bpf/lb.c.
const (
	backendSet   = 1
	backendLocal = 2

	statFragment   = 0
	statNoBackend  = 1
	statICMPTooBig = 2
	statMax        = 3

	// maxTableSize bounds a Maglev table (entries of 4 bytes each).
	maxTableSize = 1 << 24

	bpffsMount = "/sys/fs/bpf"
	linkPin    = "link"
)

// LB is the XDP load balancer attached to one interface, and the maps
// it reads. Its methods are safe for concurrent use.
type LB struct {
	cfg      Config
	dir      string // pin directory; "" when not pinned (tests)
	ifaceMAC net.HardwareAddr

	objs      lbObjects
	link      link.Link // nil when not attached (tests)
	owner     *ebpf.Map // pinned network namespace of the instance; nil when not pinned
	ephemeral bool      // the pins are in a private bpffs (Config.Ephemeral)
	lock      *os.File  // flock on the pin directory; nil when not pinned

	mu       sync.Mutex
	services map[ServiceKey]lbSvcVal
	backends map[uint32]bool // ids set
	closed   bool
}

// Open loads the load-balancer program and attaches it to
// cfg.Interface, or takes over the program and maps an earlier LB of
// the same instance pinned: the maps keep their contents (services,
// tables, backends, counters) and the new program replaces the old in one
// step, so no packet goes unhandled across a restart.
//
// One LB at a time holds an instance: Open waits up to 5s
// for another (an old process still shutting down) to close it, then
// fails with ErrInstanceBusy.
func Open(cfg Config) (*LB, error) {
	return openLB(cfg, 5*time.Second)
}

var (
	// ErrInstanceBusy means another LB holds the instance's pins.
	ErrInstanceBusy = errors.New("dispatcher instance in use by another process")
	// ErrOtherNetns means the instance's pinned program is attached in
	// another network namespace: interface indexes repeat across
	// namespaces, so taking it over would leave this one's interface
	// without a program and break the other's.
	ErrOtherNetns = errors.New("dispatcher instance belongs to another network namespace")
	// ErrPrivateBPFFS means the bpffs the pins would go to is not the
	// host's (a private mount namespace's, as `ip netns exec` makes): it
	// vanishes when the process exits, and the program with it.
	ErrPrivateBPFFS = errors.New("bpffs is private to this process's mount namespace; the pins would not outlive it")
)

func openLB(cfg Config, lockWait time.Duration) (*LB, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	iface, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("datapath: interface %q: %w", cfg.Interface, err)
	}
	if len(iface.HardwareAddr) != 6 {
		return nil, fmt.Errorf("datapath: interface %q: no Ethernet address", cfg.Interface)
	}
	if !cfg.TunnelSrc.IsValid() {
		cfg.TunnelSrc = firstIPv4(iface)
	}
	dir := filepath.Join(cfg.BPFFSRoot, cfg.Instance)
	mounted, err := mountBPFFS(cfg.BPFFSRoot)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("bpf pin directory: %w", err)
	}
	private := checkHostBPFFS(dir, mounted)
	if private != nil && (!cfg.Ephemeral || !errors.Is(private, ErrPrivateBPFFS)) {
		return nil, private
	}
	if err := rlimit.RemoveMemlock(); err != nil { // kernels before 5.11 count BPF memory against it
		return nil, fmt.Errorf("datapath: raise RLIMIT_MEMLOCK: %w", err)
	}
	lock, err := lockDir(dir, lockWait)
	if err != nil {
		return nil, fmt.Errorf("dispatcher instance %q: %w", cfg.Instance, err)
	}
	ns, err := currentNetns()
	if err != nil {
		lock.Close()
		return nil, err
	}
	// Before anything is loaded: loading reuses the pinned maps and
	// rewrites their configuration.
	if err := checkOwner(dir, cfg.Instance, ns); err != nil {
		lock.Close()
		return nil, err
	}
	d, err := newLB(cfg, iface.HardwareAddr, dir)
	if err != nil {
		lock.Close()
		return nil, err
	}
	d.lock = lock
	d.ephemeral = private != nil
	if err := d.attach(iface.Index); err != nil {
		d.objs.Close()
		lock.Close()
		return nil, err
	}
	if d.owner, err = pinOwner(dir, ns); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// netnsID names a network namespace: the device and inode of its nsfs
// file, as /proc/PID/ns/net shows them (net:[inode]).
type netnsID [2]uint64

func (n netnsID) String() string { return fmt.Sprintf("net:[%d]", n[1]) }

// currentNetns is the network namespace of the calling thread (a test
// may have switched one thread alone).
func currentNetns() (netnsID, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return netnsID{}, fmt.Errorf("network namespace of this process: %w", err)
	}
	return netnsID{uint64(st.Dev), st.Ino}, nil
}

// ownerPin is the pinned map, beside the link and the datapath's maps,
// that holds the network namespace the instance's program is attached in.
const ownerPin = "tern_owner"

// checkOwner refuses an instance whose pinned link is still attached in
// another network namespace than ns. Pins without an owner (an older
// Tern's) and links whose interface is gone are not refused.
func checkOwner(dir, instance string, ns netnsID) error {
	l, err := link.LoadPinnedLink(filepath.Join(dir, linkPin), nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open pinned XDP link in %s: %w", dir, err)
	}
	info, err := l.Info()
	l.Close()
	if err != nil || info.XDP() == nil || info.XDP().Ifindex == 0 {
		return nil // not attached any more: attach starts afresh
	}
	m, err := ebpf.LoadPinnedMap(filepath.Join(dir, ownerPin), nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open pinned owner in %s: %w", dir, err)
	}
	defer m.Close()
	var owner netnsID
	if err := m.Lookup(uint32(0), &owner); err != nil {
		return fmt.Errorf("read pinned owner in %s: %w", dir, err)
	}
	if owner != (netnsID{}) && owner != ns {
		return fmt.Errorf("instance %q in %s is attached in network namespace %s, this process is in %s: give each namespace its own --instance (or its own bpffs): %w", instance, dir, owner, ns, ErrOtherNetns)
	}
	return nil
}

// pinOwner records ns as the network namespace of the instance in dir.
func pinOwner(dir string, ns netnsID) (*ebpf.Map, error) {
	m, err := ebpf.NewMapWithOptions(&ebpf.MapSpec{
		Name: ownerPin, Type: ebpf.Array, KeySize: 4, ValueSize: 16, MaxEntries: 1, Pinning: ebpf.PinByName,
	}, ebpf.MapOptions{PinPath: dir})
	if err != nil {
		return nil, fmt.Errorf("pin owner in %s: %w", dir, err)
	}
	if err := m.Put(uint32(0), ns); err != nil {
		m.Close()
		return nil, fmt.Errorf("write owner in %s: %w", dir, err)
	}
	return m, nil
}

// checkHostBPFFS returns ErrPrivateBPFFS when this process had to mount
// the bpffs (mounted) in a mount namespace other than its parent's: one
// made for it alone, as `ip netns exec` makes (with a fresh /sys, where
// no bpffs is mounted), so the bpffs and the pins in it go when the
// process does. A bpffs that was already mounted, or one mounted in the
// parent's mount namespace, outlives the process. Where the parent's
// namespace cannot be read, it says nothing.
func checkHostBPFFS(dir string, mounted bool) error {
	if !mounted {
		return nil
	}
	var mine, parent unix.Stat_t
	if unix.Stat("/proc/thread-self/ns/mnt", &mine) != nil || unix.Stat(fmt.Sprintf("/proc/%d/ns/mnt", os.Getppid()), &parent) != nil {
		return nil
	}
	if mine.Dev == parent.Dev && mine.Ino == parent.Ino {
		return nil
	}
	return fmt.Errorf("%s: %w: it had to be mounted in this process's own mount namespace (run under `ip netns exec`, which mounts a private /sys?): start it with nsenter --net=/run/netns/NAME, which keeps the host's mounts, or pass --ephemeral to accept that the program detaches at exit", dir, ErrPrivateBPFFS)
}

// lockDir takes an exclusive flock on dir, polling up to wait.
func lockDir(dir string, wait time.Duration) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("open pin directory: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock pin directory %s: %w", dir, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%s: %w", dir, ErrInstanceBusy)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (cfg Config) withDefaults() (Config, error) {
	if cfg.Interface == "" {
		return cfg, errors.New("datapath: no interface")
	}
	if cfg.Instance == "" {
		cfg.Instance = cfg.Interface
	}
	if strings.ContainsAny(cfg.Instance, "/") || cfg.Instance == "." || cfg.Instance == ".." {
		return cfg, fmt.Errorf("dispatcher instance %q: must be a plain name", cfg.Instance)
	}
	if cfg.BPFFSRoot == "" {
		cfg.BPFFSRoot = DefaultBPFFSRoot
	}
	if cfg.MaxServices == 0 {
		cfg.MaxServices = DefaultMaxServices
	}
	if cfg.MaxBackends == 0 {
		cfg.MaxBackends = DefaultMaxBackends
	}
	if cfg.MaxServices < 0 || cfg.MaxServices > 1<<16 {
		return cfg, fmt.Errorf("dispatcher max services %d: want 1 to 65536", cfg.MaxServices)
	}
	if cfg.MaxBackends < 0 || cfg.MaxBackends > 1<<20 {
		return cfg, fmt.Errorf("dispatcher max backends %d: want 1 to 1048576", cfg.MaxBackends)
	}
	if cfg.NextHopMAC != nil && len(cfg.NextHopMAC) != 6 {
		return cfg, fmt.Errorf("dispatcher next hop MAC %s: want 6 bytes", cfg.NextHopMAC)
	}
	if cfg.TunnelSrc.IsValid() && !cfg.TunnelSrc.Unmap().Is4() {
		return cfg, fmt.Errorf("dispatcher tunnel source %s: want an IPv4 address", cfg.TunnelSrc)
	}
	if cfg.XDPMode != XDPGeneric && cfg.XDPMode != XDPNative {
		return cfg, fmt.Errorf("dispatcher xdp mode %d: want generic or native", cfg.XDPMode)
	}
	return cfg, nil
}

func firstIPv4(iface *net.Interface) netip.Addr {
	addrs, err := iface.Addrs()
	if err != nil {
		return netip.Addr{}
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
			return p.Addr()
		}
	}
	return netip.Addr{}
}

// mountBPFFS mounts bpffs at /sys/fs/bpf when root lies under it and
// nothing is mounted there yet, and says whether it did.
func mountBPFFS(root string) (bool, error) {
	if root != bpffsMount && !strings.HasPrefix(root, bpffsMount+"/") {
		return false, nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(bpffsMount, &st); err != nil {
		return false, fmt.Errorf("bpffs %s: %w", bpffsMount, err)
	}
	if st.Type == unix.BPF_FS_MAGIC {
		return false, nil
	}
	if err := unix.Mount("bpf", bpffsMount, "bpf", 0, "mode=0700"); err != nil {
		return false, fmt.Errorf("mount bpffs at %s: %w", bpffsMount, err)
	}
	return true, nil
}

// newLB loads the program and its maps, pinned under dir (or not
// pinned when dir is ""), and reads back what pinned maps hold.
func newLB(cfg Config, ifaceMAC net.HardwareAddr, dir string) (*LB, error) {
	spec, err := loadLb()
	if err != nil {
		return nil, fmt.Errorf("load BPF spec: %w", err)
	}
	sizes := map[string]int{
		lbMapLbServices:        cfg.MaxServices,
		lbMapLbTables:          2 * cfg.MaxServices,
		lbMapLbSvcCounters:     cfg.MaxServices,
		lbMapLbSvcTcp:          cfg.MaxServices,
		lbMapLbBackends:        cfg.MaxBackends,
		lbMapLbBackendCounters: cfg.MaxBackends,
	}
	for name, n := range sizes {
		spec.Maps[name].MaxEntries = uint32(n)
	}
	opts := &ebpf.CollectionOptions{}
	if dir != "" {
		opts.Maps.PinPath = dir
	} else {
		for _, m := range spec.Maps {
			m.Pinning = ebpf.PinNone
		}
	}
	d := &LB{
		cfg:      cfg,
		dir:      dir,
		ifaceMAC: ifaceMAC,
		services: map[ServiceKey]lbSvcVal{},
		backends: map[uint32]bool{},
	}
	if err := spec.LoadAndAssign(&d.objs, opts); err != nil {
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return nil, fmt.Errorf("load XDP program: pinned maps in %s do not fit this configuration (max services/backends changed?); remove the directory or detach first: %w", dir, err)
		}
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load XDP program: %+v", ve)
		}
		return nil, fmt.Errorf("load XDP program: %w", err)
	}
	if err := d.writeConfig(); err != nil {
		d.objs.Close()
		return nil, err
	}
	if err := d.readBack(); err != nil {
		d.objs.Close()
		return nil, err
	}
	return d, nil
}

func (d *LB) writeConfig() error {
	var c lbDpConfig
	copy(c.IfaceMac[:], d.ifaceMAC)
	copy(c.NexthopMac[:], d.cfg.NextHopMAC)
	if d.cfg.TunnelSrc.IsValid() {
		c.TunnelSrc = be32(d.cfg.TunnelSrc)
	}
	if err := d.objs.LbConfig.Put(uint32(0), c); err != nil {
		return fmt.Errorf("write datapath config map: %w", err)
	}
	return nil
}

// readBack learns the services and backends pinned maps already hold.
func (d *LB) readBack() error {
	var (
		k lbSvcKey
		v lbSvcVal
	)
	it := d.objs.LbServices.Iterate()
	for it.Next(&k, &v) {
		key, ok := serviceKeyFromMap(k)
		if !ok {
			continue
		}
		d.services[key] = v
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read pinned services: %w", err)
	}
	var (
		id uint32
		b  lbBackend
	)
	it = d.objs.LbBackends.Iterate()
	for it.Next(&id, &b) {
		if b.Flags&backendSet != 0 {
			d.backends[id] = true
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read pinned backends: %w", err)
	}
	return nil
}

// attach attaches the program to ifindex, or, when a pinned link is
// already attached there, swaps the program of that link for ours.
func (d *LB) attach(ifindex int) error {
	path := filepath.Join(d.dir, linkPin)
	if l, err := link.LoadPinnedLink(path, nil); err == nil {
		info, ierr := l.Info()
		if ierr == nil && info.XDP() != nil && int(info.XDP().Ifindex) == ifindex {
			if err := l.Update(d.objs.TernLb); err != nil {
				l.Close()
				return fmt.Errorf("replace XDP program on %s: %w", d.cfg.Interface, err)
			}
			d.link = l
			return nil
		}
		// The interface went away or was recreated: start afresh.
		l.Unpin()
		l.Close()
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("open pinned XDP link %s: %w", path, err)
	}
	flags := link.XDPGenericMode
	if d.cfg.XDPMode == XDPNative {
		flags = link.XDPDriverMode
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: d.objs.TernLb, Interface: ifindex, Flags: flags})
	if err != nil {
		return fmt.Errorf("attach XDP (%s) to %s: %w", d.cfg.XDPMode, d.cfg.Interface, err)
	}
	if err := l.Pin(path); err != nil {
		l.Close()
		return fmt.Errorf("pin XDP link at %s: %w", path, err)
	}
	d.link = l
	return nil
}

// Persistent reports whether the program and maps outlive this process:
// false when Config.Ephemeral let Open pin them in a private bpffs.
func (d *LB) Persistent() bool { return !d.ephemeral }

// Close releases the LB's file descriptors. The program stays
// attached and the maps keep their contents: they are pinned, and the next
// Open of the same instance takes them over.
func (d *LB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	if d.link != nil {
		errs = append(errs, d.link.Close())
	}
	errs = append(errs, d.objs.Close())
	if d.owner != nil {
		errs = append(errs, d.owner.Close())
	}
	if d.lock != nil {
		errs = append(errs, d.lock.Close())
	}
	return errors.Join(errs...)
}

// Detach detaches the program from the interface, removes the pins and
// closes the LB.
func (d *LB) Detach() error {
	d.mu.Lock()
	var errs []error
	if !d.closed {
		if d.link != nil {
			errs = append(errs, d.link.Unpin())
		}
		if d.owner != nil {
			errs = append(errs, d.owner.Unpin())
		}
		for _, m := range []*ebpf.Map{d.objs.LbServices, d.objs.LbTables, d.objs.LbBackends, d.objs.LbConfig, d.objs.LbSvcCounters, d.objs.LbSvcTcp, d.objs.LbBackendCounters, d.objs.LbStats} {
			if m.IsPinned() {
				errs = append(errs, m.Unpin())
			}
		}
	}
	d.mu.Unlock()
	if d.dir != "" { // still under the lock: nobody reopens it meanwhile
		if err := os.Remove(d.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove pin directory: %w", err))
		}
	}
	errs = append(errs, d.Close())
	return errors.Join(errs...)
}

// SetBackend sets (or replaces) backend id. Maglev tables name backends by
// id; a packet whose table slot names an id that is not set is dropped.
func (d *LB) SetBackend(id uint32, b Backend) error {
	if int64(id) >= int64(d.cfg.MaxBackends) {
		return fmt.Errorf("backend id %d: want below %d", id, d.cfg.MaxBackends)
	}
	if !b.IP.IsValid() {
		return fmt.Errorf("backend %d: no address", id)
	}
	if b.MAC != nil && len(b.MAC) != 6 {
		return fmt.Errorf("backend %d MAC %s: want 6 bytes", id, b.MAC)
	}
	v := lbBackend{Family: 6, Flags: backendSet}
	if ip := b.IP.Unmap(); ip.Is4() {
		v.Family = 4
		a := ip.As4()
		copy(v.Addr[:], a[:])
	} else {
		a := ip.As16()
		copy(v.Addr[:], a[:])
	}
	copy(v.Mac[:], b.MAC)
	if b.Local {
		v.Flags |= backendLocal
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return net.ErrClosed
	}
	if !d.backends[id] {
		if err := d.zeroCounter(d.objs.LbBackendCounters, id); err != nil {
			return fmt.Errorf("backend %d: %w", id, err)
		}
	}
	if err := d.objs.LbBackends.Put(id, v); err != nil {
		return fmt.Errorf("set backend %d: %w", id, err)
	}
	d.backends[id] = true
	return nil
}

// DeleteBackend unsets backend id and clears its counters.
func (d *LB) DeleteBackend(id uint32) error {
	if int64(id) >= int64(d.cfg.MaxBackends) {
		return fmt.Errorf("backend id %d: want below %d", id, d.cfg.MaxBackends)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return net.ErrClosed
	}
	if err := d.objs.LbBackends.Put(id, lbBackend{}); err != nil {
		return fmt.Errorf("delete backend %d: %w", id, err)
	}
	delete(d.backends, id)
	if err := d.zeroCounter(d.objs.LbBackendCounters, id); err != nil {
		return fmt.Errorf("backend %d: %w", id, err)
	}
	return nil
}

// SetService adds or changes a service and its Maglev table (slot ->
// backend id; an empty table drops the service's packets). The table is
// written aside in full, then the service entry is switched to it in one
// map update: the datapath sees the old table or the new, never a mix.
func (d *LB) SetService(key ServiceKey, svc Service, table []uint32) error {
	mk, err := key.mapKey()
	if err != nil {
		return err
	}
	if svc.Mode != ModeMAC && svc.Mode != ModeIPIP {
		return fmt.Errorf("service %s: mode %s: want mac or ipip", key, svc.Mode)
	}
	if svc.TunnelSrc.IsValid() && !svc.TunnelSrc.Unmap().Is4() {
		return fmt.Errorf("service %s: tunnel source %s: want an IPv4 address", key, svc.TunnelSrc)
	}
	if svc.Mode == ModeIPIP && !svc.TunnelSrc.IsValid() && !d.cfg.TunnelSrc.IsValid() {
		return fmt.Errorf("service %s: ipip mode needs a tunnel source address (the interface %s has no IPv4 address)", key, d.cfg.Interface)
	}
	if len(table) > maxTableSize {
		return fmt.Errorf("service %s: table of %d entries: want at most %d", key, len(table), maxTableSize)
	}
	for i, id := range table {
		if int64(id) >= int64(d.cfg.MaxBackends) {
			return fmt.Errorf("service %s: table slot %d: backend id %d: want below %d", key, i, id, d.cfg.MaxBackends)
		}
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return net.ErrClosed
	}
	val, exists := d.services[key]
	if exists {
		val.Table = val.Index*2 + (val.Table+1)%2
	} else {
		idx, ok := d.freeIndex()
		if !ok {
			return fmt.Errorf("service %s: all %d service slots in use", key, d.cfg.MaxServices)
		}
		if err := d.zeroServiceCounters(idx); err != nil {
			return fmt.Errorf("service %s: %w", key, err)
		}
		val = lbSvcVal{Index: idx, Table: idx * 2}
	}
	val.TableSize = uint32(len(table))
	val.Mode = uint8(svc.Mode)
	val.TunnelSrc = 0
	if svc.TunnelSrc.IsValid() {
		val.TunnelSrc = be32(svc.TunnelSrc)
	}

	inner, err := newTable(table)
	if err != nil {
		return fmt.Errorf("service %s: %w", key, err)
	}
	defer inner.Close() // the outer map holds its own reference
	if err := d.objs.LbTables.Put(val.Table, inner); err != nil {
		return fmt.Errorf("service %s: install table: %w", key, err)
	}
	if err := d.objs.LbServices.Put(mk, val); err != nil {
		return fmt.Errorf("service %s: switch to new table: %w", key, err)
	}
	d.services[key] = val
	return nil
}

// newTable builds a frozen inner map holding table.
func newTable(table []uint32) (*ebpf.Map, error) {
	n := max(len(table), 1)
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       "lb_table",
		Type:       ebpf.Array,
		KeySize:    4,
		ValueSize:  4,
		MaxEntries: uint32(n),
		Flags:      unix.BPF_F_INNER_MAP,
	})
	if err != nil {
		return nil, fmt.Errorf("create table map: %w", err)
	}
	if len(table) > 0 {
		keys := make([]uint32, len(table))
		for i := range keys {
			keys[i] = uint32(i)
		}
		if _, err := m.BatchUpdate(keys, table, nil); err != nil {
			m.Close()
			return nil, fmt.Errorf("fill table map: %w", err)
		}
	}
	if err := m.Freeze(); err != nil {
		m.Close()
		return nil, fmt.Errorf("freeze table map: %w", err)
	}
	return m, nil
}

func (d *LB) freeIndex() (uint32, bool) {
	used := make([]bool, d.cfg.MaxServices)
	for _, v := range d.services {
		if int(v.Index) < len(used) {
			used[v.Index] = true
		}
	}
	for i, u := range used {
		if !u {
			return uint32(i), true
		}
	}
	return 0, false
}

// DeleteService removes a service: its packets pass to the kernel again.
// Deleting a service that is not set is not an error.
func (d *LB) DeleteService(key ServiceKey) error {
	mk, err := key.mapKey()
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return net.ErrClosed
	}
	val, exists := d.services[key]
	if err := d.objs.LbServices.Delete(mk); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete service %s: %w", key, err)
	}
	delete(d.services, key)
	if !exists {
		return nil
	}
	for _, slot := range []uint32{val.Index * 2, val.Index*2 + 1} {
		if err := d.objs.LbTables.Delete(slot); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete service %s: table: %w", key, err)
		}
	}
	if err := d.zeroServiceCounters(val.Index); err != nil {
		return fmt.Errorf("delete service %s: %w", key, err)
	}
	return nil
}

// Services lists the services the datapath holds, sorted, including those
// found in pinned maps at open: a control plane reconciles against it.
func (d *LB) Services() ([]ServiceKey, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, net.ErrClosed
	}
	return slices.SortedFunc(maps.Keys(d.services), ServiceKey.Compare), nil
}

// Counters reads the per-CPU counters and sums them.
func (d *LB) Counters() (Counters, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return Counters{}, net.ErrClosed
	}
	c := Counters{
		Services: make(map[ServiceKey]Counter, len(d.services)),
		Backends: make(map[uint32]Counter, len(d.backends)),
		TCP:      make(map[ServiceKey]TCPCounter, len(d.services)),
	}
	for k, v := range d.services {
		n, err := sumCounter(d.objs.LbSvcCounters, v.Index)
		if err != nil {
			return Counters{}, fmt.Errorf("counters of service %s: %w", k, err)
		}
		c.Services[k] = n
		if k.Proto != ProtoTCP {
			continue
		}
		tc, err := sumTCPCounter(d.objs.LbSvcTcp, v.Index)
		if err != nil {
			return Counters{}, fmt.Errorf("TCP counters of service %s: %w", k, err)
		}
		c.TCP[k] = tc
	}
	for id := range d.backends {
		n, err := sumCounter(d.objs.LbBackendCounters, id)
		if err != nil {
			return Counters{}, fmt.Errorf("counters of backend %d: %w", id, err)
		}
		c.Backends[id] = n
	}
	for i, dst := range map[uint32]*uint64{statFragment: &c.Fragments, statNoBackend: &c.NoBackend, statICMPTooBig: &c.ICMPTooBig} {
		var per []uint64
		if err := d.objs.LbStats.Lookup(i, &per); err != nil {
			return Counters{}, fmt.Errorf("datapath statistics: %w", err)
		}
		for _, x := range per {
			*dst += x
		}
	}
	return c, nil
}

func sumCounter(m *ebpf.Map, idx uint32) (Counter, error) {
	var per []lbCounter
	if err := m.Lookup(idx, &per); err != nil {
		return Counter{}, err
	}
	var c Counter
	for _, x := range per {
		c.Packets += x.Packets
		c.Bytes += x.Bytes
	}
	return c, nil
}

func (d *LB) zeroCounter(m *ebpf.Map, idx uint32) error {
	return zeroPerCPU[lbCounter](m, idx)
}

// zeroServiceCounters clears a service index's packet and TCP counters.
func (d *LB) zeroServiceCounters(idx uint32) error {
	if err := zeroPerCPU[lbCounter](d.objs.LbSvcCounters, idx); err != nil {
		return err
	}
	return zeroPerCPU[lbTcpCounter](d.objs.LbSvcTcp, idx)
}

func zeroPerCPU[T any](m *ebpf.Map, idx uint32) error {
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("count CPUs: %w", err)
	}
	if err := m.Put(idx, make([]T, n)); err != nil {
		return fmt.Errorf("clear counters: %w", err)
	}
	return nil
}

func sumTCPCounter(m *ebpf.Map, idx uint32) (TCPCounter, error) {
	var per []lbTcpCounter
	if err := m.Lookup(idx, &per); err != nil {
		return TCPCounter{}, err
	}
	var c TCPCounter
	for _, x := range per {
		c.Opened += x.Syn
		c.Fin += x.Fin
		c.Reset += x.Rst
		c.StrayReset += x.RstStray
	}
	return c, nil
}

// mapKey is the key's form in lb_services.
func (k ServiceKey) mapKey() (lbSvcKey, error) {
	if !k.VIP.IsValid() {
		return lbSvcKey{}, fmt.Errorf("service %s: no VIP", k)
	}
	if k.Proto != ProtoTCP && k.Proto != ProtoUDP {
		return lbSvcKey{}, fmt.Errorf("service %s: protocol must be tcp or udp", k)
	}
	if k.Port == 0 {
		return lbSvcKey{}, fmt.Errorf("service %s: port 0", k)
	}
	var mk lbSvcKey
	if v := k.VIP.Unmap(); v.Is4() {
		a := v.As4()
		copy(mk.Addr[:], a[:])
		mk.Family = 4
	} else {
		a := v.As16()
		copy(mk.Addr[:], a[:])
		mk.Family = 6
	}
	mk.Port = htons(k.Port)
	mk.Proto = uint8(k.Proto)
	return mk, nil
}

func serviceKeyFromMap(mk lbSvcKey) (ServiceKey, bool) {
	k := ServiceKey{Port: htons(mk.Port), Proto: Proto(mk.Proto)}
	switch mk.Family {
	case 4:
		k.VIP = netip.AddrFrom4([4]byte(mk.Addr[:4]))
	case 6:
		k.VIP = netip.AddrFrom16(mk.Addr)
	default:
		return ServiceKey{}, false
	}
	return k, true
}

// htons swaps a 16-bit value between host (little-endian: bpf2go builds
// for bpfel) and network order.
func htons(v uint16) uint16 { return v<<8 | v>>8 }

// be32 is an IPv4 address as the native-endian uint32 whose memory holds
// it in network order.
func be32(a netip.Addr) uint32 {
	b := a.Unmap().As4()
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
