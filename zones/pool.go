package zones

import (
	"fmt"
	"sync"

	"github.com/miekg/dns"
)

// TypePOOL is the RR type code of Tern's POOL record: 65280 (0xFF00), the
// first code of the private-use range 65280-65534 (RFC 6895 section 3.1).
// POOL records never leave a Tern node in answers; the code only has to be
// unique within the process, and Tern registers no other private type.
const TypePOOL uint16 = 65280

var registerOnce sync.Once

// RegisterPOOL registers the POOL type with miekg/dns so that zone files
// can carry `name [ttl] [IN] POOL poolname`. miekg/dns keeps its type tables
// in package variables, so this is process-wide; it runs once however often
// it is called. Load and Parse call it themselves; a program that uses
// miekg/dns from several goroutines should call it once at start, before
// any of them run, since the registration writes miekg/dns's type tables.
func RegisterPOOL() {
	registerOnce.Do(func() {
		dns.PrivateHandle("POOL", TypePOOL, func() dns.PrivateRdata { return new(POOL) })
	})
}

// POOL is the rdata of a POOL record: the name of a pool in the
// configuration. On the wire (should it ever be packed) it is one
// character-string, like a TXT record with a single string.
type POOL struct {
	Pool string
	// err is why the zone file's text was not one pool name. Parse does
	// not fail (miekg/dns would lose the message and stop the whole file);
	// Load reports it as a problem at the record's line instead.
	err error
}

// String returns the pool name.
func (p *POOL) String() string { return p.Pool }

// Err reports whether the record's text was a valid pool name.
func (p *POOL) Err() error { return p.err }

// Parse reads the rdata from a zone file: one pool name.
func (p *POOL) Parse(txt []string) error {
	switch {
	case len(txt) != 1 || txt[0] == "":
		p.err = errPOOLArgs
	case len(txt[0]) > 255:
		p.err = fmt.Errorf("POOL name %.20q... is longer than 255 bytes", txt[0])
	default:
		p.Pool, p.err = txt[0], nil
	}
	return nil
}

// Pack writes the pool name as a character-string.
func (p *POOL) Pack(buf []byte) (int, error) {
	if len(p.Pool) > 255 {
		return 0, fmt.Errorf("pack POOL %q: name longer than 255 bytes", p.Pool)
	}
	if len(buf) < 1+len(p.Pool) {
		return 0, dns.ErrBuf
	}
	buf[0] = byte(len(p.Pool))
	copy(buf[1:], p.Pool)
	return 1 + len(p.Pool), nil
}

// Unpack reads a character-string.
func (p *POOL) Unpack(buf []byte) (int, error) {
	if len(buf) < 1 || len(buf) < 1+int(buf[0]) {
		return 0, fmt.Errorf("unpack POOL: %w", dns.ErrBuf)
	}
	p.Pool = string(buf[1 : 1+int(buf[0])])
	return 1 + int(buf[0]), nil
}

// Copy copies p into dest, which must be a *POOL.
func (p *POOL) Copy(dest dns.PrivateRdata) error {
	d, ok := dest.(*POOL)
	if !ok {
		return fmt.Errorf("copy POOL into %T", dest)
	}
	d.Pool, d.err = p.Pool, p.err
	return nil
}

// Len is the rdata's length on the wire.
func (p *POOL) Len() int { return 1 + len(p.Pool) }

// poolOf returns the pool name of rr when it is a POOL record.
func poolOf(rr dns.RR) (string, bool) {
	pr, ok := rr.(*dns.PrivateRR)
	if !ok || pr.Hdr.Rrtype != TypePOOL {
		return "", false
	}
	p, ok := pr.Data.(*POOL)
	if !ok {
		return "", false
	}
	return p.Pool, true
}
