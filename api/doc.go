// Package api is Tern's HTTP admin API: versioned JSON endpoints under /v1,
// /healthz, /readyz and /metrics, and a Go client the CLI uses.
//
// The server knows nothing of how a node works: each group of endpoints
// calls a small interface declared here, which package node implements. A
// group whose interface is nil answers 501 with a message saying so.
// Errors are JSON objects {"error": "..."} with a message a person can act
// on.
//
// Access, decided in one place (Server.auth): /healthz, /readyz, the status
// page and its assets are public; reads need the bearer token only with
// Options.ReadToken, and /metrics and /v1/site/load then too unless
// Options.PublicMetrics; an operator's writes need the token; the
// cluster's own calls (join, forwarded commands) need the token or a
// client certificate verified against Options.ClientCAs. New refuses to
// listen beyond loopback without a token (ErrInsecure); without one,
// writes are answered for loopback clients only. Every request body is
// bounded (64 KiB for a join or an admin change, Options.MaxApplyBody,
// 1.25 GiB, for an apply, 32 MiB for a forwarded command) and a larger one
// gets 413. An apply or a rollback has 15 minutes to be read and answered
// (a big zone takes a while to parse), other requests a minute.
//
// A configuration change (POST /v1/config, a rollback)
// names the version it was based on (Change.Base) and is answered 409
// Conflict when that is no longer current, unless it is forced; the
// server adds the client's address (Change.Client) for the version's
// origin.
//
// # Imports
//
// Tern packages: none. The server calls interfaces declared here, which
// package node implements.
package api
