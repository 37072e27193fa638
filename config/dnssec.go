package config

import (
	"strconv"
	"strings"
	"time"
)

// DNSSEC signs one zone online (RFC 4033-4035):
//
//	zones:
//	  - file: zones/gslb.example.com.zone
//	    dnssec:
//	      algorithm: ecdsap256sha256   # or ed25519
//	      keys: [keys/Kgslb.example.com.+013+12345]
//	      signature_validity: 336h
//
// The keys are BIND key files (K<zone>+<alg>+<tag>.key and .private, made
// by `tern dnssec keygen`), read from this host like a TSIG secret_file:
// a replicated configuration names them, every node reads its own copy,
// and their private halves never enter the Raft log or the API. One key
// with the SEP flag (257) is a combined signing key (CSK) and signs
// everything; a SEP key with a non-SEP key (256) is a KSK signing the
// DNSKEY, CDS and CDNSKEY RRsets and a ZSK signing the rest.
type DNSSEC struct {
	// Algorithm is ecdsap256sha256 (the default) or ed25519; every key
	// must be of it.
	Algorithm string `yaml:"algorithm"`
	// Keys name the key files, each with or without its .key or
	// .private suffix.
	Keys []string `yaml:"keys"`
	// Publish name keys that are in the DNSKEY RRset (and, with the SEP
	// flag, in CDS and CDNSKEY) but sign nothing: a key being rolled in
	// before it signs, or out after it stopped (RFC 7583).
	Publish []string `yaml:"publish"`
	// SignatureValidity is how long a signature is valid from its
	// making (default 14 days); signatures are made again when a quarter
	// of it is left.
	SignatureValidity Duration `yaml:"signature_validity"`
	// DNSKEYTTL is the TTL of the DNSKEY, CDS and CDNSKEY RRsets
	// (default 1h).
	DNSKEYTTL Duration `yaml:"dnskey_ttl"`
	// CacheSize bounds the signatures of answers made on the fly (pool
	// answers, negative answers) kept for reuse (default 65536).
	CacheSize int `yaml:"cache_size"`
}

// DNSSEC defaults.
const (
	DefaultSignatureValidity = 14 * 24 * time.Hour
	DefaultDNSKEYTTL         = time.Hour
	DefaultSignatureCache    = 65536
)

// AlgorithmName returns the canonical algorithm name (ecdsap256sha256 when
// unset).
func (d *DNSSEC) AlgorithmName() string {
	if d.Algorithm == "" {
		return "ecdsap256sha256"
	}
	return strings.ToLower(d.Algorithm)
}

// Validity returns the signature validity with its default.
func (d *DNSSEC) Validity() time.Duration {
	if d.SignatureValidity == 0 {
		return DefaultSignatureValidity
	}
	return d.SignatureValidity.D()
}

// KeyTTL returns the DNSKEY TTL with its default.
func (d *DNSSEC) KeyTTL() time.Duration {
	if d.DNSKEYTTL == 0 {
		return DefaultDNSKEYTTL
	}
	return d.DNSKEYTTL.D()
}

// Cache returns the signature cache size with its default.
func (d *DNSSEC) Cache() int {
	if d.CacheSize == 0 {
		return DefaultSignatureCache
	}
	return d.CacheSize
}

func (d *DNSSEC) check(path string, add func(path, format string, args ...any)) {
	switch d.AlgorithmName() {
	case "ecdsap256sha256", "ed25519":
	default:
		add(path+".algorithm", "DNSSEC algorithm %q: write ecdsap256sha256 (the default) or ed25519", d.Algorithm)
	}
	if len(d.Keys) == 0 {
		add(path+".keys", "a signed zone needs its key files: make one with `tern dnssec keygen ZONE` and write keys: [Kzone.+013+NNNNN]")
	}
	seen := map[string]bool{}
	for _, l := range []struct {
		key   string
		paths []string
	}{{"keys", d.Keys}, {"publish", d.Publish}} {
		for i, k := range l.paths {
			at := path + "." + l.key + "." + strconv.Itoa(i)
			k = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(k), ".key"), ".private")
			switch {
			case k == "":
				add(at, "empty key file name")
			case seen[k]:
				add(at, "key %s is listed twice: a key either signs (keys:) or is only published (publish:)", k)
			}
			seen[k] = true
		}
	}
	if v := d.SignatureValidity.D(); v != 0 && (v < time.Hour || v > 90*24*time.Hour) {
		add(path+".signature_validity", "signature_validity %v: write 1h to 2160h (90 days); the default is 336h", v)
	}
	if t := d.DNSKEYTTL.D(); t != 0 && (t < time.Second || t > 7*24*time.Hour) {
		add(path+".dnskey_ttl", "dnskey_ttl %v: write 1s to 168h", t)
	}
	if d.CacheSize < 0 || d.CacheSize > 1<<24 {
		add(path+".cache_size", "cache_size %d: write 0 (the default, 65536) to 16777216", d.CacheSize)
	}
}
