// Package control is the dispatcher's control plane: the desired state
// (Spec, from the configuration's dispatcher: section), the servers'
// health and the VIPs this dispatcher forwards become datapath state
// through the small Maps interface, which *datapath.LB implements and
// package controltest fakes, so all of it is tested without privileges.
// It also turns the datapath's counters into each VIP's load (Load,
// Collector).
//
// The configuration's dispatcher: section becomes a Spec (services, their
// servers, weights and checks; SpecFromConfig). Control holds the Spec,
// the servers' health verdicts (SetHealth, fed by package probes through
// probes.NewTargets, with the same check definitions as DNS
// pools) and which VIPs this dispatcher forwards (SetOwned, fed by the HA
// agent), and reconciles the datapath to them through the Maps interface
// on every change (Run; failures are retried every second):
//
//   - A server down or drained (weight 0) gets weight 0 in the tables.
//     A server is up until its first verdict says otherwise, so a restart
//     does not drain servers while the first probes run.
//   - Each service's Maglev table (package dispatcher/maglev, default
//     size 65537, weighted) is keyed by server address, so every
//     dispatcher computes the same one and a flow keeps its server across
//     a takeover; a change of one server moves only its share of flows.
//     The table is built aside and swapped in whole (see Table swap).
//   - Backends are written before the tables that name them and deleted
//     after no table names them. Backend ids are numbered from the sorted
//     configuration at start, so a restarted dispatcher rewrites the very
//     tables its pinned maps hold.
//   - Until HA has decided, services a previous run left forwarding stay;
//     a VIP is added to the interface only after its services forward,
//     or the host's own stack would answer (and reset) the first
//     connections. Services the configuration no longer has are removed
//     at the first reconcile.
//
// Load reports per VIP the packets and bytes forwarded and their rates,
// the servers listed and serving, whether this dispatcher forwards the
// VIP, and its TCP flows: new ones, their rate, and an estimate of the
// active ones. `tern dispatch` logs it every --stats-interval ("dispatch:
// load" lines).
//
// # Active flows
//
// The dispatcher keeps no per-flow state, and with direct server return it
// sees only the client's direction of each flow: never a SYN-ACK, nor the
// server's FIN or RST. Active flows are therefore estimated per TCP
// service from the client's segments the datapath counted, at each sample
// (every 5s, or --stats-interval if shorter):
//
//	active += SYNs without ACK − (FINs + RSTs with ACK)
//	active  = clamp(active, 0, SYNs seen in the last --flow-lifetime)
//
// A client sends one FIN per flow it closes, or one RST with ACK when its
// application aborts the flow. A RST without ACK is the client's stack
// answering a segment of a flow it no longer has (data the server sent
// after the client's FIN or abort), so it mostly repeats a close already
// counted and is left out. The deltas are clamped at each step rather than
// taking opened − closed over all time, so an error does not live forever:
// surplus closes (retransmitted FINs, a FIN then an abort) are forgotten
// once the estimate reaches 0, and flows whose close the dispatcher never
// sees (reset by the server, a client that vanished, a flow another
// dispatcher took over) age out of the upper bound once they are older
// than the flow lifetime (default 15 minutes, the established-connection
// timeout of Linux IPVS and the stale timeout of IBM's Network
// Dispatcher). The cost of the bound is that a flow living longer than
// the lifetime stops being counted: set --flow-lifetime to the longest
// flows the site serves if their count matters more than forgetting lost
// ones. Retransmitted SYNs (a SYN flood, an overloaded server) raise the
// estimate, up to the bound. After a takeover, the flows the peer opened
// are not counted here (their closes only meet the clamp at 0). At a
// restart over pinned maps, the first
// sample takes opened − closed of the counters as they stand (the service's
// whole history) and lets it age out like flows opened then. UDP services
// report packets only. The clamps bound the error but do not remove a
// steady bias: if closes are over-counted by a few percent (many aborts
// after FIN), the estimate sinks towards 0; if closes go unseen (servers
// resetting idle flows), it rises towards the bound. It is for weighing
// sites against each other, not for accounting.
//
// # Imports
//
// Tern packages: config, dispatcher/datapath, dispatcher/maglev. The
// datapath for its types and the LB it drives; besides, the Prometheus
// client.
package control
