#!/usr/bin/env bash
# make bench: what a query costs tern on its core, beside gdnsd, Knot, a
# minimal miekg/dns server and a trivial UDP echo (the kernel's floor).
#
# Each server runs pinned to SERVER_CPU with one worker, dnsperf pinned to
# CLIENT_CPU. For each leg and rate the server core's busy time (user,
# system, irq, softirq from /proc/stat: the kernel's loopback delivery of
# the answers runs there) and the server process's utime+stime are taken
# over the queries dnsperf saw answered; the core's busy time is given
# twice: from the busy fields (sampled at each tick) and from the idle
# fields (measured; see cpu_idle). Rates: RATES (fixed, dnsperf -Q)
# and saturated. Servers alternate within a round; RUNS rounds; the table
# gives medians. A window in which processes other than the server and
# dnsperf used more than OTHER_MAX % of one CPU is disturbed: it is run
# again (up to RETRIES times) and, if still disturbed, kept and marked *.
#
# Legs (LEGS): udp (the weighted-pool mix: 70% pool names, 20% static,
# 10% NXDOMAIN), geo (a geo pool, ECS on every query), latency (tern's
# geo pool steered by measured RTT instead, ECS on every query), tcp (dnsperf -m tcp:
# 8 persistent connections, pipelined), two (two workers, nothing pinned,
# two cores). BENCH_QUICK=1: one round, short windows, no retries.
# TERN_ALT="name=/path/to/tern[,VAR=value...] ..." adds tern binaries (or
# environments) as further servers of the udp leg, alternated with the
# others in the same window: how bench/ab.sh compares old and new; in
# the geo leg each also runs as NAME-geo on tern-geo's configuration. A
# binary written @TAGS is this tree built with -tags TAGS:
# TERN_ALT="netpoll=@portableudp" adds the portable netpoller UDP loop
# beside the default raw one.
# Loopback only; every run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
  RUNS=${RUNS:-1} DURATION=${DURATION:-3} RETRIES=${RETRIES:-0}
