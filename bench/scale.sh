#!/usr/bin/env bash
# make bench-scale: how Tern's cost grows with zone size, against Knot DNS.
# For each size (records) it writes one zone (60% A, 20% AAAA, 10% TXT, 10%
# MX), starts each server on it in turn, and reports the time from start to
# the first answer for the zone's last record, and the server's peak RSS
# (VmHWM) once it answers. Tern runs standalone ("tern") and, with
# MODES containing cluster (the default: MODES="standalone cluster"), as a
# bootstrapped single-node cluster ("tern-cluster": the zone goes into the
# Raft log in content-addressed chunks, is read back from the node's data
# directory and compiled). Servers listen on loopback only; every wait is
# bounded. SIZES, MODES, PORT and OUT may be set in the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

SIZES=${SIZES:-"10000 100000 1000000"}
MODES=${MODES:-"standalone cluster"}
PORT=${PORT:-5370}
OUT=${OUT:-bench/out}
LIMIT=${LIMIT:-180} # seconds a server may take to answer the last record
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$OUT"

go build -o "$work/tern-bin" ./cmd/tern
origin=scale.example.test

# gen N FILE: the zone of N records; its last record is "last".
gen() {
  awk -v n="$1" -v o="$origin" 'BEGIN {
    printf "$ORIGIN %s.\n$TTL 300\n", o
    print "@ IN SOA ns1 hostmaster 1 3600 600 604800 60"
    print "@ IN NS ns1"
    print "ns1 IN A 127.0.0.1"
    for (i = 0; i < n - 4; i++) {
      r = i % 10
      if (r < 6)      printf "h%d IN A 10.%d.%d.%d\n", i, int(i / 65536) % 256, int(i / 256) % 256, i % 256
      else if (r < 8) printf "h%d IN AAAA 2001:db8::%x:%x\n", i, int(i / 65536), i % 65536
      else if (r < 9) printf "h%d IN TXT \"record %d of the scale zone\"\n", i, i
      else            printf "h%d IN MX 10 mail%d\n", i, i % 1000
    }
    print "last IN A 192.0.2.99"
  }' >"$2"
}

# serve NAME N CMD...: start CMD, wait for last.<origin> to answer, print
# "NAME N seconds peak-RSS-MiB".
serve() {
  local name=$1 n=$2; shift 2
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >"$OUT/scale-$name-$n.log" 2>&1 &
  pid=$!
  local deadline=$(( $(date +%s) + LIMIT ))
  until dig +time=1 +tries=1 -p "$PORT" @127.0.0.1 "last.$origin" A 2>/dev/null | grep -q '^last\.'; do
    if ! kill -0 "$pid" 2>/dev/null; then echo "$name exited; see $OUT/scale-$name-$n.log" >&2; pid=; return 1; fi
    if [ "$(date +%s)" -gt "$deadline" ]; then echo "$name did not answer within ${LIMIT}s" >&2; return 1; fi
    sleep 0.05
  done
  t1=$(date +%s.%N)
  local hwm
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  awk -v n="$name" -v c="$n" -v a="$t0" -v b="$t1" -v h="$hwm" 'BEGIN {printf "%s %d %.2f %.0f\n", n, c, b - a, h / 1024}'
}

knot_conf() { # DIR ZONEFILE
  mkdir -p "$1/db"
  cat >"$1/knot.conf" <<K
server:
    listen: 127.0.0.1@$PORT
    rundir: $1
    background-workers: 1
    udp-workers: 1
    tcp-workers: 1
database:
    storage: $1/db
log:
  - target: stderr
    any: warning
zone:
  - domain: $origin
    file: $2
    storage: $1
    zonefile-load: whole
    journal-content: none
K
}

tern_conf() { # DIR ZONEFILE
  cat >"$1/tern.yaml" <<Y
node:
  name: scale
  dns: ["127.0.0.1:$PORT"]
  udp_sockets: 1
zones:
  - file: $2
Y
}

tern_cluster_conf() { # DIR ZONEFILE: one node bootstrapping its cluster
  cp "$2" "$1/zone"
  cat >"$1/tern.yaml" <<Y
node:
  name: scale
  dns: ["127.0.0.1:$PORT"]
  udp_sockets: 1
  api: "127.0.0.1:$((PORT + 1))"
  raft: "127.0.0.1:$((PORT + 2))"
  data: data
  bootstrap: true
zones:
  - file: zone
Y
}

: >"$work/results"
for n in $SIZES; do
  d="$work/$n"
  mkdir -p "$d/knot" "$d/tern" "$d/tern-cluster"
  gen "$n" "$d/zone"
  size=$(du -m "$d/zone" | cut -f1)
  echo "size $n $size" >>"$work/results"
  knot_conf "$d/knot" "$d/zone"
  tern_conf "$d/tern" "$d/zone"
  serve knot "$n" knotd -c "$d/knot/knot.conf" >>"$work/results"
  case " $MODES " in *" standalone "*)
    serve tern "$n" "$work/tern-bin" serve --config "$d/tern/tern.yaml" --log-level warn >>"$work/results" ;;
  esac
  case " $MODES " in *" cluster "*)
    tern_cluster_conf "$d/tern-cluster" "$d/zone"
    serve tern-cluster "$n" "$work/tern-bin" serve --config "$d/tern-cluster/tern.yaml" --log-level warn >>"$work/results" ;;
  esac
  rm -rf "$d"
done

{
  echo "machine: $(nproc) CPUs, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//'), kernel $(uname -r); $(date -u +%F); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "| records | zone file | server | time to answer the last record | vs Knot | peak RSS | vs Knot |"
  echo "|---|---|---|---|---|---|---|"
  for n in $SIZES; do
    mb=$(awk -v n="$n" '$1 == "size" && $2 == n {print $3}' "$work/results")
    read -r _ _ kt kr < <(awk -v n="$n" '$1 == "knot" && $2 == n' "$work/results")
    awk -v n="$n" '$1 != "size" && $2 == n' "$work/results" | while read -r name _ t r; do
      awk -v n="$n" -v mb="$mb" -v s="$name" -v t="$t" -v r="$r" -v kt="$kt" -v kr="$kr" \
        'BEGIN {printf "| %d | %s MB | %s | %.2f s | %.2fx | %d MiB | %.2fx |\n", n, mb, s, t, t/kt, r, r/kr}'
    done
  done
} | tee "$OUT/scale.md"
