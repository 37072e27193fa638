#!/usr/bin/env bash
# bench/perf.sh: where a query's cost goes on the server's core. One
# server pinned to SERVER_CPU with one worker (bench/gen.sh's
# configuration, as make bench runs it), dnsperf pinned to CLIENT_CPU at a
# fixed RATE for DURATION seconds, and meanwhile `perf record` of
# SERVER_CPU: every process and the kernel's softirq work on that core,
# sampled at 999 Hz with call graphs. It prints the top symbols (self
# time) by command, DSO and symbol, the share of each command, and for
# tern the top of a Go CPU profile of the same run (tern serve
# --cpuprofile).
#
# SERVER: tern (default), gdnsd or knot. LEG: udp (default: the weighted
# pool mix) or geo (the geo pool with ECS on every query, run.sh's geo
# leg: tern-geo, gdnsd-geo, knot-geo and the same ECS option) or latency
# (tern-latency: the geo leg's pool steered by RTT, the same ECS). TAGS: build tags for tern (e.g.
# TAGS=portableudp for the netpoller loop). TERN_BIN: a tern binary to use
# instead of building this tree. SCHEDTRACE=1: tern runs with
# GODEBUG=schedtrace=1000 and its last scheduler lines are printed.
# Figures from a shared machine are indicative only: the load average is
# printed with them. Loopback only; every run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

SERVER=${SERVER:-tern}
RATE=${RATE:-20000}
DURATION=${DURATION:-10}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
PORT=${PORT:-5362}
TAGS=${TAGS:-}
LEG=${LEG:-udp}
OUT=${OUT:-bench/out/perf}
TOP=${TOP:-30}
mkdir -p "$OUT"
work=$(mktemp -d)
pid=
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi; rm -rf "$work"; }
trap cleanup EXIT

bench/gen.sh "$work" "$PORT"
bin=${TERN_BIN:-}
if [ "$SERVER" = tern ] && [ -z "$bin" ]; then
  bin=$work/tern-bin
  go build -tags "$TAGS" -o "$bin" ./cmd/tern
fi
# The leg picks each server's configuration directory and dnsperf's
# extra flags (the ECS option is run.sh's).
ecs=(-E "$(sed -n 's/^ECS="-E \(.*\)"$/\1/p' bench/run.sh)")
case $LEG in
  udp) cfg=1 dpflags=() ;;
  geo) cfg=-geo dpflags=("${ecs[@]}") ;;
  latency) [ "$SERVER" = tern ] || { echo "LEG=latency is tern's only" >&2; exit 2; }
    cfg=-latency dpflags=("${ecs[@]}") ;;
  *) echo "LEG: udp, geo or latency" >&2; exit 2 ;;
esac
envs=()
case $SERVER in
  tern)
    [ "${SCHEDTRACE:-0}" = 1 ] && envs=(GODEBUG=schedtrace=1000)
    cmd=("$bin" serve --config "$work/tern$cfg/tern.yaml" --log-level warn)
    # An older binary (TERN_BIN) may not have the flag.
    rm -f "$OUT/tern.pprof"
    "$bin" serve --help 2>&1 | grep -q -- --cpuprofile && cmd+=(--cpuprofile "$OUT/tern.pprof") ;;
  gdnsd) cmd=(gdnsd -c "$work/gdnsd$cfg" start) ;;
  knot) cmd=(knotd -c "$work/knot$cfg/knot.conf") ;;
  *) echo "SERVER: tern, gdnsd or knot" >&2; exit 2 ;;
esac

env "${envs[@]}" taskset -c "$SERVER_CPU" "${cmd[@]}" >"$OUT/$SERVER.log" 2>&1 &
pid=$!
spid=$pid
for _ in $(seq 100); do
  dig +time=1 +tries=1 -p "$PORT" @127.0.0.1 static.gslb.example.test A 2>/dev/null | grep -q 'status: NOERROR' && break
  sleep 0.1
done
taskset -a -p -c "$SERVER_CPU" "$pid" >/dev/null
load=$(cut -d' ' -f1-3 /proc/loadavg)

taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$PORT" -d "$work/queries.txt" -l "$DURATION" -c 8 -t 1 -q 100 -Q "$RATE" "${dpflags[@]}" >"$OUT/dnsperf.txt" 2>&1 &
dp=$!
sleep 1 # past dnsperf's start
perf record -q -C "$SERVER_CPU" -F 999 -g -o "$OUT/perf.data" -- sleep $((DURATION - 2)) 2>"$OUT/perf-record.log"
wait "$dp" || true
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=

echo "$SERVER ($LEG leg) at $RATE QPS, CPU $SERVER_CPU recorded for $((DURATION - 2)) s; load average before: $load (indicative on a shared machine)"
awk '/Queries completed|Queries lost|Queries per second/' "$OUT/dnsperf.txt"
echo
echo "Share of CPU $SERVER_CPU's samples by command (swapper: idle):"
perf report -i "$OUT/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -10 || true
echo
echo "Top 10 symbols of all of CPU $SERVER_CPU's samples:"
perf report -i "$OUT/perf.data" --no-children --sort comm,dso,sym --stdio -g none --percent-limit 0.3 2>/dev/null | grep -v '^#' | grep -v '^$' | head -10 || true
# The server's own samples (the softirq work of its loopback sends runs in
# its context and is counted here): the share of each kind of code, then
# its top symbols. They are chosen by process id: a server's threads may
# have names of their own (gdnsd's UDP thread is gdnsd-io-udp).
comm=$SERVER
echo
echo "$comm's samples by kind (share of its own samples):"
perf report -i "$OUT/perf.data" --pid "$spid" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' |
  awk '{p = $1; sub(/%/, "", p); k = "other user code"
    if ($0 ~ /\[k\]/) k = "kernel (system calls, UDP, loopback softirq)"
    else if ($0 ~ / runtime\.|internal\/runtime|syscall\./) k = "Go runtime and syscall wrappers"
    else if ($0 ~ /ternlb\/tern|miekg/) k = "DNS code (parse, look up, select, pack)"
    else if ($0 ~ /vdso/) k = "vDSO (clock_gettime)"
    t[k] += p; all += p}
    END {for (k in t) printf "  %5.1f%%  %s\n", t[k] / all * 100, k}' | sort -rn
echo
echo "Top $TOP symbols of $comm alone:"
perf report -i "$OUT/perf.data" --pid "$spid" --no-children --sort dso,sym --stdio -g none --percent-limit 0.5 2>/dev/null | grep -v '^#' | grep -v '^$' | head -"$TOP" || true
if [ "$SERVER" = tern ] && [ -s "$OUT/tern.pprof" ]; then
  echo
  echo "Go CPU profile of the same run (go tool pprof -top):"
  go tool pprof -top -nodecount=20 "$bin" "$OUT/tern.pprof" 2>/dev/null | sed -n '1,28p' || true
fi
if [ "${SCHEDTRACE:-0}" = 1 ]; then
  echo
  echo "Scheduler trace (last lines):"
  grep SCHED "$OUT/$SERVER.log" | tail -5
fi
