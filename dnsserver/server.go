package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/dnssec"
	"github.com/ternlb/tern/selector"
	"github.com/ternlb/tern/zones"
)

// Snapshot is everything a query is answered from. It is immutable: the
// node builds a new one for every change and swaps it in with Store.
type Snapshot struct {
	Zones *zones.Set
	// Pools are the compiled pools, indexed like zones' Result.Pool
	// (config.PoolNames order). A new snapshot that changes a few
	// pools shares the rest of the table with the last one (see
	// selector.Table), which is what lets Store compare them cheaply.
	Pools selector.Table
	// NodeName answers CHAOS id.server. and hostname.bind. and NSID.
	NodeName string
	// Version names the configuration version the snapshot serves.
	Version string
	// Serials, when set, are the SOA serials to serve and transfer, by
	// zone origin (canonical, as zones.Zone.Origin), in place of the zone
	// files' own. A cluster node fills it with serials every node agrees
	// on. A zone missing from it gets a serial Store derives: see doc.go,
	// "SOA serials".
	Serials map[string]uint32
	// DNSSEC holds the signed zones' signers, by zone (see sign.go).
	DNSSEC map[*zones.Zone]*dnssec.Zone
}

// served is a stored snapshot with what Store derived from it for the
// query path: the SOA serials, the counters to count into.
type served struct {
	snap *Snapshot
	// serials maps a zone's SOA record to the serial served where it
	// differs from the record's own.
	serials map[*dns.SOA]uint32
	// xfr is each zone's transfer state by origin.
	xfr    map[string]*zoneXfr
	zstats map[*zones.Zone]*zoneCounters
	// pstats holds each pool's answer counters, one per member, by the
	// pool's first member (poolKey): a pool's WithStatus and fallback
	// copies share their Members, so the index outlives a health change.
	pstats map[*selector.Member][]*atomic.Uint64
}

// poolKey is what pstats knows a pool by: its first member, shared by
// every copy of the pool a health change or a fallback relink makes.
// A pool without members counts nothing.
func poolKey(p *selector.Pool) *selector.Member {
	if p == nil || len(p.Members) == 0 {
		return nil
	}
	return &p.Members[0]
}

// Options configure a Server. The zero value of each field means its
// default.
type Options struct {
	// Addrs are host:port addresses to serve on, each over UDP and TCP.
	// Port 0 picks a free port, the same for UDP and TCP.
	Addrs []string
	// UDPSockets is how many SO_REUSEPORT sockets each address gets, each
	// with its own reader; 0 means one per CPU.
	UDPSockets int
	// TCPIdle closes a TCP connection idle this long (default 10s).
	TCPIdle time.Duration
	// TCPMaxConns bounds open TCP connections per address; further ones
	// are closed at once (default 256).
	TCPMaxConns int
	// UDPSize is the EDNS0 UDP payload size advertised and the most a UDP
	// response may carry (default 1232; clients' sizes below 512 count as
	// 512).
	UDPSize int
	// Logger receives errors; nil discards them.
	Logger *slog.Logger

	// RRL, when set, rate-limits UDP responses (see RRL).
	RRL *RRL
	// TSIGKeys are the keys queries and transfers may be signed with
	// and NOTIFY is signed with.
	TSIGKeys []TSIGKey
	// CookieSecret makes and checks DNS server cookies (RFC 7873, RFC
	// 9018). Every node of a cluster should have the same one, so that
	// any node accepts a cookie another made: see doc.go, "DNS Cookies".
	// Zero: a random secret of this server's own, made by New and kept
	// by Reconfigure.
	CookieSecret [16]byte
	// TransferAllow admits zone transfers; empty: every transfer is
	// refused.
	TransferAllow []TransferACL
	// Notify lists the secondaries told of every new serial.
	Notify []NotifyTarget
	// QueryLogSample is the share of queries (0 to 1) logged one line
	// each at info level to Logger (see querylog.go); 0: none.
	QueryLogSample float64
}

