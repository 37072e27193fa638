package dnssec

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Sentinel errors.
var (
	ErrAlgorithm = errors.New("unsupported DNSSEC algorithm: write ecdsap256sha256 or ed25519")
	ErrKeyZone   = errors.New("key is for another zone")
	ErrKeyPair   = errors.New("private key does not match the public key")
	ErrNoKeys    = errors.New("no keys")
	ErrMixedAlg  = errors.New("keys of more than one algorithm")
	ErrKeyExists = errors.New("key file exists")
)

// Flags of a DNSKEY (RFC 4034 2.1.1): a zone key, with SEP for a KSK or
// CSK.
const (
	FlagsZSK = 256
	FlagsKSK = 257
)

// Algorithm returns the DNSSEC algorithm number of name (RFC 8624):
// ecdsap256sha256 (13) or ed25519 (15).
func Algorithm(name string) (uint8, error) {
	switch strings.ToLower(name) {
	case "", "ecdsap256sha256", "13":
		return dns.ECDSAP256SHA256, nil
	case "ed25519", "15":
		return dns.ED25519, nil
	}
	return 0, fmt.Errorf("%q: %w", name, ErrAlgorithm)
}

// Key is one DNSSEC key pair of a zone.
type Key struct {
	DNSKEY *dns.DNSKEY
	signer crypto.Signer
	// File is the key's file name without suffix (K<zone>+<alg>+<tag>),
	// as read or written.
	File string
}

// SEP reports whether the key has the Secure Entry Point flag (a KSK or
// a CSK: the parent's DS points at it).
func (k *Key) SEP() bool { return k.DNSKEY.Flags&dns.SEP != 0 }

// Tag returns the key tag (RFC 4034 appendix B).
func (k *Key) Tag() uint16 { return k.DNSKEY.KeyTag() }

// BaseName is BIND's file name for the key, without suffix.
func (k *Key) BaseName() string {
	return fmt.Sprintf("K%s+%03d+%05d", k.DNSKEY.Hdr.Name, k.DNSKEY.Algorithm, k.Tag())
}

// Generate makes a new key for zone: a CSK or KSK when sep is set (flags
// 257), else a ZSK (256).
func Generate(zone string, alg uint8, sep bool) (*Key, error) {
	if alg != dns.ECDSAP256SHA256 && alg != dns.ED25519 {
		return nil, fmt.Errorf("algorithm %d: %w", alg, ErrAlgorithm)
	}
	flags := uint16(FlagsZSK)
	if sep {
		flags = FlagsKSK
	}
	k := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: canonicalZone(zone), Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags:     flags,
		Protocol:  3,
		Algorithm: alg,
	}
	priv, err := k.Generate(256)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	s, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("generate key: %T is no signer", priv)
	}
	key := &Key{DNSKEY: k, signer: s}
	key.File = key.BaseName()
	return key, nil
}

func canonicalZone(zone string) string { return strings.ToLower(dns.Fqdn(zone)) }

