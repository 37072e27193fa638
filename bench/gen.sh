#!/usr/bin/env bash
# gen.sh DIR PORT: writes the benchmark's configurations into DIR -- the
# same zone for tern (POOL), gdnsd (DYNA weighted) and the minimal miekg/dns
# server -- and dnsperf's query file (70% POOL, 20% static, 10% NXDOMAIN).
set -euo pipefail
dir=$1 port=$2
mkdir -p "$dir/tern/zones" "$dir/gdnsd/zones"

static='$ORIGIN gslb.example.test.
$TTL 300
@       IN SOA ns1 hostmaster 2026112201 3600 600 604800 60
@       IN NS  ns1
@       IN NS  ns2
ns1     IN A   127.0.0.1
ns2     IN A   127.0.0.2
@       IN MX  10 mail
mail    IN A   192.0.2.25
static  IN A   192.0.2.1
        IN AAAA 2001:db8::1'

cat >"$dir/tern/zones/gslb.example.test.zone" <<Z
$static
www     30 IN POOL web
api     30 IN POOL api
Z
for w in 1 2; do
mkdir -p "$dir/tern$w"
ln -sfn ../tern/zones "$dir/tern$w/zones"
cat >"$dir/tern$w/tern.yaml" <<Y
node:
  name: bench
  dns: ["127.0.0.1:$port"]
  udp_sockets: $w
pools:
  web:
    policy: weighted
    answers: 2
    members:
      - {address: 192.0.2.10, weight: 3}
      - {address: 192.0.2.11, weight: 2}
      - {address: 192.0.2.12, weight: 1}
      - {address: 192.0.2.13, weight: 1}
      - {address: "2001:db8::10", weight: 1}
      - {address: "2001:db8::11", weight: 1}
  api:
    policy: weighted
    answers: 2
    members:
      - {address: 192.0.2.20, weight: 1}
      - {address: 192.0.2.21, weight: 1}
zones:
  - file: zones/gslb.example.test.zone
Y
done

for w in 1 2; do
mkdir -p "$dir/gdnsd$w"
ln -sfn ../gdnsd/zones "$dir/gdnsd$w/zones"
cat >"$dir/gdnsd$w/config" <<G
options => {
  listen => [ 127.0.0.1:$port ]
  udp_threads = $w
  tcp_threads = 1
  lock_mem = false
}
plugins => {
  weighted => {
    multi = true
    web => {
      addrs_v4 => {
        w10 = [ 192.0.2.10, 3 ]
        w11 = [ 192.0.2.11, 2 ]
        w12 = [ 192.0.2.12, 1 ]
        w13 = [ 192.0.2.13, 1 ]
      }
      addrs_v6 => {
        w6a = [ 2001:db8::10, 1 ]
        w6b = [ 2001:db8::11, 1 ]
      }
    }
    api => {
      a20 = [ 192.0.2.20, 1 ]
      a21 = [ 192.0.2.21, 1 ]
    }
  }
}
G
done
cat >"$dir/gdnsd/zones/gslb.example.test" <<Z
$static
www     30 IN DYNA weighted!web
api     30 IN DYNA weighted!api
Z

# Knot has no pools: the pool names are plain RRsets of every member, the
# closest static equivalent (Knot answers all of them; tern and gdnsd two).
mkdir -p "$dir/knot-zones"
cat >"$dir/knot-zones/gslb.example.test.zone" <<Z
$static
www     30 IN A 192.0.2.10
www     30 IN A 192.0.2.11
www     30 IN A 192.0.2.12
www     30 IN A 192.0.2.13
www     30 IN AAAA 2001:db8::10
www     30 IN AAAA 2001:db8::11
api     30 IN A 192.0.2.20
api     30 IN A 192.0.2.21
Z
knot_conf() { # DIR WORKERS [MODULE-LINES]
  mkdir -p "$1/db"
  cat >"$1/knot.conf" <<K
server:
    listen: 127.0.0.1@$port
    rundir: $1
    background-workers: 1
    udp-workers: $2
    tcp-workers: 1
    edns-client-subnet: on
database:
    storage: $1/db
log:
  - target: stderr
    any: warning
${3:-}
zone:
  - domain: gslb.example.test
    file: $dir/knot-zones/gslb.example.test.zone
    storage: $1
    zonefile-load: whole
    journal-content: none
${4:-}
K
}
knot_conf "$dir/knot1" 1
knot_conf "$dir/knot2" 2

# The minimal server reads the static zone and weighted pools from flags
# (see bench/minimal).
cat >"$dir/minimal.zone" <<Z
$static
Z
cat >"$dir/minimal.pools" <<P
www.gslb.example.test. 30 192.0.2.10:3 192.0.2.11:2 192.0.2.12:1 192.0.2.13:1 2001:db8::10:1 2001:db8::11:1
api.gslb.example.test. 30 192.0.2.20:1 192.0.2.21:1
P

{
  for _ in $(seq 40); do echo "www.gslb.example.test A"; done
  for _ in $(seq 20); do echo "api.gslb.example.test A"; done
  for _ in $(seq 10); do echo "www.gslb.example.test AAAA"; done
  for _ in $(seq 8); do echo "static.gslb.example.test A"; done
  for _ in $(seq 4); do echo "static.gslb.example.test AAAA"; done
  for _ in $(seq 4); do echo "mail.gslb.example.test A"; done
  for _ in $(seq 4); do echo "gslb.example.test MX"; done
  for i in $(seq 10); do echo "nx$i.gslb.example.test A"; done
} | shuf --random-source=<(yes) >"$dir/queries.txt"

