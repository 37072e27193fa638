//go:build !race

package dnsserver

const raceOn = false
