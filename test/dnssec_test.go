package test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ternlb/tern/dnssec"
)

// TestClusterSigned: two nodes sign the cluster's zone with the same key,
// each from its own copy of the key files (which never enter the Raft
// log: only their path does). Both answer a pool name, a static name and
// a nonexistent one with signatures that verify with the zone's key.
func TestClusterSigned(t *testing.T) {
	c := newCluster(t, 2)
	k, err := dnssec.Generate("gslb.test.", dns.ED25519, true)
	if err != nil {
		t.Fatal(err)
	}
	c.cluster = strings.Replace(c.cluster, "  - file: zones/z.zone\n",
		"  - file: zones/z.zone\n    dnssec: {algorithm: ed25519, keys: [keys/"+k.BaseName()+"]}\n", 1)
	for _, nd := range c.nodes {
		dir := filepath.Join(nd.dir, "keys")
		os.MkdirAll(dir, 0o700)
		if _, _, err := k.Write(dir); err != nil {
			t.Fatal(err)
		}
		nd.writeConfig(c.cluster, "v1")
	}
	c.form()
	c.eachAnswers(30*time.Second, []string{memberA, memberB})

	priv, err := os.ReadFile(filepath.Join(c.nodes[0].dir, "keys", k.BaseName()+".private"))
	if err != nil {
		t.Fatal(err)
	}
	secret := ""
	for _, line := range strings.Split(string(priv), "\n") {
		if v, ok := strings.CutPrefix(line, "PrivateKey: "); ok {
			secret = v
		}
	}
	cv, err := c.nodes[1].client().Version(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	for p, data := range cv.Files {
		if secret == "" || strings.Contains(data, secret) || strings.HasSuffix(p, ".private") {
			t.Errorf("the replicated version holds the private key (%s)", p)
		}
	}

	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"www.gslb.test.", dns.TypeA}, {"v.gslb.test.", dns.TypeTXT}, {"nothere.gslb.test.", dns.TypeA}, {"gslb.test.", dns.TypeDNSKEY}} {
		for _, nd := range c.nodes {
			m := new(dns.Msg)
			m.SetQuestion(q.name, q.qtype)
			m.SetEdns0(1232, true)
			r, err := dns.Exchange(m, nd.dns)
			if err != nil {
				t.Fatalf("%s %s: %v", nd.name, q.name, err)
			}
			verified := 0
			for _, sec := range [][]dns.RR{r.Answer, r.Ns} {
				for _, rr := range sec {
					sig, ok := rr.(*dns.RRSIG)
					if !ok {
						continue
					}
					var set []dns.RR
					for _, x := range sec {
						if x.Header().Rrtype == sig.TypeCovered && strings.EqualFold(x.Header().Name, sig.Hdr.Name) {
							set = append(set, x)
						}
					}
					if err := sig.Verify(k.DNSKEY, set); err != nil {
						t.Errorf("%s: %s %s: %v", nd.name, q.name, dns.Type(sig.TypeCovered), err)
					}
					verified++
				}
			}
			if verified == 0 {
				t.Errorf("%s: %s %s: no signature:\n%v", nd.name, q.name, dns.Type(q.qtype), r)
			}
		}
	}
}
