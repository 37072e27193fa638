#!/bin/sh
# Rebuilds the dispatcher's BPF objects and their Go bindings (bpf2go) with
# Debian's clang and libbpf headers, installing them when missing.
# Run from anywhere; the lead's `make generate` calls it.
set -eu
cd "$(dirname "$0")/../.."
need=""
command -v clang >/dev/null 2>&1 || need="$need clang"
command -v llvm-strip >/dev/null 2>&1 || need="$need llvm"
[ -f /usr/include/bpf/bpf_helpers.h ] || need="$need libbpf-dev"
if [ -n "$need" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "generate.sh: missing$need; install them (apt-get install -y$need) or run as root" >&2
		exit 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang llvm libbpf-dev
fi
go generate ./dispatcher/datapath/
