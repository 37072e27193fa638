package api

import (
	"embed"
	"net/http"
	"strings"
)

// The status page is static: index.html, status.css and status.js,
// embedded in the binary. The script reads the same /v1 endpoints as the
// CLI (status, cluster members, pools, events, stats) every few seconds
// and renders them; the server puts no data in the page itself.
//
// # Token
//
// When reads need the token (Options.ReadToken), the script sends it as
// a bearer token. It takes it from the URL fragment, which browsers never
// send to the server and which the script removes from the address bar
// at once:
//
//	http://node:8053/#token=SECRET
//
// or, when an endpoint answers 401, from a form on the page. Either way
// it is kept in sessionStorage (this tab only, gone when it closes), so
// a reload does not ask again; "Forget token" clears it. The member
// actions (drain, down, up, auto) send it the same way, as the
// Authorization header of PUT /v1/pools/{pool}/members/{address}/admin,
// never in a URL; a 401 shows the form.
//
// The plots are SVG the script draws from /v1/stats' history: no
// external assets, no library.
//
//go:embed static
var staticFiles embed.FS

// pageCSP allows the page its own script, style and API only: no inline
// script, no third-party origin, no framing.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// StatusPage returns the handler of the status page: index.html on / and
// the page's assets under /static/. The server serves it when
// Options.Page is nil.
func StatusPage() http.Handler {
	files := http.FileServerFS(staticFiles) // /static/x is static/x in the embedded tree
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// Assets change with the binary: revalidate, so an upgraded
		// node's page is consistent without a hard reload.
		h.Set("Cache-Control", "no-cache")
		switch {
		case r.URL.Path == "/":
			http.ServeFileFS(w, r, staticFiles, "static/index.html")
		case strings.HasSuffix(r.URL.Path, "/"): // no directory listings
			http.NotFound(w, r)
		default:
			files.ServeHTTP(w, r)
		}
	})
}

// pageRoutes adds the status page (unless Options.Page replaces it), its
// assets, and the endpoints only the page needs so far (events, stats).
func (s *Server) pageRoutes() {
	page := StatusPage()
	if s.o.Page == nil {
		s.handle("GET /{$}", page)
	}
	s.handle("GET /static/", page)
	s.eventRoutes()
}
