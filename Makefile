# Tern's build. Every target installs what it needs (Debian packages via
# apt-get, Go modules via the module proxy); Go itself is /usr/local/go.
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN     := bin/tern

.PHONY: all build run man test vet fuzz bench bench-go bench-probes bench-dispatcher bench-scale bench-dnssec generate clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/tern

# Serve the embedded example configuration on 127.0.0.1:5354.
run: build
	./$(BIN) serve --dev

# The generated files the package installs: docs/tern.1 and the bash, zsh
# and fish completions in contrib/completion/ (a test keeps them in sync).
man:
	$(GO) test -run '^TestGeneratedFilesInSync$$' -count=1 ./cmd/tern/ -update

# Every test. Tests that need root (XDP, network namespaces) skip without it;
# CI runs as root, so there they run. The tests of a 1,000,000-record zone
# skip themselves under -race (ten times slower there) and run after,
# without it (about 2 minutes).
test:
	scripts/debs.sh ip:iproute2 ethtool:ethtool chromium:chromium knotd:knot dig:bind9-dnsutils kdig:knot-dnsutils dnsviz:dnsviz delv:bind9-dnsutils unbound:unbound ldns-verify-zone:ldnsutils promtool:prometheus zsh:zsh fish:fish groff:groff
	$(GO) vet ./...
	$(GO) test -race -timeout 20m ./...
	$(GO) test -run '^TestBigZone' -count=1 -timeout 20m ./node/

# Every native fuzz target for a bounded time each (FUZZTIME per target).
FUZZTIME ?= 30s
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

# Whole-server figures (dnsperf against tern, gdnsd, Knot, a minimal miekg/dns
# server and a UDP echo; BENCH_QUICK=1 for one short round), the signed
# legs of bench/dnssec.sh (tern unsigned, tern signed, Knot mod-onlinesign)
# and the testing.B benchmarks; see BENCHMARKS.md.
bench: build bench-go bench-probes
	scripts/debs.sh dnsperf:dnsperf gdnsd:gdnsd knotd:knot dig:bind9-dnsutils cc:gcc
	dpkg -s knot-module-geoip >/dev/null 2>&1 || scripts/debs.sh knot-module-geoip:knot-module-geoip
	bench/run.sh
	scripts/debs.sh curl:curl
	bench/dnssec.sh

# 2,000 members probed every second for 10 s: lateness and prober CPU.
bench-probes:
	TERN_SCALE=1 $(GO) test -run '^TestScale$$' -v -count=1 ./probes/
	TERN_SCALE=1 TERN_SCALE_CHECK=http $(GO) test -run '^TestScale$$' -v -count=1 ./probes/

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./selector ./zones ./dnsserver ./dispatcher/maglev

# Zone size against cost: time to serve and peak RSS for 10k, 100k and 1M
# records, tern standalone and as a cluster node beside Knot DNS
# (SIZES="...", MODES="standalone cluster" to choose).
bench-scale:
	scripts/debs.sh knotd:knot dig:bind9-dnsutils
	bench/scale.sh

# Online signing: every query with DO against tern unsigned, tern signed
# and Knot DNS with mod-onlinesign; CPU per query at 20k QPS, cache hits.
bench-dnssec:
	scripts/debs.sh dnsperf:dnsperf knotd:knot dig:bind9-dnsutils curl:curl
	bench/dnssec.sh

# XDP path against kernel forwarding through the same namespaces (root).
bench-dispatcher:
	scripts/debs.sh ip:iproute2 ethtool:ethtool
	bench/dispatcher.sh

# Rebuild the BPF objects and bindings (needs clang; installed if missing).
generate:
	dispatcher/datapath/generate.sh

clean:
	rm -rf bin
