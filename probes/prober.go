package probes

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ternlb/tern/config"
)

var (
	// ErrUnknownPool and ErrUnknownMember name a pool or member that the
	// configuration does not have.
	ErrUnknownPool   = errors.New("no such pool")
	ErrUnknownMember = errors.New("no such member")
	// ErrAdmin is a state that is not auto, up, down or drain.
	ErrAdmin = errors.New("write auto, up, down or drain")
	// ErrFirstRound is returned by FirstRound when its wait ended before
	// every probed member had a result.
	ErrFirstRound = errors.New("first probe round incomplete")
	// ErrExecNotAllowed is why a prober without Options.AllowExec does not
	// probe the members of a pool checked by an exec check.
	ErrExecNotAllowed = errors.New("exec checks are not allowed on this node (node.allow_exec_checks)")
)

// Observer receives verdicts as they change. Observe is called from one
// goroutine at a time, in the order changes happened, with every change
// since the previous call (so a burst of changes costs one rebuild); it
// should return quickly, as later changes wait for it.
type Observer interface {
	Observe(changed []Verdict)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func([]Verdict)

func (f ObserverFunc) Observe(v []Verdict) { f(v) }

// Options tune a Prober. The zero value is ready to use.
type Options struct {
	// Observer receives every verdict change; nil: none (read Verdicts).
	Observer Observer
	// Workers is how many probes may run at once. 0: enough for every
	// probe to take its full timeout without falling behind (the sum over
	// members of timeout/interval, plus a margin), at least 4.
	Workers int
	Logger  *slog.Logger
	// Source is the local address tcp, http(s), load and dns probes leave
	// from (zero: the kernel chooses). A node of a cluster sets it to its
	// own address so that a backend, and its firewall, see which node
	// probes; members of the other address family are probed unbound.
	Source netip.Addr
	// Filter, when set, says which members this prober probes (pool and
	// member as in Key: an address in canonical form or a lower-case host
	// name); nil: all of them. A cluster node probes only the members
	// assigned to it. It is asked at New, where a member it rejects is not
	// awaited by FirstRound, and each time a member's probe is due, where
	// a member it rejects is not probed at all (no connection) and keeps
	// its last verdict; so a filter that reads changing state (the
	// cluster's nodes) takes effect at each member's next slot. It must be
	// fast and safe for concurrent use.
	Filter func(pool, member string) bool
	// AllowExec lets exec checks run: a command on this host. Without it
	// the members of a pool checked by an exec check are not probed (no
	// command runs): they keep their pool's initial state, FirstRound
	// does not wait for them, their Verdict.Unprobed says why, and
	// tern_probe_not_allowed{pool,check} counts them. A node sets it from
	// its own file's node.allow_exec_checks alone.
	AllowExec bool
}

// Prober probes the members of every pool that has a check, keeps each
// member's verdict and passes changes to an Observer. Its methods are safe
// for concurrent use.
type Prober struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics

	targets []*target // pool order, then member order
	probed  []*target // those with a check
	pools   map[string]map[string]*target
	workers int
	load    float64 // probes in flight on average: sum of timeout/interval

	started atomic.Bool

	mu         sync.Mutex
	pending    []Verdict     // changes not yet observed
	wake       chan struct{} // cap 1: pending has something
	unresolved int           // probed targets without a first result
	firstDone  chan struct{} // closed when unresolved reaches 0

	// onStart, when set (tests), is called as each probe starts.
	onStart func(t *target, due, start time.Time)
}

// New builds a Prober for cfg's pools. Nothing runs until Run.
func New(cfg *config.Config, opts Options) (*Prober, error) {
	p, checkers, err := newProber(cfg.Checks, opts)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for _, pool := range cfg.PoolNames() {
		pc := cfg.Pools[pool]
		var ch *checker
		if pc.Check != "" {
			if ch = checkers[pc.Check]; ch == nil {
				return nil, fmt.Errorf("pool %q: check %q is not defined under checks", pool, pc.Check)
			}
		}
		members := map[string]*target{}
		for _, m := range pc.Members {
			t, err := newTarget(pool, pc.Initial, m, ch)
			if err != nil {
				return nil, err
			}
			p.add(t, now)
			members[memberName(m.Address)] = t
		}
		p.pools[pool] = members
	}
	p.finish()
	return p, nil
}

