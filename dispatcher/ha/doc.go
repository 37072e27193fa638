// Package ha decides which dispatcher of a site holds which VIPs, and moves
// them when one fails.
//
// Dispatchers exchange heartbeats over UDP (every 200ms by default),
// authenticated with HMAC-SHA256 under a shared key and numbered so that a
// captured packet cannot be replayed. VIPs are split into groups; each
// dispatcher has a priority per group, and the highest priority alive holds
// the group (ties broken by the higher ID), as in VRRP. A backup that misses
// DeadAfter heartbeats (3 by default) of the holder takes the group: it adds
// the VIPs to its interface, announces them with gratuitous ARP and tells the
// control plane to forward them. A holder that sees a peer of higher rank
// holding the same group gives it up, which ends a split brain once the peers
// hear each other again. With preemption a dispatcher of higher priority
// takes its groups back from a lower one; without it the holder keeps them
// until it fails. A dispatcher whose reach targets (its gateway, say) stop
// answering gives up every group.
//
// The decisions are made by Machine, a pure state machine (events and an
// injected clock in, actions out) tested without sockets or sleeps; Agent
// wraps it with the UDP socket, the timers, the interface and the callbacks.
//
// # Imports
//
// Tern packages: none.
package ha