fi
RUNS=${RUNS:-3}
DURATION=${DURATION:-5}       # seconds per window
RETRIES=${RETRIES:-1}         # re-runs of a disturbed window
OTHER_MAX=${OTHER_MAX:-5}     # % of one CPU others may use in a window
RATES=${RATES:-"5000 20000 50000"}
LEGS=${LEGS:-"udp geo latency tcp two"}
SERVERS=${SERVERS:-"tern gdnsd knot minimal echo"}
TERN_ALT=${TERN_ALT:-}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
PORT=${PORT:-5360}
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
work=$(mktemp -d)
pid=
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/tern-bin" ./cmd/tern
alts=
for spec in $TERN_ALT; do
  aname=${spec%%=*} arest=${spec#*=}; abin=${arest%%,*}
  if [ "${abin#@}" != "$abin" ]; then
    go build -tags "${abin#@}" -o "$work/tern-$aname" ./cmd/tern
    spec="$aname=$work/tern-$aname${arest#"$abin"}"
  fi
  alts="$alts $spec"
done
TERN_ALT=${alts# }
go build -o "$work/minimal-bin" ./bench/minimal
cc -O2 -Wall -pthread -o "$work/echo-bin" bench/echo/echo.c
bench/gen.sh "$work" "$PORT"
# ECS 2.2.3.0/24: option 8, family 1, source prefix 24, scope 0, three
# address bytes. MaxMind's test database holds 2.2.3.0/24 as one network
# in GB, so every server's geo map matches its GB entry (eu) with scope
# /24. (81.2.69.0/24, used before, is in no network of that database:
# tern and gdnsd answered their default and Knot its plain RRset of all
# six addresses, scope 0.)
ECS="-E 8:00011800020203"
clk=$(getconf CLK_TCK)
ncpu=$(nproc)
started=$(date +%s)

# cpu_busy CPU: busy ticks of one CPU (or "all"): user nice system irq
# softirq; idle, iowait and steal are not the server's.
cpu_busy() {
  local name=cpu; [ "$1" = all ] || name=cpu$1
  awk -v n="$name" '$1 == n {print $2 + $3 + $4 + $7 + $8}' /proc/stat
}
# cpu_idle CPU: idle, iowait and steal ticks of one CPU. With a tickless
# idle (NO_HZ) the kernel measures idle time at every idle entry and exit,
# while the busy fields are sampled at each tick (250 Hz here): at a fixed
# rate the server's short bursts can keep step with the tick and be
# counted too often or too seldom. Elapsed time minus this is the core's
# busy time measured, not sampled: the idle-based core column.
cpu_idle() { awk -v n="cpu$1" '$1 == n {print $5 + $6 + $9}' /proc/stat; }
proc_ticks() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# user_ticks PID: its utime alone, the server's own code (the rest of
# proc_ticks is the kernel's work on its system calls).
user_ticks() { awk '{sub(/^.*\) /, ""); print $12}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# others_ticks PID...: utime+stime of every process but these and their
# threads (a process's line covers its threads); kernel threads (children
# of kthreadd, pid 2) are left out: ksoftirqd does the servers' softirq work.
others_ticks() {
  local skip=" $* "
  for f in /proc/[0-9]*/stat; do
    p=${f#/proc/}; p=${p%/stat}
    case "$skip" in *" $p "*) continue ;; esac
    echo "$f"
  done | { xargs cat 2>/dev/null || true; } | awk '{sub(/^.*\) /, "")} $2 != 2 && $2 != 0 {t += $12 + $13} END {print t + 0}'
}
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

wait_up() { # PROTO
  local tcp=; [ "$1" = tcp ] && tcp=+tcp
  for _ in $(seq 100); do
    if dig $tcp +time=1 +tries=1 -p "$PORT" @127.0.0.1 static.gslb.example.test A 2>/dev/null | grep -q 'status: NOERROR'; then return 0; fi
    sleep 0.1
  done
  echo "server did not come up" >&2; return 1
}

# server_cmd NAME WORKERS: the command line of one server.
server_cmd() {
  local name=$1 w=$2
  case $name in
    tern) echo "$work/tern-bin serve --config $work/tern$w/tern.yaml --log-level warn" ;;
    tern-geo) echo "$work/tern-bin serve --config $work/tern-geo/tern.yaml --log-level warn" ;;
    tern-latency) echo "$work/tern-bin serve --config $work/tern-latency/tern.yaml --log-level warn" ;;
    gdnsd) echo "gdnsd -c $work/gdnsd$w start" ;;
    gdnsd-geo) echo "gdnsd -c $work/gdnsd-geo start" ;;
    knot) echo "knotd -c $work/knot$w/knot.conf" ;;
    knot-geo) echo "knotd -c $work/knot-geo/knot.conf" ;;
    minimal) echo "$work/minimal-bin -listen 127.0.0.1:$PORT -zone $work/minimal.zone -pools $work/minimal.pools -answers 2" ;;
    echo) echo "$work/echo-bin 127.0.0.1 $PORT $w" ;;
    *) # a TERN_ALT entry; NAME-geo is NAME on the geo leg's configuration
      local spec conf=tern$w
      case $name in *-geo) conf=tern-geo name=${name%-geo} ;; esac
      for spec in $TERN_ALT; do
        if [ "${spec%%=*}" = "$name" ]; then
          local rest=${spec#*=} bin envs
          bin=${rest%%,*}; envs=; [ "$rest" != "$bin" ] && envs=$(echo "${rest#*,}" | tr , ' ')
          echo "env $envs $bin serve --config $work/$conf/tern.yaml --log-level warn"
          return
        fi
      done
      echo "unknown server $name" >&2; return 1 ;;
  esac
}

