// Package geo tells where a client is: a MaxMind database (GeoIP2 or
// GeoLite2, City or Country) read through github.com/oschwald/geoip2-golang/v2
// and reloaded when its file changes, static CIDR tables that override it,
// and great-circle distances.
//
// Lookups are made from the DNS query path: they take no lock (the open
// database sits behind an atomic.Pointer and is swapped whole on reload)
// and, once a record has been seen, allocate nothing (decoded records are
// cached by their offset in the database, in a fixed table of atomic
// pointers). The database network each lookup fell in is cached too, in a
// fixed table indexed by the client's /24 or /48 (netcache.go), so a
// client of a network seen before skips the walk down the database's tree.
// geoip2-golang opens and validates every file (it rejects databases
// that are neither City nor Country); the lookups themselves go through
// its underlying maxminddb-golang reader on the same bytes, decoding
// only the fields Tern uses (continent, country, coordinates), because
// geoip2's City record decodes names in every language on every call.
//
// The file is read into memory rather than memory-mapped: an old database
// can then never be unmapped under a lookup still using it; the garbage
// collector frees it when the last lookup is done.
//
// # Imports
//
// Tern packages: none.
package geo
