package api

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Event is one change of a member's state: a vantage node's probe
// verdict flipping (Node set), or the state the cluster answers with
// (Node empty: decided by agreement, or forced by an admin state).
type Event struct {
	At     time.Time `json:"at"`
	Pool   string    `json:"pool"`
	Member string    `json:"member"`
	Node   string    `json:"node,omitempty"`
	From   string    `json:"from"` // up, down, drain, unknown, ...
	To     string    `json:"to"`
	Why    string    `json:"why,omitempty"`
}

// Events is the node's recent history of member state changes.
type Events interface {
	// Events returns the changes at or after since (all it keeps when
	// since is zero), oldest first. A node keeps a bounded number.
	Events(ctx context.Context, since time.Time) ([]Event, error)
}

// QueryStats is the DNS server's query counters on this node.
type QueryStats struct {
	// Total is the number of queries answered since the node started.
	Total uint64 `json:"total"`
	// Rate is queries per second over the last Window.
	Rate float64 `json:"rate"`
	// WindowSeconds is how far back Rate looks (10).
	WindowSeconds float64 `json:"window_seconds"`
	// Rcodes counts answers since start by response code name
	// (NOERROR, NXDOMAIN, REFUSED, ...).
	Rcodes map[string]uint64 `json:"rcodes,omitempty"`
	// History is what the status page plots: the query rate over the
	// last hour and each member's probe latency (nil: not kept).
	History *StatsHistory `json:"history,omitempty"`
}

// StatsHistory is a node's recent history, sampled at fixed steps and
// bounded in memory: points are oldest first, the last one at End.
type StatsHistory struct {
	// QPS is queries per second in each step of QPSStep seconds.
	QPSStep float64   `json:"qps_step_seconds"`
	QPSEnd  time.Time `json:"qps_end,omitzero"`
	QPS     []float64 `json:"qps"`
	// Latency is this node's probe round-trip time of each member it
	// probes, in milliseconds, one point per LatencyStep seconds: the
	// latest probe in the step, -1 where the step had none.
	LatencyStep float64         `json:"latency_step_seconds"`
	LatencyEnd  time.Time       `json:"latency_end,omitzero"`
	Latency     []MemberLatency `json:"latency,omitempty"`
}

// MemberLatency is one member's probe latency history.
type MemberLatency struct {
	Pool   string    `json:"pool"`
	Member string    `json:"member"`
	Millis []float64 `json:"ms"`
}

// Stats reports the DNS server's query counters.
type Stats interface {
	Stats(ctx context.Context) (QueryStats, error)
}

// maxEvents bounds one /v1/events answer; the newest are kept.
const maxEvents = 1000

// eventRoutes adds GET /v1/events and GET /v1/stats.
func (s *Server) eventRoutes() {
	read := s.auth(reader)
	s.handle("GET /v1/events", read(func(w http.ResponseWriter, r *http.Request) {
		var since time.Time
		if v := r.URL.Query().Get("since"); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				writeError(w, fmt.Errorf("%w: since %q: write an RFC 3339 time such as 2026-11-22T05:00:00Z", ErrInvalid, v))
				return
			}
			since = t
		}
		if s.o.Events == nil {
			writeError(w, errNoBackend)
			return
		}
		evs, err := s.o.Events.Events(r.Context(), since)
		if len(evs) > maxEvents {
			evs = evs[len(evs)-maxEvents:]
		}
		if evs == nil {
			evs = []Event{}
		}
		reply(w, evs, err)
	}))
	s.handle("GET /v1/stats", read(wired(s.o.Stats, func(w http.ResponseWriter, r *http.Request) {
		v, err := s.o.Stats.Stats(r.Context())
		reply(w, v, err)
	})))
}