// newProber returns an empty Prober and the checkers of checks.
func newProber(checks map[string]config.Check, opts Options) (*Prober, map[string]*checker, error) {
	p := &Prober{
		opts:      opts,
		log:       opts.Logger,
		metrics:   newMetrics(),
		pools:     map[string]map[string]*target{},
		wake:      make(chan struct{}, 1),
		firstDone: make(chan struct{}),
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.metrics.current.Store(p)
	checkers := map[string]*checker{}
	for _, name := range slices.Sorted(maps.Keys(checks)) {
		ch, err := newChecker(name, checks[name])
		if err != nil {
			return nil, nil, err
		}
		ch.source = opts.Source
		checkers[name] = ch
	}
	return p, checkers, nil
}

// add takes t in; New and NewTargets then name it in p.pools.
func (p *Prober) add(t *target, now time.Time) {
	ch := t.check
	if ch != nil && ch.cfg.Type == "exec" && !p.opts.AllowExec {
		t.st.unprobed = ErrExecNotAllowed.Error()
	}
	t.st.since = now
	t.st.sent = t.st.verdict(t.key, 0, 0)
	p.targets = append(p.targets, t)
	if ch != nil && t.st.unprobed == "" {
		p.probed = append(p.probed, t)
		t.awaited = p.wanted(t)
		if t.awaited {
			p.unresolved++
		}
		p.load += ch.timeout.Seconds() / ch.interval.Seconds()
	}
}

// finish sizes the workers once every target is in.
func (p *Prober) finish() {
	if p.unresolved == 0 {
		close(p.firstDone)
	}
	p.workers = p.opts.Workers
	if p.workers <= 0 {
		p.workers = max(4, int(p.load*1.25)+4)
	}
	p.workers = max(1, min(p.workers, len(p.probed)))
}

// Inherit carries what old has seen over to p, which replaces it after a
// configuration change, so that a reload neither forgets the members' state
// nor sends them back to their initial state. A member keeps its probe
// state and load when it is probed the same way (same pool, address, check
// name and type, and probe target); it keeps an admin state set at run
// time unless the configuration changed its admin: value. A member p does
// not probe (Verdict.Unprobed) inherits no probe state. p also takes over
// old's metrics, so collectors registered once (Collectors of the first
// prober) count for every prober that inherits from it, and the gauges
// read the newest one. Call it before Run, after old's Run has returned
// or while it still runs.
func (p *Prober) Inherit(old *Prober) {
	if p.started.Load() {
		return
	}
	p.metrics = old.metrics
	// The gauges read the newest prober's targets without its lock: hand
	// them this one only once its targets are final.
	defer p.metrics.current.Store(p)
	old.mu.Lock()
	defer old.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.targets {
		o, err := old.lookup(t.key.Pool, t.key.Member)
		if err != nil {
			continue
		}
		if o.cfgAdmin == t.cfgAdmin {
			t.st.admin = o.st.admin
		}
		same := t.check != nil && o.check != nil && t.st.unprobed == "" && t.check.name == o.check.name &&
			t.check.cfg.Type == o.check.cfg.Type && t.host == o.host && t.port == o.port
		if same && o.st.probed {
			admin, initialUp := t.st.admin, t.st.initialUp
			t.st = o.st
			t.st.admin, t.st.initialUp = admin, initialUp
			p.resolvedLocked(t)
		}
		t.st.sent = t.st.verdict(t.key, 0, 0)
		if same {
			t.st.sent.Load, t.st.sent.HasLoad = o.st.sent.Load, o.st.sent.HasLoad
			t.st.sent.Latency, t.st.sent.HasLatency = o.st.sent.Latency, o.st.sent.HasLatency
		}
	}
	if p.unresolved == 0 {
		select {
		case <-p.firstDone:
		default:
			close(p.firstDone)
		}
	}
}

// FirstRoundWait is a sensible bound for FirstRound when the
// configuration sets none: the longest timeout of the checks in use, plus
// a second for scheduling.
func (p *Prober) FirstRoundWait() time.Duration {
	var d time.Duration
	for _, t := range p.probed {
		d = max(d, t.check.timeout)
	}
	return d + time.Second
}

// Run probes until ctx ends, then waits for the probes in flight and
// returns nil. It may be called once.
func (p *Prober) Run(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("probes: Run called twice")
	}
	p.logUnprobed()
	var wg sync.WaitGroup
	wg.Go(func() { p.notify(ctx) })
	if len(p.probed) > 0 {
		// Every target is in the channel or running at most once, so a
		// channel as long as the targets never blocks the scheduler.
		jobs := make(chan *target, len(p.probed))
		for range p.workers {
			wg.Go(func() {
				for t := range jobs {
					p.probe(ctx, t)
				}
			})
		}
		p.schedule(ctx, jobs)
		close(jobs)
	}
	wg.Wait()
	return nil
}

