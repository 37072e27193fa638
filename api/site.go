package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
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

// SiteShedder sheds percent of a site's clients: every member of the
// site, in every pool, gets the admin state shed:percent (0: auto, 100:
// drain). It returns how many members it set; ErrNotFound when no member
// is in the site.
type SiteShedder interface {
	ShedSite(ctx context.Context, site string, percent int) (int, error)
}

// validAdmin reports whether state is an admin state a member may be set
// to.
func validAdmin(state string) bool {
	switch state {
	case "auto", "up", "down", "drain":
		return true
	}
	p, ok := strings.CutPrefix(state, "shed:")
	if !ok {
		return false
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 100 && strconv.Itoa(n) == p
}

func (s *Server) siteRoutes() {
	s.handle("PUT /v1/sites/{site}/shed", s.auth(operator)(wired(s.o.Shedder, func(w http.ResponseWriter, r *http.Request) {
		var req ShedRequest
		if !decode(w, r, maxSmallBody, &req) {
			return
		}
		if req.Percent < 0 || req.Percent > 100 {
			writeError(w, fmt.Errorf("%w: percent %d: write 0 (no shedding) to 100 (drain)", ErrInvalid, req.Percent))
			return
		}
		n, err := s.o.Shedder.ShedSite(r.Context(), r.PathValue("site"), req.Percent)
		reply(w, ShedResult{Site: r.PathValue("site"), Percent: req.Percent, Members: n}, err)
	})))
	s.handle("GET /v1/site/load", s.auth(metricsReader)(wired(s.o.Site, func(w http.ResponseWriter, r *http.Request) {
		v, err := s.o.Site.SiteLoad(r.Context())
		reply(w, v, err)
	})))
}