// Server is an authoritative DNS server over UDP and TCP.
type Server struct {
	opts  Options
	log   *slog.Logger
	cur   atomic.Pointer[served]
	stats *stats
	// pol holds the settings Reconfigure may change: RRL, TSIG keys,
	// transfer allow list, NOTIFY targets.
	pol atomic.Pointer[policy]

	storeMu sync.Mutex // serializes Store
	// reindexed counts the Stores that indexed a snapshot afresh in
	// place of one already stored (see Reindexed).
	reindexed atomic.Uint64
	notify    notifier
	udp       []*udpSocket
	tcp       []*net.TCPListener
	ready     chan struct{}
	ran       atomic.Bool

	mu    sync.Mutex // guards conns; never taken on the query path
	conns map[net.Conn]struct{}
	// stopping is set when Run shuts down: a connection between two
	// queries must not set itself a fresh idle deadline (see serveConn).
	stopping atomic.Bool
	// workers are reused by TCP connections: their buffers are large.
	workers sync.Pool
	// qlog is the query log's queue: workers send, Run's logger reads.
	qlog chan queryEntry
}

// New binds every address of o and returns a Server ready to Run. Until a
// snapshot is stored it answers SERVFAIL.
func New(o Options) (*Server, error) {
	if len(o.Addrs) == 0 {
		return nil, errors.New("dnsserver: no addresses to listen on")
	}
	if o.UDPSockets <= 0 {
		o.UDPSockets = runtime.NumCPU()
	}
	if o.TCPIdle <= 0 {
		o.TCPIdle = 10 * time.Second
	}
	if o.TCPMaxConns <= 0 {
		o.TCPMaxConns = 256
	}
	if o.UDPSize == 0 {
		o.UDPSize = 1232
	}
	if o.UDPSize < 512 || o.UDPSize > 65535 {
		return nil, fmt.Errorf("dnsserver: UDP size %d: use 512 to 65535", o.UDPSize)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{opts: o, log: log, ready: make(chan struct{}), conns: map[net.Conn]struct{}{}, stats: newStats(),
		qlog: make(chan queryEntry, queryLogQueue)}
	pol, err := s.buildPolicy(o, nil)
	if err != nil {
		return nil, err
	}
	s.pol.Store(pol)
	s.notify.init()
	s.workers.New = func() any { return s.newWorker() }
	for _, a := range o.Addrs {
		if err := s.listen(a); err != nil {
			s.closeAll()
			return nil, err
		}
	}
	return s, nil
}

// listen binds one address: UDPSockets UDP sockets with SO_REUSEPORT and
// one TCP listener, all on the same port.
func (s *Server) listen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("dnsserver: listen address %q: %w", addr, err)
	}
	// With port 0 the kernel picks the UDP port; TCP then must get the
	// same one, which another program may hold: try a few times.
	for attempt := 0; ; attempt++ {
		udp, tcp, err := bindAll(host, port, s.opts.UDPSockets)
		if err == nil {
			s.udp = append(s.udp, udp...)
			s.tcp = append(s.tcp, tcp)
			return nil
		}
		if port != "0" || attempt == 10 {
			return fmt.Errorf("dnsserver: listen on %q: %w", addr, err)
		}
	}
}