// logUnprobed says once per check (and so once per configuration: a
// prober runs once) which checks this prober does not run and why.
func (p *Prober) logUnprobed() {
	type key struct{ check, why string }
	counts := map[key]int{}
	var order []key
	for _, t := range p.targets {
		if t.st.unprobed == "" {
			continue
		}
		k := key{t.check.name, t.st.unprobed}
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
	}
	for _, k := range order {
		p.log.Warn("check not run on this node: its members are not probed here and keep their pool's initial state unless other nodes probe them",
			"check", k.check, "members", counts[k], "why", k.why)
	}
}

// schedule dispatches each target at its slots until ctx ends. The first
// round starts at once (see FirstRound); after it, target t is probed at
// start + t.offset + k*interval.
func (p *Prober) schedule(ctx context.Context, jobs chan<- *target) {
	start := time.Now()
	h := make(targetHeap, len(p.probed))
	for i, t := range p.probed {
		t.next = start
		t.heapIdx = i
		h[i] = t
	}
	heap.Init(&h)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := time.Now()
		for len(h) > 0 && !h[0].next.After(now) {
			t := h[0]
			due := t.next
			if !p.wanted(t) {
				// Not this prober's member (now): no probe, the slot
				// kept for when it is again.
			} else if t.running.Load() {
				p.metrics.skipped.Inc()
			} else {
				t.running.Store(true)
				t.due = due
				jobs <- t
			}
			iv := t.check.interval
			if due.Equal(start) {
				// From the first round into the spread, at least half an
				// interval on, so the first probe has ended.
				t.next = start.Add(t.offset)
				if t.offset < iv/2 {
					t.next = t.next.Add(iv)
				}
			} else {
				t.next = due.Add(iv)
			}
			if behind := now.Sub(t.next); behind >= iv {
				// Whole intervals behind: skip the missed slots rather
				// than probe in a burst to catch up.
				n := behind / iv
				t.next = t.next.Add(n * iv)
				p.metrics.skipped.Add(float64(n))
			}
			heap.Fix(&h, 0)
		}
		timer.Reset(time.Until(h[0].next))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// probe runs one probe of t and records its result.
func (p *Prober) probe(ctx context.Context, t *target) {
	defer t.running.Store(false)
	start := time.Now()
	p.metrics.lateness.Observe(start.Sub(t.due).Seconds())
	if p.onStart != nil {
		p.onStart(t, t.due, start)
	}
	ch := t.check
	pctx, cancel := context.WithTimeout(ctx, ch.timeout)
	r := ch.run(pctx, t)
	cancel()
	rtt := time.Since(start)
	if ctx.Err() != nil {
		return // shutting down: the probe was cut short, not failed
	}
	// A success is one even when rtt exceeds the timeout: the I/O finished
	// within its deadline, and the excess is this node waiting for a CPU,
	// which must not take healthy members out of the answers.
	p.metrics.duration.WithLabelValues(ch.name, ch.cfg.Type).Observe(rtt.Seconds())
	p.metrics.results.WithLabelValues(ch.cfg.Type, r.outcome.String()).Inc()
	p.record(t, r, start, rtt)
}

// record applies result r of target t to its state and queues the verdict
// when it changed.
func (p *Prober) record(t *target, r result, start time.Time, rtt time.Duration) {
	ch := t.check
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &t.st
	first := !s.probed
	s.rtt, s.checked, s.err = rtt, start, ""
	if r.err != nil {
		s.err = r.err.Error()
	}
	if p.log.Enabled(context.Background(), slog.LevelDebug) {
		p.log.Debug("probe", "pool", t.key.Pool, "member", t.key.Member, "check", ch.name,
			"result", r.outcome.String(), "rtt", rtt, "error", s.err)
	}
	if s.result(r.outcome == outcomeUp, ch.cfg.Rise, ch.cfg.Fall) {
		to := "down"
		if s.probeUp {
			to = "up"
		}
		p.metrics.transitions.WithLabelValues(t.key.Pool, to).Inc()
		p.log.Info("member state", "pool", t.key.Pool, "member", t.key.Member, "state", to, "check", ch.name, "error", s.err)
	}
	if r.hasLoad {
		s.report(r.load, r.capacity, ch.cfg.LoadSmoothing)
	}
	if r.outcome == outcomeUp && r.rtt > 0 {
		s.sample(r.rtt, start, ch.cfg.RTTHalfLife.D())
	}
	p.changedLocked(t)
	if first {
		p.resolvedLocked(t)
	}
}

// resolvedLocked counts t's first result towards the first round, once,
// if FirstRound awaits it.
func (p *Prober) resolvedLocked(t *target) {
	if !t.awaited {
		return
	}
	t.awaited = false
	p.unresolved--
	if p.unresolved == 0 {
		close(p.firstDone)
	}
}

// wanted reports whether Options.Filter lets t be probed.
func (p *Prober) wanted(t *target) bool {
	return p.opts.Filter == nil || p.opts.Filter(t.key.Pool, t.key.Member)
}

// changedLocked queues t's verdict for the observer if it differs from the
// last one queued.
func (p *Prober) changedLocked(t *target) {
	s := &t.st
	threshold, rttFrac := 0.0, 0.0
	if t.check != nil {
		threshold, rttFrac = t.check.cfg.LoadThreshold, t.check.cfg.RTTHysteresis
	}
	v := s.verdict(t.key, threshold, rttFrac)
	if !differs(v, s.sent) {
		return
	}
	if v.Up != s.sent.Up || v.Drain != s.sent.Drain || v.Forced != s.sent.Forced {
		s.since = time.Now()
		v.Since = s.since
	}
	s.sent = v
	p.pending = append(p.pending, v)
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// notify passes queued changes to the observer until ctx ends.
func (p *Prober) notify(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		}
		p.mu.Lock()
		batch := p.pending
		p.pending = nil
		p.mu.Unlock()
		if len(batch) > 0 && p.opts.Observer != nil {
			p.opts.Observer.Observe(batch)
		}
	}
}

