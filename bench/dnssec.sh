#!/usr/bin/env bash
# make bench-dnssec: the cost of online signing. The query mix of make
# bench (bench/gen.sh: 70% POOL names, 20% static, 10% NXDOMAIN), every
# query with DO, served by tern unsigned, tern signed (one ECDSA P-256
# CSK; signatures cached, so after warm-up the pool answers' few distinct
# RRsets are hits) and Knot DNS serving the same zone (the pools as static
# A/AAAA RRsets) with its online signing module, mod-onlinesign. Each
# server pinned to CPU 0, dnsperf on CPU 1; reports saturated QPS and the
# server's CPU time per query at a fixed rate, and tern's signature cache
# hits and misses. Loopback only; every run bounded. bench/run.sh may call
# it for its signed legs.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

DURATION=${DURATION:-10}
RATE=${RATE:-20000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PORT=${PORT:-5365}
OUT=${OUT:-bench/out}
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$OUT"

go build -o "$work/tern-bin" ./cmd/tern
bench/gen.sh "$work" "$PORT"

# The signed tern: the same files with a CSK and the API for the metrics.
cp -rL "$work/tern1" "$work/tern-signed"
key=$("$work/tern-bin" dnssec keygen -d "$work/tern-signed" gslb.example.test)
api_port=$((PORT + 1))
sed -i "s|  - file: zones/gslb.example.test.zone|  - file: zones/gslb.example.test.zone\n    dnssec: {keys: [$(basename "$key")]}|; s|  udp_sockets: 1|  udp_sockets: 1\n  api: \"127.0.0.1:$api_port\"|" "$work/tern-signed/tern.yaml"

# Knot: the pools as the static RRsets a weighted pool of two answers
# gives most often.
mkdir -p "$work/knot/db"
sed -e 's/^www .*POOL web$/www 30 IN A 192.0.2.10\nwww 30 IN A 192.0.2.11\nwww 30 IN AAAA 2001:db8::10\nwww 30 IN AAAA 2001:db8::11/' \
    -e 's/^api .*POOL api$/api 30 IN A 192.0.2.20\napi 30 IN A 192.0.2.21/' \
    "$work/tern/zones/gslb.example.test.zone" >"$work/knot/gslb.example.test.zone"
cat >"$work/knot/knot.conf" <<K
server:
    listen: 127.0.0.1@$PORT
    rundir: $work/knot
    background-workers: 1
    udp-workers: 1
    tcp-workers: 1
database:
    storage: $work/knot/db
log:
  - target: stderr
    any: warning
policy:
  - id: csk
    algorithm: ecdsap256sha256
    single-type-signing: on
mod-onlinesign:
  - id: signer
    policy: csk
zone:
  - domain: gslb.example.test
    file: $work/knot/gslb.example.test.zone
    storage: $work/knot
    journal-content: none
    module: mod-onlinesign/signer
K

clk=$(getconf CLK_TCK)
cputicks() { awk '{print $14+$15}' "/proc/$1/stat"; }
wait_up() {
  for _ in $(seq 100); do
    if dig +time=1 +tries=1 +dnssec -p "$PORT" @127.0.0.1 static.gslb.example.test A 2>/dev/null | grep -q 'status: NOERROR'; then return 0; fi
    sleep 0.1
  done
  echo "server did not come up" >&2; return 1
}

# measure NAME CMD...: as bench/run.sh, every query with DO (dnsperf -D).
measure() {
  local name=$1; shift
  taskset -c "$SERVER_CPU" "$@" >"$OUT/dnssec-$name.log" 2>&1 &
  pid=$!
  wait_up
  if [ "$name" != tern ] && ! dig +dnssec -p "$PORT" @127.0.0.1 www.gslb.example.test A | grep -q RRSIG; then
    echo "$name gives no RRSIG" >&2; return 1
  fi
  taskset -c "$CLIENT_CPU" dnsperf -D -s 127.0.0.1 -p "$PORT" -d "$work/queries.txt" -l 2 -c 8 -q 200 -t 1 >/dev/null 2>&1 || true
  taskset -c "$CLIENT_CPU" dnsperf -D -s 127.0.0.1 -p "$PORT" -d "$work/queries.txt" -l "$DURATION" -c 8 -q 200 -t 1 >"$OUT/dnssec-$name.sat.txt" 2>&1
  local qps t0 t1 done_q us
  qps=$(awk '/Queries per second/ {print $4}' "$OUT/dnssec-$name.sat.txt")
  t0=$(cputicks "$pid")
  taskset -c "$CLIENT_CPU" dnsperf -D -s 127.0.0.1 -p "$PORT" -d "$work/queries.txt" -l "$DURATION" -c 8 -t 1 -Q "$RATE" >"$OUT/dnssec-$name.fixed.txt" 2>&1
  t1=$(cputicks "$pid")
  done_q=$(awk '/Queries completed/ {print $3}' "$OUT/dnssec-$name.fixed.txt")
  us=$(awk -v t="$((t1 - t0))" -v hz="$clk" -v q="$done_q" 'BEGIN {printf "%.2f", t / hz * 1e6 / q}')
  local cache="-"
  if [ "$name" = tern-signed ]; then
    cache=$(curl -s "http://127.0.0.1:$api_port/metrics" | awk '/^tern_dnssec_signature_cache_hits_total/ {h=$2} /^tern_dnssec_signature_cache_misses_total/ {m=$2} END {printf "%.0f hits, %.0f misses (%.4f%% hit)", h, m, 100*h/(h+m)}')
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  echo "$name|$qps|$us|$cache"
}

{
  measure tern "$work/tern-bin" serve --config "$work/tern1/tern.yaml" --log-level warn
  measure tern-signed "$work/tern-bin" serve --config "$work/tern-signed/tern.yaml" --log-level warn
  measure knot-onlinesign knotd -c "$work/knot/knot.conf"
} >"$work/results"

{
  echo "machine: $(nproc) CPUs, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//'), kernel $(uname -r); $(date -u +%F)"
  echo "dnsperf -D (DO set): ${DURATION}s per leg, 8 clients; servers on CPU $SERVER_CPU, dnsperf on CPU $CLIENT_CPU; CPU/query at $RATE QPS"
  echo
  echo "| server | saturated QPS | CPU µs/query at $RATE QPS | signature cache |"
  echo "|---|---|---|---|"
  while IFS='|' read -r name q u c; do
    printf '| %s | %.0f | %s | %s |\n' "$name" "$q" "$u" "$c"
  done <"$work/results"
} | tee "$OUT/dnssec-summary.md"
