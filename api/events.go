package api

import (
	"context"
	"fmt"
	"net/http"
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
}

// Stats reports the DNS server's query counters.
type Stats interface {
	Stats(ctx context.Context) (QueryStats, error)
}

// maxEvents bounds one /v1/events answer; the newest are kept.
const maxEvents = 1000

// eventRoutes adds GET /v1/events and GET /v1/stats.
func (s *Server) eventRoutes() {
	read := s.auth(false)
	s.mux.Handle("GET /v1/events", read(func(w http.ResponseWriter, r *http.Request) {
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
	s.mux.Handle("GET /v1/stats", read(func(w http.ResponseWriter, r *http.Request) {
		if s.o.Stats == nil {
			writeError(w, errNoBackend)
			return
		}
		v, err := s.o.Stats.Stats(r.Context())
		reply(w, v, err)
	}))
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
