package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Errors a backend wraps (with %w) to choose the HTTP status.
var (
	ErrNotFound    = errors.New("not found")       // 404
	ErrInvalid     = errors.New("invalid request") // 400
	ErrUnavailable = errors.New("unavailable")     // 503: no leader, not in quorum
	ErrConflict    = errors.New("conflict")        // 409
	errNoBackend   = errors.New("not available on this node")
)

// StatusSource reports a node's state.
type StatusSource interface {
	Status(ctx context.Context) (Status, error)
	// Ready is nil when the node serves a snapshot and is in quorum, else
	// says why not.
	Ready(ctx context.Context) error
}

// Cluster is Raft membership.
type Cluster interface {
	Members(ctx context.Context) ([]ClusterMember, error)
	Join(ctx context.Context, r JoinRequest) error
	Remove(ctx context.Context, id string) error
}

// Pools shows pools and sets members' admin states.
type Pools interface {
	Pools(ctx context.Context) ([]Pool, error)
	SetAdmin(ctx context.Context, pool, address, state string) error
}

// Configs lists, shows, applies and rolls back configuration versions.
type Configs interface {
	Versions(ctx context.Context) ([]ConfigVersion, error)
	Version(ctx context.Context, v uint64) (ConfigVersion, error)
	// Apply and Rollback refuse a change whose Base is no longer the
	// current version, unless forced, with an error wrapping ErrConflict.
	Apply(ctx context.Context, r ApplyRequest) (ApplyResult, error)
	Rollback(ctx context.Context, v uint64, r RollbackRequest) (ApplyResult, error)
}

// Forwarder applies a replicated-state command that another node of the
// cluster forwarded here because this node leads. The command is opaque
// to the API (the Raft store's encoding); the node decodes and validates
// it before proposing.
type Forwarder interface {
	ApplyCommand(ctx context.Context, cmd []byte) (CommandResult, error)
}

// Explainer explains a live decision.
type Explainer interface {
	Explain(ctx context.Context, name, client string) (Explanation, error)
}

// Options configure a Server. Nil interfaces leave their endpoints
// answering 501.
type Options struct {
	Addr string
	// Token is the bearer token writes need; empty means writes are open
	// (acceptable only on loopback; the server logs a warning otherwise).
	Token string
	// ReadToken makes reads need the token too.
	ReadToken bool
	// CertFile and KeyFile turn on TLS.
	CertFile, KeyFile string

	Status    StatusSource
	Cluster   Cluster
	Pools     Pools
	Configs   Configs
	Explainer Explainer
	Forwarder Forwarder
	Events    Events     // GET /v1/events, for the status page
	Stats     Stats      // GET /v1/stats, for the status page
	Site      SiteLoader // GET /v1/site/load: the dispatcher's load for a load check
	// Registry is scraped on /metrics.
	Registry *prometheus.Registry
	// Page is served on / (nil: the built-in status page, StatusPage).
	Page   http.Handler
	Logger *slog.Logger
}

// Server is the HTTP API of one node.
type Server struct {
	o     Options
	ln    net.Listener
	mux   *http.ServeMux
	ready chan struct{}
}

// New binds the listener (so the address is known and in use before Run)
// and builds the routes.
func New(o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("api listen %q: %w", o.Addr, err)
	}
	if o.Token == "" {
		if ap, err := netipAddrPort(ln.Addr()); err != nil || !ap {
			o.Logger.Warn("api has no token and listens beyond loopback: anyone who reaches it can change the cluster", "addr", ln.Addr().String())
		}
	}
	s := &Server{o: o, ln: ln, mux: http.NewServeMux(), ready: make(chan struct{})}
	s.routes()
	s.pageRoutes()
	s.siteRoutes()
	return s, nil
}

func netipAddrPort(a net.Addr) (loopback bool, err error) {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return false, errors.New("not tcp")
	}
	return ta.IP.IsLoopback(), nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Handler returns the routes, for tests that serve them themselves.
