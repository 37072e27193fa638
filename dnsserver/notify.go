package dnsserver

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// notifier holds the NOTIFYs Store queued for Run's sender: the newest
// SOA per zone, and a generation per zone so that a newer serial stops
// the retries of an older one.
type notifier struct {
	mu      sync.Mutex
	pending map[string]*dns.SOA
	gen     map[string]uint64
	wake    chan struct{}
	// backoff is the wait before the first retry, doubled for each next
	// one; tries bounds the attempts per target (RFC 1996 3.6 suggests
	// about 5 over a minute).
	backoff time.Duration
	tries   int
	timeout time.Duration // per attempt
}

func (n *notifier) init() {
	n.pending = map[string]*dns.SOA{}
	n.gen = map[string]uint64{}
	n.wake = make(chan struct{}, 1)
	n.backoff, n.tries, n.timeout = 2*time.Second, 5, 2*time.Second
}

func (n *notifier) queue(origin string, soa *dns.SOA) {
	n.mu.Lock()
	n.pending[origin] = soa
	n.gen[origin]++
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) current(origin string, gen uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.gen[origin] == gen
}

// runNotify sends the queued NOTIFYs to every configured secondary until
// ctx ends, each (zone, secondary) in its own goroutine with retries.
func (s *Server) runNotify(ctx context.Context) {
	n := &s.notify
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		}
		n.mu.Lock()
		batch := n.pending
		gens := make(map[string]uint64, len(batch))
		for origin := range batch {
			gens[origin] = n.gen[origin]
		}
		n.pending = map[string]*dns.SOA{}
		n.mu.Unlock()
		for origin, soa := range batch {
			for _, t := range s.pol.Load().notify {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.sendNotify(ctx, t, origin, soa, gens[origin])
				}()
			}
		}
	}
}

// sendNotify tells one secondary of a zone's serial (RFC 1996), retrying
// with backoff until it answers, a newer serial supersedes this one, the
// tries run out or ctx ends.
func (s *Server) sendNotify(ctx context.Context, t NotifyTarget, origin string, soa *dns.SOA, gen uint64) {
	n := &s.notify
	log := s.log.With("zone", origin, "serial", soa.Serial, "secondary", t.Addr.String())
	wait := n.backoff
	var err error
	for try := 0; try < n.tries; try++ {
		if try > 0 {
			timer := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
			wait *= 2
		}
		if !n.current(origin, gen) {
			return // a newer serial is on its way
		}
		if err = s.notifyOnce(ctx, t, origin, soa); err == nil {
			s.stats.notifies[notifyAcked].Add(1)
			log.Debug("NOTIFY acknowledged")
			return
		}
		if ctx.Err() != nil {
			return
		}
	}
	s.stats.notifies[notifyFailed].Add(1)
	log.Warn("NOTIFY not acknowledged", "tries", n.tries, "error", err)
}

func (s *Server) notifyOnce(ctx context.Context, t NotifyTarget, origin string, soa *dns.SOA) error {
	m := new(dns.Msg)
	m.SetNotify(origin)
	m.Authoritative = true
	m.Answer = []dns.RR{soa}
	c := &dns.Client{Net: "udp", Timeout: s.notify.timeout}
	if t.Key != "" {
		k := s.pol.Load().keys[dns.CanonicalName(t.Key)]
		if k == nil {
			return fmt.Errorf("TSIG key %q is no longer configured", t.Key)
		}
		c.TsigSecret = map[string]string{k.Name: k.Secret}
		m.SetTsig(k.Name, k.Algorithm, 300, time.Now().Unix())
	}
	r, _, err := c.ExchangeContext(ctx, m, t.Addr.String())
	if err != nil {
		return err
	}
	if r.Opcode != dns.OpcodeNotify || r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("answered %s (opcode %s)", dns.RcodeToString[r.Rcode], dns.OpcodeToString[r.Opcode])
	}
	return nil
}
