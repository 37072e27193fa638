#!/usr/bin/env bash
# fuzz.sh [FUZZTIME]: runs every native fuzz target in the module for a
# bounded time each (default 30s). Targets that need root (the XDP
# programs) skip themselves without it.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-30s}
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "== $pkg $target ($fuzztime)"
    go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime"
  done
done
