// Package dnssec signs Tern's answers (RFC 4033-4035): BIND-format key
// files (read, written, checked), RRSIG making for a zone's static RRsets
// when a snapshot is compiled, a bounded lock-free cache of the
// signatures of answers made on the fly (pool answers, negative answers),
// and the compact denial of existence of RFC 9824 (one NSEC at the query
// name, NXNAME in its bitmap for a name that does not exist).
//
// It is pure but for the key files it reads and writes. The query path
// calls Zone.Static and Zone.Cached, which take no lock and do not
// allocate; a cache miss calls Zone.SignDynamic, which costs one signature
// per key.
//
// # Imports
//
// Tern packages: zones (for the compiled RRsets it signs); no server
// package.
package dnssec
