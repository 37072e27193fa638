#!/usr/bin/env bash
# debs.sh CMD:PACKAGE... installs each Debian PACKAGE whose command CMD is
# missing, so make targets work on a fresh machine. Needs root for apt-get;
# without it, it says what to install and fails.
set -euo pipefail
missing=()
for pair in "$@"; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "debs.sh: missing Debian packages: ${missing[*]} (run as root or install them)" >&2
  exit 1
fi
echo "installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
