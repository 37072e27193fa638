#!/usr/bin/env bash
# make bench: serve the same zone three ways -- tern, gdnsd (DYNA weighted)
# and a minimal miekg/dns server -- each pinned to CPU 0 with dnsperf on CPU
# 1, and report saturated QPS and the server's own CPU time per query at a
# fixed rate, with ratios against the minimal server. Query mix: 70% POOL
# names, 20% static names, 10% NXDOMAIN. Loopback only; every run bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

DURATION=${DURATION:-10}     # seconds per dnsperf run
RATE=${RATE:-20000}          # fixed query rate for the CPU-per-query figure
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PORT=${PORT:-5360}
OUT=${OUT:-bench/out}
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$OUT"

go build -o "$work/tern-bin" ./cmd/tern
go build -o "$work/minimal-bin" ./bench/minimal
bench/gen.sh "$work" "$PORT"

clk=$(getconf CLK_TCK)
cputicks() { awk '{print $14+$15}' "/proc/$1/stat"; }

wait_up() {
  for _ in $(seq 100); do
    if dig +time=1 +tries=1 -p "$PORT" @127.0.0.1 static.gslb.example.test A 2>/dev/null | grep -q 'status: NOERROR'; then return 0; fi
    sleep 0.1
  done
  echo "server did not come up" >&2; return 1
}

# measure NAME CMD... : start the server pinned, run both dnsperf legs.
# EXTRA holds extra dnsperf flags for this leg (the ECS option).
measure() {
  local name=$1; shift
  taskset -c "$SERVER_CPU" "$@" >"$OUT/$name.log" 2>&1 &
  pid=$!
  wait_up
  # warm up, then saturate
  taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$PORT" -d "$work/queries.txt" -l 2 -c 8 -q 200 -t 1 ${EXTRA:-} >/dev/null 2>&1 || true
  taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$PORT" -d "$work/queries.txt" -l "$DURATION" -c 8 -q 200 -t 1 ${EXTRA:-} >"$OUT/$name.sat.txt" 2>&1
  local qps lost
  qps=$(awk '/Queries per second/ {print $4}' "$OUT/$name.sat.txt")
  lost=$(awk '/Queries lost/ {print $3}' "$OUT/$name.sat.txt")
  # fixed rate: server CPU time over the queries it answered
  local t0 t1 done_q
  t0=$(cputicks "$pid")
  taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$PORT" -d "$work/queries.txt" -l "$DURATION" -c 8 -t 1 -Q "$RATE" ${EXTRA:-} >"$OUT/$name.fixed.txt" 2>&1
  t1=$(cputicks "$pid")
  done_q=$(awk '/Queries completed/ {print $3}' "$OUT/$name.fixed.txt")
  local us
  us=$(awk -v t="$((t1 - t0))" -v hz="$clk" -v q="$done_q" 'BEGIN {printf "%.2f", t / hz * 1e6 / q}')
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  echo "$name $qps $us $lost"
}

{
  measure tern "$work/tern-bin" serve --config "$work/tern/tern.yaml" --log-level warn
  measure gdnsd gdnsd -c "$work/gdnsd" start
  # ECS 81.2.69.0/24 (GB in MaxMind's test database): option 8, family 1,
  # source prefix 24, scope 0, three address bytes.
  if [ -f "$(pwd)/../shared/testdata/geoip/GeoIP2-City-Test.mmdb" ]; then
    EXTRA="-E 8:00011800510245" measure tern-geo-ecs "$work/tern-bin" serve --config "$work/tern-geo/tern.yaml" --log-level warn
  fi
  measure minimal "$work/minimal-bin" -listen "127.0.0.1:$PORT" -zone "$work/minimal.zone" -pools "$work/minimal.pools" -answers 2
} >"$work/results"

{
  echo "machine: $(nproc) CPUs, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//'), kernel $(uname -r); $(date -u +%F)"
  echo "dnsperf: ${DURATION}s per leg, 8 clients; servers on CPU $SERVER_CPU, dnsperf on CPU $CLIENT_CPU; CPU/query measured at $RATE QPS"
  echo
  echo "(tern-geo-ecs: pool web by geo map on MaxMind's GeoIP2-City-Test database, every query with ECS 81.2.69.0/24)"
  echo
  echo "| server | saturated QPS | QPS vs minimal | CPU µs/query at $RATE QPS | CPU vs minimal | queries lost (saturated) |"
  echo "|---|---|---|---|---|---|"
  read -r _ mq mu _ < <(grep '^minimal ' "$work/results")
  while read -r name q u lost; do
    awk -v n="$name" -v q="$q" -v u="$u" -v mq="$mq" -v mu="$mu" -v l="$lost" \
      'BEGIN {printf "| %s | %.0f | %.2f | %s | %.2f | %s |\n", n, q, q/mq, u, u/mu, l}'
  done <"$work/results"
} | tee "$OUT/summary.md"
