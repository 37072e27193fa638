package api

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Errors a backend wraps (with %w) to choose the HTTP status, and New's.
var (
	ErrNotFound    = errors.New("not found")       // 404
	ErrInvalid     = errors.New("invalid request") // 400
	ErrUnavailable = errors.New("unavailable")     // 503: no leader, not in quorum
	ErrConflict    = errors.New("conflict")        // 409
	errNoBackend   = errors.New("not available on this node")
	errTooLarge    = errors.New("request body too large") // 413
	// ErrInsecure is New's refusal to serve beyond loopback without a
	// token: anyone who reached such an API could change the cluster.
	ErrInsecure = errors.New("the API listens beyond loopback without a write token")
)

// Body limits per route: JoinRequest and AdminRequest are a few short
// strings; an apply carries a whole configuration with its zone files
// (JSON-escaped: up to 1 GiB of files, what a cluster node accepts in one
// version); a forwarded command is one Raft log entry (at most 16 MiB:
// file content travels in pieces).
const (
	maxSmallBody   = 64 << 10
	maxCommandBody = 32 << 20
	// DefaultMaxApplyBody is Options.MaxApplyBody's default.
	DefaultMaxApplyBody = 1280 << 20
	// applyDeadline is how long an apply or a rollback may take to be
	// read, validated and committed (its zones parsed, its files
	// uploaded) where other requests have a minute.
	applyDeadline = 15 * time.Minute
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
	// Addr is where the API listens. Without a Token it must be loopback
	// only (127.0.0.0/8, ::1, or "localhost" resolving to those): New
	// refuses a wildcard (":8054", "0.0.0.0:8054", "[::]:8054"), any
	// other address and any other host name with ErrInsecure.
	Addr string
	// Token is the bearer token writes need. Empty: writes are open to
	// loopback clients (Addr is then loopback only).
	Token string
	// ReadToken makes reads need the token too; /metrics and
	// /v1/site/load then too unless PublicMetrics.
	ReadToken bool
	// PublicMetrics keeps /metrics and /v1/site/load open when reads need
	// the token (a scraper, or another site's load check, without one).
	PublicMetrics bool
	// CertFile and KeyFile turn on TLS.
	CertFile, KeyFile string
	// ClientCAs, with TLS, makes the server ask for a client certificate
	// and verify one that is given against these CAs (the cluster's):
	// a verified certificate admits the cluster's own calls, join and
	// forwarded commands (POST /v1/cluster/join, /v1/raft/apply), in
	// place of the token. It admits nothing else: an operator's writes
	// and reads still need the token.
	ClientCAs *x509.CertPool
	// MaxApplyBody bounds the body of POST /v1/config (default
	// DefaultMaxApplyBody, 1.25 GiB); a larger one is refused with 413.
	// Join and admin bodies are bounded at 64 KiB, a forwarded command at
	// 32 MiB (or MaxApplyBody when smaller).
	MaxApplyBody int64

	Status    StatusSource
	Cluster   Cluster
	Pools     Pools
	Configs   Configs
	Explainer Explainer
	Forwarder Forwarder
	Events    Events      // GET /v1/events, for the status page
	Stats     Stats       // GET /v1/stats, for the status page
	Site      SiteLoader  // GET /v1/site/load: the dispatcher's load for a load check
	Snapshots Snapshotter // GET /v1/snapshot: a backup of the replicated state
	Shedder   SiteShedder // PUT /v1/sites/{site}/shed: shed a site's clients
	// Registry is scraped on /metrics.
	Registry *prometheus.Registry
	// Page is served on / (nil: the built-in status page, StatusPage).
	Page   http.Handler
	Logger *slog.Logger
}

// Server is the HTTP API of one node.
type Server struct {
	o        Options
	ln       net.Listener
	mux      *http.ServeMux
	patterns []string // every route's, for Routes
	ready    chan struct{}
}