# window LEG NAME RATE PIN DNSPERF-FLAGS...: one dnsperf run against the
# server $pid; prints one result line (see the header below).
window() {
  local leg=$1 name=$2 rate=$3 pin=$4; shift 4
  local dp=() cl=() q=()
  [ "$pin" = 1 ] && cl=(taskset -c "$CLIENT_CPU")
  [ "$rate" = sat ] && q=(-q 200) || q=(-q 100 -Q "$rate")
  local try=0 line
  while :; do
    local c0 a0 p0 o0 t0 c1 a1 p1 o1 t1 i0 i1 u0 u1
    # Others are counted before dnsperf starts and after it ends: neither
    # sum holds it. (A process that starts and ends inside the window is
    # missed; "all CPUs busy" shows it.)
    o0=$(others_ticks "$pid" $$ $BASHPID)
    c0=$(cpu_busy "$SERVER_CPU"); a0=$(cpu_busy all); p0=$(proc_ticks "$pid"); u0=$(user_ticks "$pid"); i0=$(cpu_idle "$SERVER_CPU"); t0=$(date +%s.%N)
    "${cl[@]}" dnsperf -s 127.0.0.1 -p "$PORT" -d "$work/queries.txt" -l "$DURATION" -c 8 -t 1 "${q[@]}" "$@" >"$work/dnsperf.txt" 2>&1 || true
    i1=$(cpu_idle "$SERVER_CPU"); t1=$(date +%s.%N); c1=$(cpu_busy "$SERVER_CPU"); a1=$(cpu_busy all); p1=$(proc_ticks "$pid"); u1=$(user_ticks "$pid")
    o1=$(others_ticks "$pid" $$ $BASHPID)
    local qps done_q lost
    qps=$(awk '/Queries per second/ {print $4}' "$work/dnsperf.txt")
    done_q=$(awk '/Queries completed/ {print $3}' "$work/dnsperf.txt")
    lost=$(awk '/Queries lost/ {print $3}' "$work/dnsperf.txt")
    line=$(awk -v leg="$leg" -v n="$name" -v r="$rate" -v qps="${qps:-0}" -v q="${done_q:-0}" -v lost="${lost:-0}" \
      -v core=$((c1 - c0)) -v idle=$((i1 - i0)) -v all=$((a1 - a0)) -v proc=$((p1 - p0)) -v user=$((u1 - u0)) -v oth=$((o1 - o0)) \
      -v el="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" -v hz="$clk" -v max="$OTHER_MAX" 'BEGIN {
        if (q == 0) q = 1
        oth_pct = oth / hz / el * 100
        dist = oth_pct > max ? "*" : "-"
        busy = el - idle / hz; if (busy < 0) busy = 0
        printf "%s %s %s %.0f %d %s %.2f %.2f %.1f %.1f %.1f %.2f %.2f %s\n", leg, n, r, qps, q, lost,
          core / hz * 1e6 / q, proc / hz * 1e6 / q, core / hz / el * 100, all / hz / el * 100, oth_pct, busy * 1e6 / q,
          user / hz * 1e6 / q, dist
      }')
    [ "${line##* }" = - ] || [ "$try" -ge "$RETRIES" ] && break
    try=$((try + 1))
    sleep 2
  done
  echo "$line"
}

# serve LEG NAME WORKERS PIN PROTO RATES DNSPERF-FLAGS...: start one
# server, warm it up, run every rate, record its RSS, stop it.
serve() {
  local leg=$1 name=$2 w=$3 pin=$4 proto=$5 rates=$6; shift 6
  local cmd sv=()
  cmd=$(server_cmd "$name" "$w")
  [ "$pin" = 1 ] && sv=(taskset -c "$SERVER_CPU")
  # shellcheck disable=SC2086
  "${sv[@]}" $cmd >>"$OUT/$name.log" 2>&1 &
  pid=$!
  if ! wait_up "$proto"; then
    echo "$name ($leg leg) did not come up: see $OUT/$name.log" >&2
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; pid=
    return 0
  fi
  # Knot sets its workers' CPU affinity itself: pin every thread again.
  [ "$pin" = 1 ] && taskset -a -p -c "$SERVER_CPU" "$pid" >/dev/null
  dnsperf -s 127.0.0.1 -p "$PORT" -d "$work/queries.txt" -l 1 -c 8 -q 100 -t 1 "$@" >/dev/null 2>&1 || true
  local r
  for r in $rates; do
    window "$leg" "$name" "$r" "$pin" "$@"
  done
  echo "rss $name $(rss_kib "$pid")" >>"$work/rss"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  sleep 0.5
}

has_leg() { case " $LEGS " in *" $1 "*) return 0 ;; esac; return 1; }

