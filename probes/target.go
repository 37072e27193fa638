package probes

import (
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ternlb/tern/internal/mix"

	"github.com/ternlb/tern/config"
)

// target is one member of one pool and how it is probed.
type target struct {
	key   Key
	check *checker // nil: the pool has no check; never probed

	// host is what is dialled: the member's probe: address, else its
	// address, else (a host-name member) its name, resolved by the system
	// resolver at each probe. port is the probe: port, else the check's.
	host string
	port int

	// offset is where in each interval this target is probed, the same on
	// every run and every node for the same pool, member and check.
	offset time.Duration

	// Scheduler fields: next is the next slot, due the slot of the probe
	// in flight, heapIdx the position in the scheduler's heap.
	next    time.Time
	due     time.Time
	heapIdx int
	running atomic.Bool

	cfgAdmin Admin // the admin state the configuration gives
	// awaited: FirstRound waits for this target's first result (it has a
	// check and Options.Filter let it be probed at New). Guarded by
	// Prober.mu.
	awaited bool
	st      state // guarded by Prober.mu
}

// hostPort returns where target t connects.
func (t *target) hostPort() string { return net.JoinHostPort(t.host, strconv.Itoa(t.port)) }

// newTarget builds pool member m's target for check ch (nil for none).
func newTarget(pool string, initial string, m config.Member, ch *checker) (*target, error) {
	t := &target{key: Key{Pool: pool, Member: m.Address}, check: ch, host: m.Address}
	if a, err := netip.ParseAddr(m.Address); err == nil {
		t.host = a.Unmap().String()
	} else {
		t.host = strings.TrimSuffix(m.Address, ".")
	}
	if ch != nil {
		t.port = ch.cfg.Port
	}
	if m.Probe != "" {
		pt, err := config.ParseProbeTarget(m.Probe)
		if err != nil {
			return nil, fmt.Errorf("pool %q member %q: %w", pool, m.Address, err)
		}
		t.host = pt.Addr.Unmap().String()
		if pt.Port != 0 {
			t.port = pt.Port
		}
	}
	admin, err := ParseAdmin(m.Admin)
	if m.Admin == "" {
		admin, err = AdminAuto, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pool %q member %q: %w", pool, m.Address, err)
	}
	t.st.initialUp = initial != "down"
	t.st.admin = admin
	t.cfgAdmin = admin
	if ch != nil {
		t.offset = jitter(t.key, ch.name, ch.interval)
	}
	return t, nil
}

// jitter spreads targets over the interval deterministically: a hash of
// the pool, member and check, so restarts and other nodes keep the same
// spread and the same member is not probed by a burst of restarts at once.
func jitter(k Key, check string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(k.Pool))
	h.Write([]byte{0})
	h.Write([]byte(k.Member))
	h.Write([]byte{0})
	h.Write([]byte(check))
	// FNV's low bits vary little between similar strings; a finalizer
	// (splitmix64's) spreads them before the modulo.
	return time.Duration(mix.Mix64(h.Sum64()) % uint64(interval))
}

// memberName returns the form of a member address that lookups compare:
// the canonical text of an IP address, or a host name in lower case
// without its final dot.
func memberName(s string) string {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().String()
	}
	return strings.ToLower(strings.TrimSuffix(s, "."))
}