// New binds the listener (so the address is known and in use before Run)
// and builds the routes.
func New(o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxApplyBody <= 0 {
		o.MaxApplyBody = DefaultMaxApplyBody
	}
	if o.Token == "" && !LoopbackOnly(o.Addr) {
		return nil, fmt.Errorf("api %q: %w", o.Addr, ErrInsecure)
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("api listen %q: %w", o.Addr, err)
	}
	s := &Server{o: o, ln: ln, mux: http.NewServeMux(), ready: make(chan struct{})}
	s.routes()
	s.pageRoutes()
	s.siteRoutes()
	return s, nil
}

// LoopbackOnly reports whether a listener on addr (host:port) is reached
// from this host alone, decided by the address as written: an IP address
// in 127.0.0.0/8 or ::1, or "localhost" when every address it resolves to
// (net.LookupHost) is one. A wildcard (":8054", "0.0.0.0", "::"), any
// other address and any other host name are beyond loopback.
func LoopbackOnly(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().IsLoopback()
	}
	if !strings.EqualFold(host, "localhost") {
		return false
	}
	ips, err := net.LookupHost(host)
	if err != nil || len(ips) == 0 {
		return false
	}
	for _, s := range ips {
		ip, err := netip.ParseAddr(s)
		if err != nil || !ip.Unmap().IsLoopback() {
			return false
		}
	}
	return true
}

// handle registers a route and notes its pattern for Routes.
func (s *Server) handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, s.logged(h))
	s.patterns = append(s.patterns, pattern)
}

// logged logs each request to h at debug level: method, path, status,
// size, time taken and the client. Above debug it costs one Enabled call.
func (s *Server) logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.o.Logger.Enabled(r.Context(), slog.LevelDebug) {
			h.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		s.o.Logger.Debug("api request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"bytes", rec.bytes, "duration", time.Since(start), "client", r.RemoteAddr)
	})
}

