package dnsserver

import (
	"math/bits"
	"net/netip"
	"sync/atomic"
	"time"
)

// RRL configures response rate limiting (see doc.go). The zero value of
// a field means its default, as config.RRL documents them.
type RRL struct {
	// ResponsesPerSecond each client network gets for one kind of
	// response to one name; also the burst a quiet network may send.
	ResponsesPerSecond int
	// Slip: every Slip-th dropped response goes out truncated (TC=1);
	// 0 drops them all, 1 truncates them all.
	Slip int
	// Window bounds the debt an account runs into: a network that went
	// over the rate is answered again once its average over the window
	// is under the rate.
	Window time.Duration
	// IPv4Prefix and IPv6Prefix group clients into networks.
	IPv4Prefix, IPv6Prefix int
	// Exempt networks are never limited.
	Exempt []netip.Prefix
	// TableSize is how many accounts are kept (rounded up to a power of
	// two, at least 1024).
	TableSize int
}

// Response kinds an account is kept for, as BIND and Knot class them.
const (
	kindAnswer   = 1 + iota // NOERROR with answer records
	kindNXDomain            // NXDOMAIN, accounted per zone
	kindNoData              // NOERROR without answers: NODATA or referral
	kindError               // REFUSED, FORMERR, SERVFAIL, NOTIMP...
)

// Verdicts of the limiter.
const (
	rrlPass = iota
	rrlDrop
	rrlSlip
)

// The balance is kept in 1/rrlScale responses; time in 1/rrlHz seconds.
const (
	rrlScale = 1024
	rrlHz    = 128
	rrlWays  = 4 // slots an account may live in
)

// limiter is a fixed-size table of token accounts updated with atomic
// compare-and-swap: no lock, no allocation, bounded memory. Each account
// lives in one of rrlWays slots chosen by its hash; a new account evicts
// the slot idle longest. Two accounts racing for one slot may briefly
// share a balance: the limit is approximate, as BIND's and Knot's are.
type limiter struct {
	refill int64 // balance units per tick
	cap    int64 // the most a quiet account holds: one second's responses
	floor  int64 // the deepest debt: Window's worth of responses
	slip   uint32
	v4, v6 int
	exempt []netip.Prefix
	slots  []rrlSlot
	mask   uint64
	start  time.Time
	// dropped and slipped count what the limiter held back; the server
	// points them at its stats.
	dropped, slipped *atomic.Uint64
	opts             RRL // as given, to tell whether a new one differs
}

type rrlSlot struct {
	key atomic.Uint64 // account hash; 0: empty
	// state is the tick of the last update (high 32 bits) and the
	// balance (low 32 bits, signed).
	state atomic.Uint64
	drops atomic.Uint32
}

func newLimiter(o RRL) *limiter {
	if o.ResponsesPerSecond <= 0 {
		return nil
	}
	given := o
	if o.Window <= 0 {
		o.Window = 15 * time.Second
	}
	if o.IPv4Prefix <= 0 || o.IPv4Prefix > 32 {
		o.IPv4Prefix = 24
	}
	if o.IPv6Prefix <= 0 || o.IPv6Prefix > 128 {
		o.IPv6Prefix = 56
	}
	n := max(o.TableSize, 1024)
	n = 1 << bits.Len(uint(n-1))
	rate := int64(min(o.ResponsesPerSecond, 10000))
	win := min(int64(o.Window/time.Second), 60)
	return &limiter{
		opts:    given,
		dropped: new(atomic.Uint64),
		slipped: new(atomic.Uint64),
		refill:  rate * rrlScale / rrlHz,
		cap:     rate * rrlScale,
		floor:   -max(win, 1) * rate * rrlScale,
		slip:    uint32(max(o.Slip, 0)),
		v4:      o.IPv4Prefix,
		v6:      o.IPv6Prefix,
		exempt:  o.Exempt,
		slots:   make([]rrlSlot, n),
		mask:    uint64(n - 1),
		start:   time.Now(),
	}
}

// check accounts one response of kind to the client at src, for name and
// qtype, and says whether it goes out, is dropped or slips out truncated.
func (l *limiter) check(src netip.Addr, kind uint8, name string, qtype uint16) int {
	for _, p := range l.exempt {
		if p.Contains(src) {
			return rrlPass
		}
	}
	h := l.hash(src, kind, name, qtype)
	now := uint32(time.Since(l.start) * rrlHz / time.Second)
	set := l.slots[h&l.mask&^(rrlWays-1):][:rrlWays]
	victim := &set[0]
	var oldest uint32
	for i := range set {
		s := &set[i]
		if s.key.Load() == h {
			return l.spend(s, now)
		}
		if age := now - uint32(s.state.Load()>>32); age >= oldest {
			oldest, victim = age, s
		}
	}
	k := victim.key.Load()
	if !victim.key.CompareAndSwap(k, h) {
		return rrlPass // lost a race for the slot: rare, and let it through
	}
	victim.drops.Store(0)
	victim.state.Store(uint64(now)<<32 | uint64(uint32(int32(l.cap))))
	return l.spend(victim, now)
}

// spend takes one response from s's balance, refilled for the time since
// its last update. A response the balance cannot pay is dropped and still
// debited (down to the floor), so a network flooding above the rate stays
// limited until its average over the window falls under it.
func (l *limiter) spend(s *rrlSlot, now uint32) int {
	for {
		old := s.state.Load()
		bal := int64(int32(uint32(old)))
		bal = min(bal+int64(now-uint32(old>>32))*l.refill, l.cap) - rrlScale
		ok := bal >= 0
		bal = max(bal, l.floor)
		if !s.state.CompareAndSwap(old, uint64(now)<<32|uint64(uint32(int32(bal)))) {
			continue
		}
		if ok {
			return rrlPass
		}
		l.dropped.Add(1)
		if l.slip > 0 && s.drops.Add(1)%l.slip == 0 {
			l.slipped.Add(1)
			return rrlSlip
		}
		return rrlDrop
	}
}

// hash is FNV-1a over the client's network, the kind, the name (lower
// case already) and the type; never 0.
func (l *limiter) hash(src netip.Addr, kind uint8, name string, qtype uint16) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	src = src.Unmap()
	a := src.As16()
	bits := l.v6
	if src.Is4() {
		bits = 96 + l.v4
		h = (h ^ 4) * prime
	}
	for i := 0; i < 16; i++ {
		b := a[i]
		switch {
		case bits >= 8*(i+1):
		case bits <= 8*i:
			b = 0
		default:
			b &= ^byte(0xFF >> (bits - 8*i))
		}
		h = (h ^ uint64(b)) * prime
	}
	h = (h ^ uint64(kind)) * prime
	for i := 0; i < len(name); i++ {
		h = (h ^ uint64(name[i])) * prime
	}
	h = (h ^ uint64(qtype>>8)) * prime
	h = (h ^ uint64(qtype&0xFF)) * prime
	return h | 1
}
