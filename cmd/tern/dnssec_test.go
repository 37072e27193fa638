package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/ternlb/tern/dnssec"
)

// TestDNSSECKeygenDS: keygen writes a BIND key pair (the private half
// owner-only) and prints its name; ds prints the SHA-256 DS of that key;
// a ZSK alone has no DS to give.
func TestDNSSECKeygenDS(t *testing.T) {
	dir := t.TempDir()
	name := strings.TrimSpace(runOK(t, "dnssec", "keygen", "-a", "ed25519", "-d", dir, "Example.Test"))
	if !strings.HasPrefix(filepath.Base(name), "Kexample.test.+015+") {
		t.Fatalf("keygen printed %q", name)
	}
	st, err := os.Stat(name + ".private")
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v", st, err)
	}
	k, err := dnssec.ReadKey(name)
	if err != nil {
		t.Fatal(err)
	}
	out := runOK(t, "dnssec", "ds", "-k", name+".key", "example.test")
	rr, err := dns.NewRR(out)
	if err != nil {
		t.Fatalf("ds printed %q: %v", out, err)
	}
	ds, ok := rr.(*dns.DS)
	if !ok || ds.DigestType != dns.SHA256 || ds.KeyTag != k.Tag() || !strings.EqualFold(ds.Digest, k.DNSKEY.ToDS(dns.SHA256).Digest) {
		t.Errorf("ds printed %v, want the key's SHA-256 DS", rr)
	}
	if out, err := runErr("dnssec", "ds", "-k", name, "other.test"); err == nil {
		t.Errorf("ds for another zone's key: %s", out)
	}
	zsk := strings.TrimSpace(runOK(t, "dnssec", "keygen", "--zsk", "-d", dir, "example.test"))
	if out, err := runErr("dnssec", "ds", "-k", zsk, "example.test"); err == nil || !strings.Contains(err.Error(), "key-signing") {
		t.Errorf("ds of a ZSK: %v %s", err, out)
	}
	if out, err := runErr("dnssec", "keygen", "-a", "rsasha1", "-d", dir, "example.test"); err == nil || !strings.Contains(err.Error(), "ecdsap256sha256") {
		t.Errorf("keygen -a rsasha1: %v %s", err, out)
	}
}
