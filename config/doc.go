// Package config decodes and validates Tern's YAML configuration: node
// settings, sites, checks, pools, geo maps and the list of zone files.
//
// Decoding is strict (an unknown key is an error) and every problem is
// reported with the file and line it comes from, all of them at once, so
// that `tern check` tells an operator everything to fix in one run.
//
// # Imports
//
// Tern packages: none. config is a leaf: zone files are parsed by package
// zones, which reports its problems with this package's Problem type.
package config