// FirstRound waits until every probed member has a first result, at most
// maxWait, so that a node serves what it has seen rather than guesses. Run
// must be running. Members still without a result keep their pool's
// initial state (up unless the pool says initial: down); FirstRound then
// returns an error wrapping ErrFirstRound, which a node logs before it
// serves anyway.
func (p *Prober) FirstRound(ctx context.Context, maxWait time.Duration) error {
	t := time.NewTimer(maxWait)
	defer t.Stop()
	select {
	case <-p.firstDone:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	p.mu.Lock()
	n := p.unresolved
	p.mu.Unlock()
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d of %d members without a result after %v; they keep their initial state",
		ErrFirstRound, n, len(p.probed), maxWait)
}

// SetAdmin sets the admin state of member address of pool. A forced state
// (up, down) outranks the probes until set back to auto. The address is
// compared as an IP address (any spelling) or a host name (any case).
func (p *Prober) SetAdmin(pool, address string, a Admin) error {
	if int(a) >= len(adminNames) {
		return fmt.Errorf("admin state %v: %w", a, ErrAdmin)
	}
	t, err := p.lookup(pool, address)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t.st.admin = a
	p.changedLocked(t)
	p.log.Info("member admin state", "pool", pool, "member", t.key.Member, "admin", a.String())
	return nil
}

func (p *Prober) lookup(pool, address string) (*target, error) {
	members, ok := p.pools[pool]
	if !ok {
		return nil, fmt.Errorf("pool %q: %w", pool, ErrUnknownPool)
	}
	t, ok := members[memberName(address)]
	if !ok {
		return nil, fmt.Errorf("pool %q member %q: %w", pool, address, ErrUnknownMember)
	}
	return t, nil
}

// Verdict returns the verdict of member address of pool.
func (p *Prober) Verdict(pool, address string) (Verdict, error) {
	t, err := p.lookup(pool, address)
	if err != nil {
		return Verdict{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return t.st.current(), nil
}

// Verdicts returns every member's verdict, pools in name order and members
// in configuration order: the state last passed to the observer, with the
// latest result's RTT, Err and Checked.
func (p *Prober) Verdicts() []Verdict {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Verdict, len(p.targets))
	for i, t := range p.targets {
		out[i] = t.st.current()
	}
	return out
}

// Pool returns the verdicts of pool's members in configuration order, the
// order selector.Pool.WithStatus takes.
func (p *Prober) Pool(pool string) ([]Verdict, error) {
	if _, ok := p.pools[pool]; !ok {
		return nil, fmt.Errorf("pool %q: %w", pool, ErrUnknownPool)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Verdict
	for _, t := range p.targets {
		if t.key.Pool == pool {
			out = append(out, t.st.current())
		}
	}
	return out, nil
}

// targetHeap orders targets by their next slot.
type targetHeap []*target

func (h targetHeap) Len() int           { return len(h) }
func (h targetHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h targetHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *targetHeap) Push(x any) { t := x.(*target); t.heapIdx = len(*h); *h = append(*h, t) }
func (h *targetHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}