// Write writes the key's .key and .private files into dir, BIND's
// format, the private one readable by its owner only. It refuses to
// overwrite a file.
func (k *Key) Write(dir string) (pub, priv string, err error) {
	base := filepath.Join(dir, k.BaseName())
	pub, priv = base+".key", base+".private"
	role := "zone-signing"
	if k.SEP() {
		role = "key-signing"
	}
	pubText := fmt.Sprintf("; This is a %s key, keyid %d, for %s\n; Created: %s (tern dnssec keygen)\n%s\n",
		role, k.Tag(), k.DNSKEY.Hdr.Name, time.Now().UTC().Format("20060102150405"), k.DNSKEY.String())
	privText := k.DNSKEY.PrivateKeyString(k.signer)
	for _, f := range []struct {
		path string
		data string
		mode os.FileMode
	}{{priv, privText, 0o600}, {pub, pubText, 0o644}} {
		fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if err != nil {
			if errors.Is(err, os.ErrExist) {
				return "", "", fmt.Errorf("%s: %w", f.path, ErrKeyExists)
			}
			return "", "", err
		}
		if _, err := fh.WriteString(f.data); err != nil {
			fh.Close()
			return "", "", fmt.Errorf("write %s: %w", f.path, err)
		}
		if err := fh.Close(); err != nil {
			return "", "", fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	k.File = base
	return pub, priv, nil
}

// KeyFiles returns the .key and .private paths of a key named by path,
// with or without either suffix.
func KeyFiles(path string) (pub, priv string) {
	base := strings.TrimSuffix(strings.TrimSuffix(path, ".key"), ".private")
	return base + ".key", base + ".private"
}

// ReadKey reads the key pair named by path (see KeyFiles) from this
// host's file system.
func ReadKey(path string) (*Key, error) {
	pubPath, privPath := KeyFiles(path)
	pub, err := os.ReadFile(pubPath)
	if err != nil {
		return nil, err
	}
	priv, err := os.ReadFile(privPath)
	if err != nil {
		return nil, err
	}
	k, err := ParseKey(pub, priv, privPath)
	if err != nil {
		return nil, err
	}
	k.File = strings.TrimSuffix(pubPath, ".key")
	return k, nil
}

// ParseKey parses a key pair from the texts of its .key and .private
// files (privName names the latter in errors) and checks the two halves
// belong together by signing and verifying.
func ParseKey(pub, priv []byte, privName string) (*Key, error) {
	var dk *dns.DNSKEY
	zp := dns.NewZoneParser(bytes.NewReader(pub), "", privName)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if d, isKey := rr.(*dns.DNSKEY); isKey {
			dk = d
			break
		}
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	if dk == nil {
		return nil, fmt.Errorf("public key file holds no DNSKEY record")
	}
	if _, err := Algorithm(fmt.Sprint(dk.Algorithm)); err != nil {
		return nil, err
	}
	dk.Hdr.Name = canonicalZone(dk.Hdr.Name)
	p, err := dk.ReadPrivateKey(bytes.NewReader(priv), privName)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", privName, err)
	}
	s, ok := p.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key %s: %w", privName, ErrKeyPair)
	}
	k := &Key{DNSKEY: dk, signer: s}
	if err := k.selfTest(); err != nil {
		return nil, fmt.Errorf("%s: %w", privName, err)
	}
	return k, nil
}

// selfTest signs a record and verifies it with the public key.
func (k *Key) selfTest() error {
	rr := &dns.TXT{Hdr: dns.RR_Header{Name: k.DNSKEY.Hdr.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{"tern"}}
	now := time.Now()
	sig := k.rrsig(dns.TypeTXT, 60, now, time.Hour)
	if err := sig.Sign(k.signer, []dns.RR{rr}); err != nil {
		return fmt.Errorf("%w: %v", ErrKeyPair, err)
	}
	if err := sig.Verify(k.DNSKEY, []dns.RR{rr}); err != nil {
		return ErrKeyPair
	}
	return nil
}

func (k *Key) rrsig(t uint16, ttl uint32, now time.Time, validity time.Duration) *dns.RRSIG {
	return &dns.RRSIG{
		Hdr:         dns.RR_Header{Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: ttl},
		TypeCovered: t,
		Algorithm:   k.DNSKEY.Algorithm,
		OrigTtl:     ttl,
		// An hour back for resolvers whose clocks run late.
		Inception:  uint32(now.Add(-time.Hour).Unix()),
		Expiration: uint32(now.Add(validity).Unix()),
		KeyTag:     k.Tag(),
		SignerName: k.DNSKEY.Hdr.Name,
	}
}

// DS returns the key's DS record (SHA-256, RFC 4509) with ttl.
func (k *Key) DS(ttl uint32) *dns.DS {
	ds := k.DNSKEY.ToDS(dns.SHA256)
	ds.Hdr.Ttl = ttl
	return ds
}

// ApexRecords returns the DNSKEY RRset of keys and, for the SEP keys
// (the ones a parent's DS should point at), CDS and CDNSKEY (RFC 7344,
// 8078), all with ttl.
func ApexRecords(keys []*Key, ttl uint32) []dns.RR {
	var out []dns.RR
	for _, k := range keys {
		d := *k.DNSKEY
		d.Hdr.Ttl = ttl
		out = append(out, &d)
		if !k.SEP() {
			continue
		}
		ds := k.DS(ttl)
		cds := &dns.CDS{DS: *ds}
		cds.Hdr.Rrtype = dns.TypeCDS
		out = append(out, cds)
		cdk := &dns.CDNSKEY{DNSKEY: d}
		cdk.Hdr.Rrtype = dns.TypeCDNSKEY
		out = append(out, cdk)
	}
	return out
}