func (s *Server) Handler() http.Handler { return s.mux }

// Run serves until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	hs := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() {
		var err error
		if s.o.CertFile != "" {
			err = hs.ServeTLS(s.ln, s.o.CertFile, s.o.KeyFile)
		} else {
			err = hs.Serve(s.ln)
		}
		errc <- err
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("api: %w", err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shut); err != nil {
		return fmt.Errorf("api shutdown: %w", err)
	}
	return nil
}

const maxBody = 16 << 20 // a whole configuration with its zone files

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	m.HandleFunc("GET /readyz", wired(s.o.Status, func(w http.ResponseWriter, r *http.Request) {
		if err := s.o.Status.Ready(r.Context()); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}))
	if s.o.Registry != nil {
		m.Handle("GET /metrics", promhttp.HandlerFor(s.o.Registry, promhttp.HandlerOpts{Registry: s.o.Registry}))
	}
	if s.o.Page != nil {
		m.Handle("GET /{$}", s.o.Page)
	}

	read := s.auth(false)
	write := s.auth(true)
	m.Handle("GET /v1/status", read(wired(s.o.Status, func(w http.ResponseWriter, r *http.Request) {
		v, err := s.o.Status.Status(r.Context())
		reply(w, v, err)
	})))

	m.Handle("GET /v1/cluster/members", read(wired(s.o.Cluster, func(w http.ResponseWriter, r *http.Request) {
		v, err := s.o.Cluster.Members(r.Context())
		reply(w, v, err)
	})))
	m.Handle("POST /v1/cluster/join", write(wired(s.o.Cluster, func(w http.ResponseWriter, r *http.Request) {
		var req JoinRequest
		if !decode(w, r, &req) {
			return
		}
		if req.ID == "" || req.RaftAddr == "" {
			writeError(w, fmt.Errorf("%w: join needs id and raft_addr", ErrInvalid))
			return
		}
		respondEmpty(w, s.o.Cluster.Join(r.Context(), req))
	})))
	m.Handle("DELETE /v1/cluster/members/{id}", write(wired(s.o.Cluster, func(w http.ResponseWriter, r *http.Request) {
		respondEmpty(w, s.o.Cluster.Remove(r.Context(), r.PathValue("id")))
	})))

	m.Handle("GET /v1/pools", read(wired(s.o.Pools, func(w http.ResponseWriter, r *http.Request) {
		v, err := s.o.Pools.Pools(r.Context())
		reply(w, v, err)
	})))
	m.Handle("PUT /v1/pools/{pool}/members/{address}/admin", write(wired(s.o.Pools, func(w http.ResponseWriter, r *http.Request) {
		var req AdminRequest
		if !decode(w, r, &req) {
			return
		}
		switch req.State {
		case "auto", "up", "down", "drain":
		default:
			writeError(w, fmt.Errorf("%w: state %q: write auto, up, down or drain", ErrInvalid, req.State))
			return
		}
		respondEmpty(w, s.o.Pools.SetAdmin(r.Context(), r.PathValue("pool"), r.PathValue("address"), req.State))
	})))

	m.Handle("GET /v1/config/versions", read(wired(s.o.Configs, func(w http.ResponseWriter, r *http.Request) {
		v, err := s.o.Configs.Versions(r.Context())
		reply(w, v, err)
	})))
	m.Handle("GET /v1/config/versions/{v}", read(func(w http.ResponseWriter, r *http.Request) {
		v, ok := versionArg(w, r)
		if !ok {
			return
		}
		if s.o.Configs == nil {
			writeError(w, errNoBackend)
			return
		}
		cv, err := s.o.Configs.Version(r.Context(), v)
		reply(w, cv, err)
	}))
	m.Handle("POST /v1/config/versions/{v}/rollback", write(func(w http.ResponseWriter, r *http.Request) {
		v, ok := versionArg(w, r)
		if !ok {
			return
		}
		if s.o.Configs == nil {
			writeError(w, errNoBackend)
			return
		}
		var req RollbackRequest // no body: based on version 0, refused unless the cluster has none
		if r.ContentLength != 0 && !decode(w, r, &req) {
			return
		}
		req.Client = r.RemoteAddr
		res, err := s.o.Configs.Rollback(r.Context(), v, req)
		reply(w, res, err)
	}))
	m.Handle("POST /v1/config", write(wired(s.o.Configs, func(w http.ResponseWriter, r *http.Request) {
		var req ApplyRequest
		if !decode(w, r, &req) {
			return
		}
		if req.Main == "" || req.Files[req.Main] == "" {
			writeError(w, fmt.Errorf("%w: apply needs main (the YAML file's name) and files including it", ErrInvalid))
			return
		}
		req.Client = r.RemoteAddr
		v, err := s.o.Configs.Apply(r.Context(), req)
		reply(w, v, err)
	})))

	// Internal: a follower forwards a write to the leader here. It needs the
	// write token like every write.
	m.Handle("POST /v1/raft/apply", write(wired(s.o.Forwarder, func(w http.ResponseWriter, r *http.Request) {
		cmd, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		switch {
		case err != nil:
			writeError(w, fmt.Errorf("%w: request body: %v", ErrInvalid, err))
			return
		case len(cmd) > maxBody:
			writeError(w, fmt.Errorf("%w: command larger than %d bytes", ErrInvalid, maxBody))
			return
		}
		res, err := s.o.Forwarder.ApplyCommand(r.Context(), cmd)
		reply(w, res, err)
	})))

	m.Handle("GET /v1/explain", read(wired(s.o.Explainer, func(w http.ResponseWriter, r *http.Request) {
		name, client := r.URL.Query().Get("name"), r.URL.Query().Get("client")
		if name == "" || client == "" {
			writeError(w, fmt.Errorf("%w: explain needs ?name=NAME&client=ADDRESS-OR-SUBNET", ErrInvalid))
			return
		}
		v, err := s.o.Explainer.Explain(r.Context(), name, client)
		reply(w, v, err)
	})))

	m.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, fmt.Errorf("%w: no endpoint %s %s", ErrNotFound, r.Method, r.URL.Path))
	})
}

