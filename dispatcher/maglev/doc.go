// Package maglev builds Maglev consistent-hashing lookup tables (Eisenbud et
// al., "Maglev: A Fast and Reliable Software Network Load Balancer", NSDI
// 2016) with weights.
//
// A table maps each of M slots (M prime, 65537 by default) to one backend.
// The dispatcher's datapath hashes a flow's 5-tuple to a slot, so every
// packet of a flow goes to the same backend without per-flow state.
//
// Tables are a pure function of the set of (name, weight) pairs and the size:
// the order in which backends are given does not matter, so two dispatchers
// configured alike hold identical tables and a flow keeps its backend when one
// dispatcher takes over from the other. Changing one backend moves about its
// own share of slots and little more.
//
// # Imports
//
// Tern packages: none.
package maglev
