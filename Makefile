# Tern's build. Every target installs what it needs (Debian packages via
# apt-get, Go modules via the module proxy); Go itself is /usr/local/go.
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN     := bin/tern

.PHONY: all build run man package deps lint tools test vet fuzz bench bench-perf bench-go bench-probes bench-dispatcher bench-scale bench-dnssec bench-icache generate clean

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

# dist/tern_VERSION_ARCH.deb: the binary, the systemd unit (user tern by
# systemd-sysusers), the man page, completions and an example
# configuration (scripts/package.sh, with dpkg-deb).
package: build
	scripts/debs.sh dpkg-deb:dpkg
	VERSION=$(VERSION) BIN=$(BIN) scripts/package.sh

# Test dependencies: the Debian tools the tests drive (installed if missing).
deps:
	scripts/debs.sh ip:iproute2 ethtool:ethtool chromium:chromium knotd:knot dig:bind9-dnsutils kdig:knot-dnsutils dnsviz:dnsviz delv:bind9-dnsutils unbound:unbound ldns-verify-zone:ldnsutils promtool:prometheus zsh:zsh fish:fish groff:groff

# Pinned linters, installed through the Go module proxy into bin/tools.
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK := bin/tools/staticcheck-$(STATICCHECK_VERSION)
$(STATICCHECK):
	mkdir -p bin/tools
	GOBIN=$(CURDIR)/bin/tools/tmp-$(STATICCHECK_VERSION) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv bin/tools/tmp-$(STATICCHECK_VERSION)/staticcheck $@ && rmdir bin/tools/tmp-$(STATICCHECK_VERSION)
tools: $(STATICCHECK)

# The gates CI runs before the tests: formatting, vet, staticcheck, a tidy
# go.mod, and a build of the binary for macOS, so `tern check` runs on a
# laptop.
lint: $(STATICCHECK)
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt -l: these files need gofmt -w:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags portableudp ./dnsserver/
	$(STATICCHECK) ./...
	$(GO) mod tidy -diff
	GOOS=darwin $(GO) build -o /dev/null ./cmd/tern

# Every test, after deps and lint. The portable UDP loop
# (dnsserver/udp_portable.go, the one macOS builds) runs the dnsserver suite
# on Linux too (-tags portableudp). Tests that need root (XDP, network
# namespaces) skip without it; CI runs as root, so there they run. The tests
# of a 1,000,000-record zone skip themselves under -race (ten times slower
# there) and run after, without it (about 2 minutes).
test: deps lint
	$(GO) test -race -timeout 20m ./...
	$(GO) test -race -tags portableudp ./dnsserver/
	$(GO) test -run '^TestBigZone' -count=1 -timeout 20m ./node/

vet:
	$(GO) vet ./...

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

# Where a query's cost goes: perf on the server's core during a fixed-rate
# run and a Go CPU profile (bench/perf.sh; SERVER=gdnsd or knot, RATE=,
# TAGS=portableudp for the netpoller loop).
bench-perf:
	scripts/debs.sh dnsperf:dnsperf gdnsd:gdnsd knotd:knot dig:bind9-dnsutils perf:linux-perf
	bench/perf.sh

# 2,000 members probed every second for 10 s: lateness and prober CPU.
bench-probes:
	TERN_SCALE=1 $(GO) test -run '^TestScale$$' -v -count=1 ./probes/
	TERN_SCALE=1 TERN_SCALE_CHECK=http $(GO) test -run '^TestScale$$' -v -count=1 ./probes/

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./selector ./zones ./dnsserver ./dispatcher/maglev

# Zone size against cost: time to serve and peak RSS for 10k, 100k and 1M
# records, tern standalone and as a cluster node beside Knot DNS
# (SIZES="...", MODES="standalone cluster" to choose).
# Instructions and simulated first-level cache misses of one warm query
# in the handler (bench/icache.sh; BENCH=, I1=, D1=; see BENCHMARKS.md).
bench-icache:
	scripts/debs.sh valgrind:valgrind
	bench/icache.sh
	COLD=1 bench/icache.sh

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
	rm -rf bin dist
