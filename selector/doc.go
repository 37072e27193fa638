// Package selector is Tern's pure policy: given a compiled pool, the state
// of its members and who asks, it decides which members an answer carries,
// in which order, and how wide a client subnet that decision holds for (the
// ECS scope).
//
// # The chain
//
// A pool's policy is a chain of stages; presets (config.Presets) expand to
// chains. Every chain begins with an implicit family stage (A: IPv4 and
// host-name members; AAAA: IPv6 and host-name members). The stages:
//
//   - healthy drops members down or drained. When it drops every member
//     of the family, the pool's all_down decides: all (run the chain
//     again as if every member were up; drained members stay out unless
//     every member is drained, as all never answers empty), none (an empty answer: NODATA),
//     or fallback:<pool> (the other pool answers; Answer.Pool says which).
//   - geo keeps and orders sites by where the client is: with a map, the
//     most specific entry (CIDR, then country, then continent, then
//     default) whose sites still have a member gives the site list, one
//     tier per site in list order; without a map, members are ordered by
//     great-circle distance from the client, one tier per distance.
//   - priority keeps the first priority group with at least min_healthy
//     (a count or a percentage of the group, at most the whole group)
//     members left; when none has enough, the first with any.
//   - weighted, roundrobin, load and sticky order members within each
//     tier: weighted random order without replacement; rotation by an
//     atomic counter; least load/capacity first (equal loads take turns);
//     rendezvous hashing of the client's subnet (sticky_prefix per family),
//     so a subnet keeps its member while that member is up and only a
//     down member's subnets move.
//   - latency orders each tier by the members' smoothed probe RTTs as the
//     vantage node nearest the client measured them (the answering
//     node's own when locations are unknown), cut into bands of members
//     within tolerance of each other; max_rtt drops slower members unless
//     all are. Orders are precomputed per member state (WithStatus).
//   - spill (implicit before the ordering stage when not named) moves a
//     share of the first tier's clients, chosen by a hash of the client
//     subnet, when load passes spill_at of a declared site or member
//     capacity or an operator sheds (shed:N): to the tier's other
//     members, or when all shed it to a next tier picked by free capacity.
//   - first keeps the first `answers` members, from the first tier alone
//     unless the pool says fill: next_tier.
//
// An answer is either address members or one host-name member (answered
// as a CNAME): host names after an address are left out.
//
// # ECS scope
//
// Each stage that looks at the client widens the answer's scope: geo by
// the span of its decision (the CIDR key or database network the client
// fell in, lengthened past any more specific CIDR key nearby), sticky by
// its prefix. The scope is capped at the client's source prefix and is 0
// when no stage looked at the client.
//
// # Cost
//
// A decision does no I/O, reads no clock, takes no lock and allocates
// nothing: it works in a Scratch the caller owns (one per worker), whose
// own random source serves the weighted stage. The geo stage asks a
// Locator (a *geo.DB) that is lock-free too.
//
// Explain and WriteExplain run the same chain and record what each stage
// kept and dropped and why; they allocate and are meant for people
// (`tern explain`).
//
// # Imports
//
// Tern packages: config (to compile pools), geo (client locations),
// internal/mix (the hashes of sticky choices); no server package.
package selector