func bindAll(host, port string, n int) ([]*udpSocket, *net.TCPListener, error) {
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return nil, nil, fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	var udp []*udpSocket
	closeUDP := func() {
		for _, u := range udp {
			u.close()
		}
	}
	for i := 0; i < n; i++ {
		u, err := listenUDP(host, p)
		if err != nil {
			closeUDP()
			return nil, nil, err
		}
		udp = append(udp, u)
		p = int(u.addr.Port())
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
	if err != nil {
		closeUDP()
		return nil, nil, err
	}
	return udp, ln.(*net.TCPListener), nil
}

// closeAll closes every socket of a server that is not running.
func (s *Server) closeAll() {
	for _, u := range s.udp {
		u.close()
	}
	for _, l := range s.tcp {
		l.Close()
	}
}

// Store makes snap the snapshot every following query is answered from.
// The node calls it for every new snapshot; it never blocks queries. It
// derives each zone's served SOA serial and queues a NOTIFY to the
// secondaries for every zone whose serial changed.
//
// A snapshot that differs from the stored one only in its pools' states
// (health, drain, load: what WithStatus copies change) keeps the stored
// one's index, serials and transfer state: it compares only the pools
// the two pool tables do not share, so its cost follows the pools that
// changed, not every pool and member.
func (s *Server) Store(snap *Snapshot) {
	s.storeMu.Lock()
	defer s.storeMu.Unlock()
	prev := s.cur.Load()
	if prev != nil && sameShape(prev.snap, snap) {
		cur := *prev
		cur.snap = snap
		s.cur.Store(&cur)
		return
	}
	cur := &served{snap: snap}
	s.stats.index(snap, cur)
	var prevXfr map[string]*zoneXfr
	if prev != nil {
		prevXfr = prev.xfr
		s.reindexed.Add(1)
	}
	cur.xfr, cur.serials = deriveSerials(snap, prevXfr)
	s.cur.Store(cur)
	for origin, zx := range cur.xfr {
		if p := prevXfr[origin]; p == nil || p.serial != zx.serial {
			s.notify.queue(origin, zx.soa)
		}
	}
}

// Reindexed returns how many Stores indexed their snapshot afresh (zones,
// serials, pools' counters) in place of a stored one, because its zones,
// serials or pools' members differed from it. The first Store is not
// counted; a health change should count none.
func (s *Server) Reindexed() uint64 { return s.reindexed.Load() }

// sameShape reports whether b differs from a at most in what the stored
// state does not derive from: pool states, answer settings, DNSSEC
// signers, the node's name and the version. Everything Store indexes
// (the zones, the given serials, each pool's name and members) is the
// same.
func sameShape(a, b *Snapshot) bool {
	if a == nil || b == nil || a.Zones != b.Zones || a.Pools.Len() != b.Pools.Len() || !maps.Equal(a.Serials, b.Serials) {
		return false
	}
	for i := range a.Pools.Changed(b.Pools) {
		p, q := a.Pools.At(i), b.Pools.At(i)
		if p == nil || q == nil || p.Name != q.Name || len(p.Members) != len(q.Members) || poolKey(p) != poolKey(q) {
			return false
		}
	}
	return true
}

// Addrs returns the bound addresses, one per listen address (its TCP
// listener; its UDP sockets share the port).
func (s *Server) Addrs() []net.Addr {
	var out []net.Addr
	for _, l := range s.tcp {
		out = append(out, l.Addr())
	}
	return out
}

// Ready is closed once Run serves every listener.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Run serves until ctx ends, then stops reading, lets queries in flight
// finish and closes every socket. It returns nil after a clean shutdown.
// Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	if !s.ran.CompareAndSwap(false, true) {
		return errors.New("dnsserver: Run called twice")
	}
	if udpHoldsP {
		defer lendProcs(len(s.udp))()
	}
	var wg sync.WaitGroup
	var udpWG sync.WaitGroup
	for _, u := range s.udp {
		udpWG.Add(1)
		go func() {
			defer udpWG.Done()
			s.serveUDP(u)
		}()
	}
	for _, l := range s.tcp {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveTCP(l, &wg)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.runNotify(ctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		runQueryLog(ctx, s.qlog, s.log)
	}()
	close(s.ready)
	<-ctx.Done()
	for _, u := range s.udp {
		u.shutdown()
	}
	for _, l := range s.tcp {
		l.Close()
	}
	// Wake idle TCP connections; one answering a query finishes it first.
	s.stopping.Store(true)
	s.mu.Lock()
	for c := range s.conns {
		c.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	wg.Wait()
	// A socket is closed only once its reader is gone, so that its file
	// descriptor cannot be reused under a read.
	udpWG.Wait()
	for _, u := range s.udp {
		u.close()
	}
	return nil
}

func (s *Server) newWorker() *worker {
	w := newWorker(s.opts.UDPSize, s.log)
	w.pol = &s.pol
	w.stats = s.stats
	w.qlogCh = s.qlog
	return w
}
