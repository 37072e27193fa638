//go:build race

package dnsserver

// raceOn: the tests run under -race, which allocates.
const raceOn = true