// Events returns the node's state changes at or after since (zero: all
// it keeps).
func (c *Client) Events(ctx context.Context, since time.Time) ([]Event, error) {
	p := "/v1/events"
	if !since.IsZero() {
		p += "?since=" + since.UTC().Format(time.RFC3339Nano)
	}
	var out []Event
	err := c.do(ctx, http.MethodGet, p, nil, &out)
	return out, err
}

// Stats returns the node's query counters.
func (c *Client) Stats(ctx context.Context) (QueryStats, error) {
	var out QueryStats
	err := c.do(ctx, http.MethodGet, "/v1/stats", nil, &out)
	return out, err
}

// EventLog keeps the last events in memory and implements Events. It is
// safe for concurrent use; a node adds to it when a member's state changes.
type EventLog struct {
	mu   sync.Mutex
	buf  []Event // ring, oldest at next once full
	next int
	full bool
}

// NewEventLog returns a log keeping the last n events (n < 1: 1).
func NewEventLog(n int) *EventLog {
	return &EventLog{buf: make([]Event, max(n, 1))}
}

// Add records e, dropping the oldest event when the log is full.
func (l *EventLog) Add(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf[l.next] = e
	l.next = (l.next + 1) % len(l.buf)
	if l.next == 0 {
		l.full = true
	}
}

// Events returns the kept events at or after since, in the order added.
func (l *EventLog) Events(_ context.Context, since time.Time) ([]Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	add := func(es []Event) {
		for _, e := range es {
			if !e.At.Before(since) {
				out = append(out, e)
			}
		}
	}
	if l.full {
		add(l.buf[l.next:])
	}
	add(l.buf[:l.next])
	return out, nil
}

var _ Events = (*EventLog)(nil)

// RateMeter turns a growing total (queries answered) into a rate over a
// sliding window. The query path only bumps its counter; the node samples
// that counter about once a second (a ticker in its Run) and reads Rate
// when asked for Stats. Safe for concurrent use.
type RateMeter struct {
	mu      sync.Mutex
	window  time.Duration
	samples []rateSample // oldest first, spanning a little over window
}

type rateSample struct {
	at    time.Time
	total uint64
}

// NewRateMeter returns a meter over window (<= 0: 10 s).
func NewRateMeter(window time.Duration) *RateMeter {
	if window <= 0 {
		window = 10 * time.Second
	}
	return &RateMeter{window: window}
}

// Sample records the total at a time; samples must come in time order
// (an earlier one is ignored). A total lower than the previous one (a
// counter reset) starts the window afresh.
func (m *RateMeter) Sample(at time.Time, total uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.samples); n > 0 {
		last := m.samples[n-1]
		if !at.After(last.at) {
			return
		}
		if total < last.total {
			m.samples = m.samples[:0]
		}
	}
	m.samples = append(m.samples, rateSample{at, total})
	// Keep one sample at or before at-window, and everything after it.
	cut := 0
	for i, s := range m.samples {
		if !s.at.After(at.Add(-m.window)) {
			cut = i
		}
	}
	m.samples = append(m.samples[:0], m.samples[cut:]...)
}

// Rate returns the rate per second over the window ending at the newest
// sample, and the span it was measured over: shorter than the window
// while the meter has not yet seen a whole one, 0 with fewer than two
// samples.
func (m *RateMeter) Rate() (perSecond float64, over time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.samples) < 2 {
		return 0, 0
	}
	newest := m.samples[len(m.samples)-1]
	oldest := m.samples[0]
	if newest.at.Sub(oldest.at) > m.window {
		// The kept sample before the window: interpolate to the window's start.
		next := m.samples[1]
		start := newest.at.Add(-m.window)
		frac := float64(start.Sub(oldest.at)) / float64(next.at.Sub(oldest.at))
		base := float64(oldest.total) + frac*float64(next.total-oldest.total)
		return (float64(newest.total) - base) / m.window.Seconds(), m.window
	}
	span := newest.at.Sub(oldest.at)
	return float64(newest.total-oldest.total) / span.Seconds(), span
}
