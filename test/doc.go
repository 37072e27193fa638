// Package test holds Tern's end-to-end tests: the tern binary run as real
// processes on loopback, and (as root) topologies of network namespaces.
// Nothing here is imported by Tern itself.
//
// # Imports
//
// Tern packages: none outside its test files (they run the binary, and
// use api, dnssec and internal/nsrun).
package test