// recorder is a ResponseWriter that notes the status and size written.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (flushes,
// deadlines) through the recorder.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Routes returns the pattern of every route, in the order registered
// ("GET /v1/status", "POST /v1/config", ...): what a test that must
// reach every endpoint iterates over.
func (s *Server) Routes() []string { return slices.Clone(s.patterns) }

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
	if s.o.ClientCAs != nil {
		hs.TLSConfig = &tls.Config{
			MinVersion: tls.VersionTLS12,
			ClientAuth: tls.VerifyClientCertIfGiven,
			ClientCAs:  s.o.ClientCAs,
		}
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

func (s *Server) routes() {
	s.handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	}))
	s.handle("GET /readyz", wired(s.o.Status, func(w http.ResponseWriter, r *http.Request) {
		if err := s.o.Status.Ready(r.Context()); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}))
	if s.o.Registry != nil {
		s.handle("GET /metrics", s.auth(metricsReader)(promhttp.HandlerFor(s.o.Registry, promhttp.HandlerOpts{Registry: s.o.Registry}).ServeHTTP))
	}
	if s.o.Page != nil {
		s.handle("GET /{$}", s.o.Page)
	}

	read := s.auth(reader)
	write := s.auth(operator)
	peer := s.auth(clusterPeer)
	s.handle("GET /v1/status", read(wired(s.o.Status, func(w http.ResponseWriter, r *http.Request) {
		v, err := s.o.Status.Status(r.Context())
		reply(w, v, err)
	})))

	s.handle("GET /v1/cluster/members", read(wired(s.o.Cluster, func(w http.ResponseWriter, r *http.Request) {
		v, err := s.o.Cluster.Members(r.Context())
		reply(w, v, err)
	})))
	s.handle("POST /v1/cluster/join", peer(wired(s.o.Cluster, func(w http.ResponseWriter, r *http.Request) {
		var req JoinRequest
		if !decode(w, r, maxSmallBody, &req) {
			return
		}
		if req.ID == "" || req.RaftAddr == "" {
			writeError(w, fmt.Errorf("%w: join needs id and raft_addr", ErrInvalid))
			return
		}
		respondEmpty(w, s.o.Cluster.Join(r.Context(), req))
	})))
	s.handle("DELETE /v1/cluster/members/{id}", write(wired(s.o.Cluster, func(w http.ResponseWriter, r *http.Request) {
		respondEmpty(w, s.o.Cluster.Remove(r.Context(), r.PathValue("id")))
	})))

	s.handle("GET /v1/pools", read(wired(s.o.Pools, func(w http.ResponseWriter, r *http.Request) {
		v, err := s.o.Pools.Pools(r.Context())
		reply(w, v, err)
	})))
	s.handle("PUT /v1/pools/{pool}/members/{address}/admin", write(wired(s.o.Pools, func(w http.ResponseWriter, r *http.Request) {
		var req AdminRequest
		if !decode(w, r, maxSmallBody, &req) {
			return
		}
		if !validAdmin(req.State) {
			writeError(w, fmt.Errorf("%w: state %q: write auto, up, down, drain or shed:PERCENT (1 to 100)", ErrInvalid, req.State))
			return
		}
		respondEmpty(w, s.o.Pools.SetAdmin(r.Context(), r.PathValue("pool"), r.PathValue("address"), req.State))
	})))

	s.handle("GET /v1/config/versions", read(wired(s.o.Configs, func(w http.ResponseWriter, r *http.Request) {
		v, err := s.o.Configs.Versions(r.Context())
		reply(w, v, err)
	})))
	s.handle("GET /v1/config/versions/{v}", read(func(w http.ResponseWriter, r *http.Request) {
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
	s.handle("POST /v1/config/versions/{v}/rollback", write(func(w http.ResponseWriter, r *http.Request) {
		v, ok := versionArg(w, r)
		if !ok {
			return
		}
		if s.o.Configs == nil {
			writeError(w, errNoBackend)
			return
		}
		extendDeadlines(w)
		var req RollbackRequest // no body: based on version 0, refused unless the cluster has none
		if r.ContentLength != 0 && !decode(w, r, maxSmallBody, &req) {
			return
		}
		req.Client = r.RemoteAddr
		res, err := s.o.Configs.Rollback(r.Context(), v, req)
		reply(w, res, err)
	}))
	s.handle("POST /v1/config", write(wired(s.o.Configs, func(w http.ResponseWriter, r *http.Request) {
		extendDeadlines(w)
		var req ApplyRequest
		if !decode(w, r, s.o.MaxApplyBody, &req) {
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

	// Internal: a follower forwards a write to the leader here. It needs
	// the token or a node's client certificate (see Options.ClientCAs).
	s.handle("POST /v1/raft/apply", peer(wired(s.o.Forwarder, func(w http.ResponseWriter, r *http.Request) {
		cmd, err := io.ReadAll(http.MaxBytesReader(w, r.Body, min(s.o.MaxApplyBody, maxCommandBody)))
		if err != nil {
			writeError(w, bodyError(err))
			return
		}
		res, err := s.o.Forwarder.ApplyCommand(r.Context(), cmd)
		reply(w, res, err)
	})))

	s.handle("GET /v1/explain", read(wired(s.o.Explainer, func(w http.ResponseWriter, r *http.Request) {
		name, client := r.URL.Query().Get("name"), r.URL.Query().Get("client")
		if name == "" || client == "" {
			writeError(w, fmt.Errorf("%w: explain needs ?name=NAME&client=ADDRESS-OR-SUBNET", ErrInvalid))
			return
		}
		v, err := s.o.Explainer.Explain(r.Context(), name, client)
		reply(w, v, err)
	})))

	s.snapshotRoutes()
	s.handle("/v1/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, fmt.Errorf("%w: no endpoint %s %s", ErrNotFound, r.Method, r.URL.Path))
	}))
}

// extendDeadlines gives an apply or a rollback applyDeadline to be read and
// answered, in place of the server's minute.
func extendDeadlines(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	at := time.Now().Add(applyDeadline)
	_ = rc.SetReadDeadline(at) // a ResponseWriter without deadlines keeps the server's
	_ = rc.SetWriteDeadline(at)
}

// wired returns h, or, when the backend h calls is not wired (nil), a
// handler answering 501: the check is made once, when routes are built.
func wired(backend any, h http.HandlerFunc) http.HandlerFunc {
	if backend == nil {
		return func(w http.ResponseWriter, _ *http.Request) { writeError(w, errNoBackend) }
	}
	return h
}

// access is who may call a route (see auth).
type access uint8

const (
	reader        access = iota // reads: the token when ReadToken
	metricsReader               // /metrics, /v1/site/load: a read unless PublicMetrics
	operator                    // an operator's writes: the token
	clusterPeer                 // join, forwarded commands: the token or a node's certificate
)

// auth wraps a handler with the check its access needs:
//
//   - reader: the bearer token when Token and ReadToken are set, else open;
//     metricsReader likewise unless PublicMetrics;
//   - operator: the token; without one (Addr is then loopback only, see
//     New) a loopback client;
//   - clusterPeer: the token, or a client certificate the TLS handshake
//     verified against ClientCAs; with neither a token nor ClientCAs, a
//     loopback client (a development node).
func (s *Server) auth(a access) func(http.HandlerFunc) http.Handler {
	return func(h http.HandlerFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if s.allowed(a, r) {
				h(w, r)
				return
			}
			msg := "missing or wrong bearer token: pass --token or set TERN_TOKEN"
			switch {
			case a == clusterPeer && s.o.ClientCAs != nil:
				msg = "missing or wrong bearer token, and no client certificate of the cluster's CA: a node needs the cluster's token (node.api_token_file) or its node.tls certificate"
			case s.o.Token == "":
				msg = "this API has no token and answers writes from loopback only"
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="tern"`)
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: msg})
		})
	}
}

func (s *Server) allowed(a access, r *http.Request) bool {
	switch a {
	case reader:
		return !s.o.ReadToken || s.o.Token == "" || s.bearer(r)
	case metricsReader:
		return s.o.PublicMetrics || !s.o.ReadToken || s.o.Token == "" || s.bearer(r)
	case operator:
		if s.o.Token == "" {
			return fromLoopback(r)
		}
		return s.bearer(r)
	case clusterPeer:
		switch {
		case s.o.Token != "" && s.bearer(r):
			return true
		case r.TLS != nil && len(r.TLS.VerifiedChains) > 0:
			return true // verified against ClientCAs in the handshake
		}
		return s.o.Token == "" && s.o.ClientCAs == nil && fromLoopback(r)
	}
	return false
}

// bearer reports whether r carries the token.
func (s *Server) bearer(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && s.o.Token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.o.Token)) == 1
}

// fromLoopback reports whether r came from a loopback address.
func fromLoopback(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

func versionArg(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	v, err := strconv.ParseUint(r.PathValue("v"), 10, 64)
	if err != nil || v == 0 {
		writeError(w, fmt.Errorf("%w: version %q is not a positive number", ErrInvalid, r.PathValue("v")))
		return 0, false
	}
	return v, true
}

// decode reads r's body, at most limit bytes, as one JSON value into v:
// unknown fields and trailing data are errors (400), a larger body 413.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the JSON value")
			if terr != nil {
				err = terr
			}
		}
	}
	if err != nil {
		writeError(w, bodyError(err))
		return false
	}
	return true
}

// bodyError is the error answered for a body that could not be read:
// 413 when it was over its limit, else 400.
func bodyError(err error) error {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return fmt.Errorf("%w: more than %d bytes: send a smaller one (for `tern apply`, fewer or smaller zone files)", errTooLarge, mb.Limit)
	}
	return fmt.Errorf("%w: request body: %v", ErrInvalid, err)
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
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge
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