# tern-geo: the same zone with pool web chosen by geography from MaxMind's
# test database; dnsperf sends every query with an ECS option (run.sh).
geodb=$(cd "$(dirname "$0")/.." && pwd)/testdata/geoip/GeoIP2-City-Test.mmdb
mkdir -p "$dir/tern-geo/zones"
cp "$dir/tern/zones/gslb.example.test.zone" "$dir/tern-geo/zones/"
cat >"$dir/tern-geo/tern.yaml" <<Y
node:
  name: bench-geo
  dns: ["127.0.0.1:$port"]
  udp_sockets: 1
geo:
  database: "$geodb"
  maps:
    regions:
      "continent:EU": [eu, us]
      "continent:NA": [us, eu]
      "country:GB": [eu]
      default: [us, eu]
sites:
  eu: {location: [51.5, -0.1]}
  us: {location: [38.9, -77.0]}
pools:
  web:
    policy: geo
    map: regions
    answers: 2
    members:
      - {address: 192.0.2.10, site: eu, weight: 3}
      - {address: 192.0.2.11, site: eu, weight: 2}
      - {address: 192.0.2.12, site: us}
      - {address: 192.0.2.13, site: us}
      - {address: "2001:db8::10", site: eu}
      - {address: "2001:db8::11", site: us}
  api:
    policy: weighted
    answers: 2
    members:
      - {address: 192.0.2.20}
      - {address: 192.0.2.21}
zones:
  - file: zones/gslb.example.test.zone
Y

# tern-latency: the geo leg's pool web steered by measured RTT instead
# (policy latency: healthy -> latency -> weighted -> first N). Its tcp
# check connects to tern's own DNS TCP listener, so every member has a
# real RTT; three vantage nodes have locations, so each ECS client is
# mapped to its nearest (the decision's scope is exact); dnsperf sends
# the geo leg's ECS options.
mkdir -p "$dir/tern-latency/zones"
cp "$dir/tern/zones/gslb.example.test.zone" "$dir/tern-latency/zones/"
cat >"$dir/tern-latency/tern.yaml" <<Y
node:
  name: bench-latency
  dns: ["127.0.0.1:$port"]
  udp_sockets: 1
geo:
  database: "$geodb"
sites:
  eu: {location: [51.5, -0.1]}
  us: {location: [38.9, -77.0]}
nodes:
  bench-latency: {site: eu}
  us-node: {site: us}
  ap-node: {location: [35.7, 139.7]}
checks:
  self: {type: tcp, port: $port, interval: 1s, timeout: 500ms}
pools:
  web:
    policy: latency
    check: self
    answers: 2
    tolerance: 5ms
    members:
      - {address: 192.0.2.10, site: eu, weight: 3, probe: "127.0.0.1"}
      - {address: 192.0.2.11, site: eu, weight: 2, probe: "127.0.0.1"}
      - {address: 192.0.2.12, site: us, probe: "127.0.0.1"}
      - {address: 192.0.2.13, site: us, probe: "127.0.0.1"}
      - {address: "2001:db8::10", site: eu, probe: "127.0.0.1"}
      - {address: "2001:db8::11", site: us, probe: "127.0.0.1"}
  api:
    policy: weighted
    answers: 2
    members:
      - {address: 192.0.2.20}
      - {address: 192.0.2.21}
zones:
  - file: zones/gslb.example.test.zone
Y

# gdnsd-geo and knot-geo: the same geo split with each server's own GeoIP
# module on the same database (Knot's geoip module answers per country
# from its own file; unmatched clients get the zone's RRset).
mkdir -p "$dir/gdnsd-geo/zones"
cat >"$dir/gdnsd-geo/config" <<G
options => {
  listen => [ 127.0.0.1:$port ]
  udp_threads = 1
  tcp_threads = 1
  lock_mem = false
}
plugins => {
  weighted => {
    multi = true
    api => {
      a20 = [ 192.0.2.20, 1 ]
      a21 = [ 192.0.2.21, 1 ]
    }
  }
  geoip => {
    maps => {
      regions => {
        geoip2_db => "$geodb"
        datacenters => [eu, us]
        map => {
          default => [us, eu]
          EU => { default => [eu, us], GB => [eu] }
          NA => [us, eu]
        }
      }
    }
    resources => {
      web => {
        map => regions
        dcmap => {
          eu => { addrs_v4 => [192.0.2.10, 192.0.2.11], addrs_v6 => [2001:db8::10] }
          us => { addrs_v4 => [192.0.2.12, 192.0.2.13], addrs_v6 => [2001:db8::11] }
        }
      }
    }
  }
}
G
cat >"$dir/gdnsd-geo/zones/gslb.example.test" <<Z
$static
www     30 IN DYNA geoip!web
api     30 IN DYNA weighted!api
Z

mkdir -p "$dir/knot-geo"
cat >"$dir/knot-geo/geo.conf" <<C
www.gslb.example.test:
  - geo: "EU;GB"
    A: [192.0.2.10, 192.0.2.11]
    AAAA: 2001:db8::10
  - geo: "EU;*"
    A: [192.0.2.10, 192.0.2.11]
    AAAA: 2001:db8::10
  - geo: "NA;*"
    A: [192.0.2.12, 192.0.2.13]
    AAAA: 2001:db8::11
C
knot_conf "$dir/knot-geo" 1 "mod-geoip:
  - id: geo
    config-file: $dir/knot-geo/geo.conf
    ttl: 30
    mode: geodb
    geodb-file: $geodb
    geodb-key: [ continent/code, country/iso_code ]" "    module: mod-geoip/geo"
