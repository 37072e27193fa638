package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dnssec"
	"github.com/ternlb/tern/dnsserver"
	"github.com/ternlb/tern/zones"
)

// signZones signs the zones whose entries say dnssec: it reads their
// keys (keyPath finds a key file on this host), publishes DNSKEY, CDS
// and CDNSKEY at each apex (a new zone made of the old one's records and
// these) and signs the static RRsets. It returns the set to serve and
// the signers by zone; set itself and nil when no zone is signed.
func signZones(cfg *config.Config, set *zones.Set, keyPath func(string) string, reuse *signCache, now time.Time) (*zones.Set, map[*zones.Zone]*dnssec.Zone, config.Problems) {
	var ps config.Problems
	byFile := map[string]*zones.Zone{}
	for _, z := range set.Zones() {
		byFile[z.File] = z
	}
	pools := map[string]int{}
	for i, name := range cfg.PoolNames() {
		pools[name] = i
	}
	type job struct {
		z      *zones.Zone
		signer *dnssec.Signer
		conf   *config.DNSSEC
		key    signKey
		reused *dnssec.Zone
	}
	var jobs []job
	replaced := map[*zones.Zone]*zones.Zone{}
	for i, zc := range cfg.Zones {
		if zc.DNSSEC == nil {
			continue
		}
		at := func(key, format string, args ...any) {
			ps = append(ps, config.Problem{File: cfg.Name, Line: cfg.Line(fmt.Sprintf("zones.%d.dnssec%s", i, key)), Msg: fmt.Sprintf(format, args...)})
		}
		z := byFile[cfg.DisplayPath(zc.File)]
		if z == nil {
			continue // not loaded: zones.Load reported why
		}
		alg, err := dnssec.Algorithm(zc.DNSSEC.AlgorithmName())
		if err != nil {
			at(".algorithm", "%v", err)
			continue
		}
		read := func(list string, paths []string) []*dnssec.Key {
			var keys []*dnssec.Key
			for j, p := range paths {
				host := keyPath(p)
				if host == "" {
					at(fmt.Sprintf(".%s.%d", list, j), "key %s: the configuration was not read from this host, so it cannot name key files", p)
					continue
				}
				k, err := dnssec.ReadKey(host)
				if err != nil {
					var pe *fs.PathError
					if errors.As(err, &pe) {
						err = fmt.Errorf("%s: %v", pe.Path, pe.Err)
					}
					at(fmt.Sprintf(".%s.%d", list, j), "zone %s: key %s: %v (make one with `tern dnssec keygen %s`)", z.Origin, p, err, z.Origin)
					continue
				}
				keys = append(keys, k)
			}
			return keys
		}
		keys := read("keys", zc.DNSSEC.Keys)
		published := read("publish", zc.DNSSEC.Publish)
		if len(published) < len(zc.DNSSEC.Publish) {
			continue
		}
		if len(keys) < len(zc.DNSSEC.Keys) {
			continue
		}
		s, err := dnssec.NewSigner(z.Origin, alg, keys, zc.DNSSEC.Validity(), published...)
		if err != nil {
			at(".keys", "zone %s: %v", z.Origin, err)
			continue
		}
		key := newSignKey(z, zc.DNSSEC, keys, published)
		if sz := reuse.get(key); sz != nil {
			replaced[z] = sz.Zone
			jobs = append(jobs, job{z: sz.Zone, key: key, reused: sz})
			continue
		}
		nz, zps := zones.WithRecords(z, dnssec.ApexRecords(append(slices.Clone(keys), published...), uint32(zc.DNSSEC.KeyTTL()/time.Second)), pools)
		if len(zps) > 0 {
			ps = append(ps, zps...)
			continue
		}
		replaced[z] = nz
		jobs = append(jobs, job{z: nz, signer: s, conf: zc.DNSSEC, key: key})
	}
	if len(ps) > 0 || len(jobs) == 0 {
		return set, nil, ps
	}
	all := make([]*zones.Zone, 0, len(set.Zones()))
	for _, z := range set.Zones() {
		if nz, ok := replaced[z]; ok {
			z = nz
		}
		all = append(all, z)
	}
	nset, err := zones.NewSet(all...)
	if err != nil {
		return set, nil, config.Problems{{File: cfg.Name, Msg: err.Error()}}
	}
	signed := make(map[*zones.Zone]*dnssec.Zone, len(jobs))
	used := make(map[signKey]*dnssec.Zone, len(jobs))
	for _, j := range jobs {
		sz := j.reused
		if sz == nil {
			var err error
			if sz, err = dnssec.NewZone(j.z, j.signer, j.conf.Cache(), now); err != nil {
				return set, nil, config.Problems{{File: cfg.Name, Msg: fmt.Sprintf("zone %s: %v", j.z.Origin, err)}}
			}
		}
		signed[j.z] = sz
		used[j.key] = sz
	}
	reuse.keep(used)
	return nset, signed, nil
}