// wired returns h, or, when the backend h calls is not wired (nil), a
// handler answering 501: the check is made once, when routes are built.
func wired(backend any, h http.HandlerFunc) http.HandlerFunc {
	if backend == nil {
		return func(w http.ResponseWriter, _ *http.Request) { writeError(w, errNoBackend) }
	}
	return h
}

// auth wraps a handler with the bearer-token check for writes (and for
// reads when ReadToken is set).
func (s *Server) auth(isWrite bool) func(http.HandlerFunc) http.Handler {
	return func(h http.HandlerFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if s.o.Token != "" && (isWrite || s.o.ReadToken) {
				got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
				if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.o.Token)) != 1 {
					w.Header().Set("WWW-Authenticate", `Bearer realm="tern"`)
					writeJSON(w, http.StatusUnauthorized, errorBody{Error: "missing or wrong bearer token: pass --token or set TERN_TOKEN"})
					return
				}
			}
			h(w, r)
		})
	}
}

func versionArg(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	v, err := strconv.ParseUint(r.PathValue("v"), 10, 64)
	if err != nil || v == 0 {
		writeError(w, fmt.Errorf("%w: version %q is not a positive number", ErrInvalid, r.PathValue("v")))
		return 0, false
	}
	return v, true
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, fmt.Errorf("%w: request body: %v", ErrInvalid, err))
		return false
	}
	return true
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func respondEmpty(w http.ResponseWriter, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// statusOf maps an error to its HTTP status: the one place that does.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, errNoBackend):
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, err error) {
	writeJSON(w, statusOf(err), errorBody{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
