package api

import (
	"context"
	"net/http"
)

// SiteLoad is what a node's dispatcher carries, in the shape Tern's own
// `load` check reads ({"load": ..., "capacity": ...}): a DNS pool member
// can then be a whole site, steered by how busy its dispatcher is.
type SiteLoad struct {
	// Load is the estimated active TCP flows through the VIPs this node
	// forwards.
	Load float64 `json:"load"`
	// Capacity is omitted: the member's capacity: in the pool applies.
	Capacity   float64 `json:"capacity,omitempty"`
	PacketRate float64 `json:"packet_rate"`
	VIPs       int     `json:"vips"`
	Servers    int     `json:"servers"`
	Serving    int     `json:"serving"`
}

// SiteLoader reports the dispatcher's load (GET /v1/site/load); a node
// without a dispatcher answers ErrNotFound.
type SiteLoader interface {
	SiteLoad(ctx context.Context) (SiteLoad, error)
}

func (s *Server) siteRoutes() {
	s.handle("GET /v1/site/load", s.auth(metricsReader)(wired(s.o.Site, func(w http.ResponseWriter, r *http.Request) {
		v, err := s.o.Site.SiteLoad(r.Context())
		reply(w, v, err)
	})))
}
