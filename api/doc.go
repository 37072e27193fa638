// Package api is Tern's HTTP admin API: versioned JSON endpoints under /v1,
// /healthz, /readyz and /metrics, and a Go client the CLI uses.
//
// The server knows nothing of how a node works: each group of endpoints
// calls a small interface declared here, which package node implements. A
// group whose interface is nil answers 501 with a message saying so.
// Errors are JSON objects {"error": "..."} with a message a person can act
// on. Writes need the configured bearer token; reads need it only when the
// server is told so. A configuration change (POST /v1/config, a rollback)
// names the version it was based on (Change.Base) and is answered 409
// Conflict when that is no longer current, unless it is forced; the
// server adds the client's address (Change.Client) for the version's
// origin.
package api
