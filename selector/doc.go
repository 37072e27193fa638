// Package selector is Tern's pure policy: given a compiled pool, the state
// of its members and who asks, it decides which members an answer carries,
// in which order, and how wide a client subnet that decision holds for (the
// ECS scope).
//
// A pool's policy is a chain of stages (healthy, geo, priority, weighted,
// roundrobin, load, sticky, first); presets expand to chains. A decision
// does no I/O, reads no clock and allocates nothing: it works in a Scratch
// the caller owns (one per worker).
//
// selector imports config (to compile pools) and geo (client locations);
// no server package.
package selector
