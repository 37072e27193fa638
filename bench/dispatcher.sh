#!/usr/bin/env bash
# make bench-dispatcher: 64-byte UDP through client -> dispatcher -> server
# network namespaces on one bridge, three legs of the same traffic: direct
# (no dispatcher), plain kernel IP forwarding in the dispatcher namespace,
# and Tern's XDP program there. Prints CPU per packet and packets per second
# per leg (median of interleaved rounds) and the ratios xdp/kernel.
# Needs root and iproute2; traffic stays inside the namespaces it creates;
# bounded: ROUNDS x 3 legs x DURATION (default 3 x 3 x 3s).
#
#   DURATION=3s ROUNDS=3 CPU=0 NATIVE=0 DISP_CPU=-1 bench/dispatcher.sh
#
# DISP_CPU=N steers the dispatcher's processing to CPU N and also reports
# that CPU's softirq time per packet (clean only on an idle machine).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

DURATION=${DURATION:-3s}
ROUNDS=${ROUNDS:-3}
CPU=${CPU:-0}
NATIVE=${NATIVE:-0}
DISP_CPU=${DISP_CPU:--1}

if [ "$(id -u)" -ne 0 ]; then
	echo "bench-dispatcher: needs root (network namespaces and XDP)" >&2
	exit 1
fi
command -v ip >/dev/null || { echo "bench-dispatcher: needs iproute2 (ip)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/dispbench" ./bench/dispbench
native=()
[ "$NATIVE" = 1 ] && native=(-native)
echo "# $(date -u +%FT%TZ) $(uname -r) $(nproc) CPUs; load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$work/dispbench" -duration "$DURATION" -rounds "$ROUNDS" -cpu "$CPU" -disp-cpu "$DISP_CPU" "${native[@]}"