: >"$work/results"; : >"$work/rss"
for round in $(seq "$RUNS"); do
  echo "round $round/$RUNS ($(($(date +%s) - started)) s)" >&2
  if has_leg udp; then
    alts=; for spec in $TERN_ALT; do alts="$alts ${spec%%=*}"; done
    for s in $SERVERS $alts; do serve udp "$s" 1 1 udp "$RATES sat" >>"$work/results"; done
  fi
  if has_leg geo; then
    alts=; for spec in $TERN_ALT; do alts="$alts ${spec%%=*}-geo"; done
    for s in tern-geo gdnsd-geo knot-geo $alts; do serve geo "$s" 1 1 udp "20000 sat" $ECS >>"$work/results"; done
  fi
  if has_leg latency; then
    serve latency tern-latency 1 1 udp "20000 sat" $ECS >>"$work/results"
  fi
  if has_leg tcp; then
    for s in tern knot; do serve tcp "$s" 1 1 tcp "20000 sat" -m tcp >>"$work/results"; done
  fi
  if has_leg two; then
    for s in tern gdnsd knot echo; do serve two "$s" 2 0 udp "20000 sat" -T 2 >>"$work/results"; done
  fi
done
cp "$work/results" "$OUT/raw.txt"
elapsed=$(($(date +%s) - started))

# Medians per leg, server and rate. Columns of a result line:
# leg server rate qps completed lost core_us proc_us core_pct all_pct others_pct core_idle_us user_us disturbed
{
  echo "machine: $ncpu CPUs, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//'), kernel $(uname -r); $(date -u '+%F %H:%M') UTC; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "windows of ${DURATION}s, medians of $RUNS rounds; servers on CPU $SERVER_CPU, dnsperf 2.10 on CPU $CLIENT_CPU (leg two: nothing pinned, two workers); full run took ${elapsed}s"
  echo "core µs/q: busy time of the server's CPU (user+system+irq+softirq, /proc/stat, sampled at each tick) per answered query; core idle µs/q: the same CPU's elapsed time minus its idle, iowait and steal (measured at each idle entry and exit: not sampled); proc µs/q: the server's utime+stime per query, user µs/q its utime alone (its own code; both sampled at each tick);"
  echo "core busy: that CPU's busy share in the window; QPS/core: saturated QPS over the core's busy share. * = a window where other processes used more than ${OTHER_MAX}% of a CPU (others %: the worst window)"
  echo
  awk '
    function median(s,   a, n, i, j, t) {
      n = split(s, a, " ")
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    {
      k = $1 SUBSEP $2 SUBSEP $3
      if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
      qps[k] = qps[k] " " $4; core[k] = core[k] " " $7; proc[k] = proc[k] " " $8; cidle[k] = cidle[k] " " $12; user[k] = user[k] " " $13
      busy[k] = busy[k] " " $9; all[k] = all[k] " " $10; lost[k] = lost[k] " " $6
      if ($11 > oth[k]) oth[k] = $11
      if ($14 == "*") dist[k]++
      runs[k]++
    }
    END {
      print "| leg | server | rate | QPS | core µs/q | core idle µs/q | proc µs/q | user µs/q | core busy | all CPUs busy | QPS/core | lost | others % | runs |"
      print "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
      for (i = 1; i <= nk; i++) {
        k = order[i]; split(k, f, SUBSEP)
        b = median(busy[k]); q = median(qps[k])
        pc = (f[3] == "sat" && b > 0) ? sprintf("%.0f", q / (b / 100)) : "-"
        if (f[1] == "two" && f[3] == "sat") pc = sprintf("%.0f", q / (median(all[k]) / 100) )
        printf "| %s | %s | %s | %.0f | %.2f | %.2f | %.2f | %.2f | %.0f%% | %.0f%% | %s | %s | %.1f | %d%s |\n", f[1], f[2], f[3], q,
          median(core[k]), median(cidle[k]), median(proc[k]), median(user[k]), b, median(all[k]), pc, median(lost[k]), oth[k], runs[k], dist[k] ? " (" dist[k] "*)" : ""
      }
    }' "$work/results"
  echo
  echo "| server | RSS (udp leg, small zone) |"
  echo "|---|---|"
  awk '$2 !~ /-(geo|latency)$/ {k = $2; if (!(k in v) || $3 > v[k]) v[k] = $3; if (!(k in o)) ord[++n] = k; o[k] = 1}
    END {for (i = 1; i <= n; i++) printf "| %s | %.1f MiB |\n", ord[i], v[ord[i]] / 1024}' "$work/rss"
} | tee "$OUT/summary.md"
