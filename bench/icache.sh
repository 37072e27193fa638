#!/usr/bin/env bash
# bench/icache.sh: what one warm query costs the handler in instructions
# and first-level cache misses, counted, not timed: cachegrind (Debian's
# valgrind) runs a handler benchmark at 2,000 and at 22,000 iterations and
# the difference over 20,000 is one query's, free of start-up. Caches are
# simulated with this machine's geometry (AMD EPYC: 32 KiB 8-way
# instruction and data caches, 64-byte lines; a 2 MiB last level).
#
# BENCH: the benchmark (default the geo query with the server's counters
# on, as it runs: BenchmarkHandlerGeo/gb-counted; BenchmarkHandlerGeo/gb
# is the handler alone).
# I1=, D1=: another geometry, e.g. I1=65536,8,64 (is a miss a lack of
# room?). TOP: how many functions to list (by instructions).
#
# COLD=1: what a query touches when it finds the caches cold, as at a low
# rate: BenchmarkHandlerCold/geo-gb (it reads 4 MiB, twice the simulated
# last level, before each query) at 200 and 3,200 iterations; every line
# the query touches then misses the last level once, so its misses per
# query are the code lines (ILmr) and data lines read (DLmr) and written
# (DLmw) it touches. The walk and the benchmark's own clock reads are
# left out. Which code lines a function spans moves with the layout
# (a few lines either way for functions no change touched), the data
# lines do not.
#
# It prints the totals over the query path's code (tern's packages and
# the runtime's memory, map and hash helpers they call; the test
# harness and the scheduler are left out) and the top functions. The
# figures depend on where the linker put the code (a conflict in one
# cache set moves with any change), so compare builds, not single
# functions across builds.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
COLD=${COLD:-0}
if [ "$COLD" = 1 ]; then
  BENCH=${BENCH:-'BenchmarkHandlerCold/geo-gb$'} N1=200 N2=3200
else
  BENCH=${BENCH:-'BenchmarkHandlerGeo/gb-counted$'} N1=2000 N2=22000
fi
I1=${I1:-32768,8,64} D1=${D1:-32768,8,64} LL=${LL:-2097152,16,64}
TOP=${TOP:-20}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go test -c -o "$work/dns.test" ./dnsserver
for n in $N1 $N2; do
  (cd dnsserver && valgrind --tool=cachegrind --I1="$I1" --D1="$D1" --LL="$LL" \
    --cachegrind-out-file="$work/cg.$n" "$work/dns.test" -test.run '^$' \
    -test.bench "$BENCH" -test.benchtime "${n}x" >/dev/null 2>"$work/vg.$n.log") ||
    { cat "$work/vg.$n.log" >&2; exit 1; }
done
echo "$BENCH, per query (cachegrind, I1 $I1, D1 $D1, LL $LL; $N2 - $N1 iterations):"
awk -v top="$TOP" -v n="$((N2 - N1))" -v cold="$COLD" '
  FNR == 1 { f++ }
  /^events:/ { for (i = 2; i <= NF; i++) ev[i - 1] = $i; nev = NF - 1; next }
  /^fn=/ { fn = substr($0, 4); next }
  /^[0-9]/ { for (i = 2; i <= NF; i++) c[f, fn, i - 1] += $i; seen[fn] = 1 }
  END {
    for (e = 1; e <= nev; e++) col[ev[e]] = e
    hot = "ternlb|^runtime\\.(mem|map|aeshash|strhash|growslice|typedmem)|^internal/runtime/maps|^hash/maphash|^net/netip|^encoding/binary|^(cmp|memeq|indexbyte|aeshash)body|^time\\.|vdso"
    for (fn in seen) {
      if (fn !~ hot || fn ~ /Benchmark|benchHandle|testing\./) continue
      if (cold && fn ~ /^time\.|vdso/) continue # the benchmark times each query; the handler does not
      for (e = 1; e <= nev; e++) { d[fn, e] = (c[2, fn, e] - c[1, fn, e]) / n; tot[e] += d[fn, e] }
      ir[fn] = cold ? d[fn, col["ILmr"]] + d[fn, col["DLmr"]] + d[fn, col["DLmw"]] : d[fn, col["Ir"]]
    }
    # The columns to show: lines touched cold, or instructions and
    # first-level misses warm.
    if (cold) {
      nc = split("ILmr DLmr DLmw", cols, " "); split("code read written", heads, " ")
      printf "  code lines %.1f, data lines read %.1f, written %.1f\n", tot[col["ILmr"]], tot[col["DLmr"]], tot[col["DLmw"]]
    } else {
      nc = split("Ir I1mr D1mr D1mw", cols, " "); split("Ir I1mr D1mr D1mw", heads, " ")
      printf "  instructions %.0f, I1 misses %.1f, D1 read misses %.1f, D1 write misses %.1f\n", tot[col["Ir"]], tot[col["I1mr"]], tot[col["D1mr"]], tot[col["D1mw"]]
    }
    for (j = 1; j <= nc; j++) printf "%9s ", heads[j]
    print " function"
    for (k = 0; k < top; k++) {
      best = ""; bv = 0.5
      for (fn in ir) if (ir[fn] > bv) { best = fn; bv = ir[fn] }
      if (best == "") break
      for (j = 1; j <= nc; j++) printf "%9.1f ", d[best, col[cols[j]]]
      print " " best
      delete ir[best]
    }
  }' "$work/cg.$N1" "$work/cg.$N2"
