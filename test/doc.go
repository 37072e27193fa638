// Package test holds Tern's end-to-end tests: the tern binary run as real
// processes on loopback, and (as root) topologies of network namespaces.
// Nothing here is imported by Tern itself.
package test