// signKey is what a signed zone was made from: the unsigned zone (the
// zone cache gives the same pointer to an unchanged zone) and its
// DNSSEC settings and public keys.
type signKey struct {
	zone     *zones.Zone
	settings string
}

func newSignKey(z *zones.Zone, d *config.DNSSEC, keys, published []*dnssec.Key) signKey {
	s := fmt.Sprintf("%s|%v|%v|%d", d.AlgorithmName(), d.Validity(), d.KeyTTL(), d.Cache())
	for _, k := range keys {
		s += "|" + k.DNSKEY.String()
	}
	s += "|publish"
	for _, k := range published {
		s += "|" + k.DNSKEY.String()
	}
	return signKey{z, s}
}

// signCache holds the signed zones of the last two compiles (the served
// generation's and a validation's, which alternate, as zoneCache does).
// The nil cache holds nothing.
type signCache struct {
	mu        sync.Mutex
	cur, prev map[signKey]*dnssec.Zone
}

func (c *signCache) get(k signKey) *dnssec.Zone {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if sz := c.cur[k]; sz != nil {
		return sz
	}
	return c.prev[k]
}

func (c *signCache) keep(used map[signKey]*dnssec.Zone) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.prev, c.cur = c.cur, used
	c.mu.Unlock()
}

// resign makes the signatures of snap's signed zones again as they come
// due, until ctx ends: a zone is re-signed before its signatures expire
// without a reload. It checks every interval, and records the keys
// served then in the key history at keysPath ("" for none).
func resign(ctx context.Context, snap func() *dnsserver.Snapshot, interval time.Duration, keysPath string, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for now := time.Now(); ; {
		if s := snap(); s != nil {
			for _, sz := range s.DNSSEC {
				if did, err := sz.Refresh(now); err != nil {
					log.Error("DNSSEC: re-signing failed; the old signatures stay", "zone", sz.Zone.Origin, "err", err)
				} else if did {
					log.Info("DNSSEC: zone re-signed", "zone", sz.Zone.Origin, "next", sz.RefreshDue())
				}
			}
			if err := observeKeys(keysPath, s, now); err != nil {
				log.Warn("DNSSEC: key history not written: tern check cannot time key rolls", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case now = <-t.C:
		}
	}
}

// keyFile is where the DNSSEC key file p of cfg is on this host, found
// as geoFile finds the geo database: a replicated configuration was not
// loaded from this host, so its key paths resolve against the local
// file's folder. Key files never travel with a configuration version:
// every node holds its own copy of the zone's keys.
func (n *Node) keyFile(cfg *config.Config, p string) string {
	if h := cfg.HostPath(p); h != "" {
		return h
	}
	n.mu.Lock()
	local := n.local
	n.mu.Unlock()
	if local == nil || local == cfg {
		return ""
	}
	return local.HostPath(p)
}

var (
	descSigHits = prometheus.NewDesc("tern_dnssec_signature_cache_hits_total",
		"Answers signed on the fly whose signatures came from the cache, by zone (since the zone was last compiled).", []string{"zone"}, nil)
	descSigMisses = prometheus.NewDesc("tern_dnssec_signature_cache_misses_total",
		"Answers signed on the fly that cost a signature, by zone (since the zone was last compiled).", []string{"zone"}, nil)
	descSigCacheSize = prometheus.NewDesc("tern_dnssec_signature_cache_size",
		"Entries the zone's signature cache holds at most.", []string{"zone"}, nil)
	descSigRefresh = prometheus.NewDesc("tern_dnssec_resign_due_timestamp_seconds",
		"When the zone's static signatures are made again (a quarter of their validity before they expire).", []string{"zone"}, nil)
)

// dnssecCollector reports the served snapshot's signed zones.
type dnssecCollector struct{ n *Node }

func (dnssecCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSigHits
	ch <- descSigMisses
	ch <- descSigCacheSize
	ch <- descSigRefresh
}

func (c dnssecCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.n.served.Load()
	if s == nil {
		return
	}
	for _, sz := range s.DNSSEC {
		z := sz.Zone.Origin
		ch <- prometheus.MustNewConstMetric(descSigHits, prometheus.CounterValue, float64(sz.Cache.Hits.Load()), z)
		ch <- prometheus.MustNewConstMetric(descSigMisses, prometheus.CounterValue, float64(sz.Cache.Misses.Load()), z)
		ch <- prometheus.MustNewConstMetric(descSigCacheSize, prometheus.GaugeValue, float64(sz.Cache.Len()), z)
		ch <- prometheus.MustNewConstMetric(descSigRefresh, prometheus.GaugeValue, float64(sz.RefreshDue().Unix()), z)
	}
}
