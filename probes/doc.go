// Package probes watches pool members: it runs each pool's check against
// every member, turns results into verdicts with rise/fall hysteresis,
// smooths load reports, applies the operator's admin state and passes
// every change to an Observer.
//
// # Checks
//
// A pool names one check (config.Check). Types:
//
//   - tcp: up when a connection is accepted (closed at once with a reset).
//   - http, https: up when the request (method, path, Host header) gets a
//     status in expect_status and, when given, the first 64 KiB of the body
//     contain expect_body and match expect_body_regexp. https verifies the
//     certificate against tls_server_name (default: host) unless
//     tls_skip_verify. Redirects are not followed and no proxy is used.
//   - dns: up when the query (query, qtype; over UDP, again over TCP when
//     truncated) gets expect_rcode and, when given, an answer record whose
//     data is expect_answer.
//   - exec: up when the command exits 0. It runs with TERN_POOL,
//     TERN_MEMBER, TERN_ADDRESS, TERN_PORT and TERN_TIMEOUT in its
//     environment, in a process group of its own that is killed at the
//     timeout. It runs only on a prober built with Options.AllowExec (a
//     node's own node.allow_exec_checks); elsewhere its members are not
//     probed (Verdict.Unprobed says why, tern_probe_not_allowed counts
//     them, the reason is logged once per Run) and keep their initial
//     state.
//   - load: an HTTP request like http's whose body is a load report,
//     {"load": 0.42, "capacity": 100} or a bare number; up when it answers
//     an expected status with a valid report. Reports are smoothed (EWMA,
//     weight load_smoothing) and a change is passed on only when the
//     smoothed value moves by more than load_threshold.
//
// A check that does not finish within its timeout fails (the timeout is
// the deadline of its connection and I/O). A result is up,
// down (the member answered, but not as expected) or error (no answer).
//
// # Where probes go
//
// Only where the configuration says: a member is probed at its probe:
// address when it has one, else at its address; on the probe: port when
// given, else the check's port. A host-name member (answered as a CNAME) is
// probed by that name, resolved by the system resolver at each probe, on the
// check's port; give it a probe: address to pin the probe to one address.
//
// # Verdicts
//
// Before its first result a member has its pool's initial state (up unless
// initial: down). Its first result decides its state directly; after that it
// takes rise consecutive successes to go up and fall consecutive failures to
// go down, so a member flapping faster than that keeps its state. The admin
// state (config admin:, or SetAdmin at run time) outranks the probes: up and
// down force the verdict (Verdict.Forced), drain keeps the probed state but
// sets Verdict.Drain (no new answers), auto lets the probes decide.
//
// # Scheduling
//
// Run owns every goroutine: one scheduler keeps the members in a heap by
// their next probe time and hands due probes to a bounded pool of workers;
// one notifier passes changes to the Observer in batches. The first round
// starts at once; after it each member is probed at a fixed point of its
// interval, given by a hash of its pool, address and check, so members are
// spread evenly over the interval, the same way on every node and restart.
// A probe still running at its next slot makes that slot skipped (counted in
// tern_probe_skipped_total), never a second probe of the same member. The
// workers are by default enough for every probe to take its whole timeout
// (the sum over members of timeout/interval, plus a quarter and 4), so slow
// members cannot delay the others. TestScale (TERN_SCALE=1) measures 2,000
// members probed every second: lateness of probe starts and CPU.
//
// # Wiring
//
//	p, err := probes.New(cfg, probes.Options{Observer: obs, Logger: log})
//	p.Inherit(previous)                    // on a reload: keep what was seen
//	reg.MustRegister(p.Collectors()...)
//	go p.Run(ctx)                          // owned by the node's errgroup
//	err = p.FirstRound(ctx, p.FirstRoundWait()) // ErrFirstRound: log, serve anyway
//	build the first snapshot from p.Pool(name) for every pool, then serve
//
// Observer.Observe gets every change after that (and the first round's);
// the simplest correct consumer rebuilds the snapshot from p.Pool on each
// call, as the table is never older than the batch. A member's
// selector.Status is {Up: v.Up, Drain: v.Drain, Load: v.Load}, and
// Pool(name) lists a pool's verdicts in member order, the order
// selector.Pool.WithStatus takes. SetAdmin is what `tern member
// drain|down|up|auto POOL ADDRESS` calls through the API; Verdict.State
// says "forced down (probes: up)" and the like for a status page.
//
// Until FirstRound returns, a pool answers with every member in its
// initial state (initial: up, the default, answers every member; initial:
// down answers none, so all_down applies), forced admin states aside.
//
// # Imports
//
// Tern packages: config, internal/mix (the hash that spreads probes over
// the interval).
package probes
