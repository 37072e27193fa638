package ha

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Wire format of a heartbeat, all integers big-endian:
//
//	"TnHA" | version 1 | interval ms (2) | seq (8) | unix ns (8) | config (8) |
//	id len (1) | id | groups (1) | per group: name len (1) | name |
//	priority (1) | flags (1, bit 0 = holding) | HMAC-SHA256 of all before (32)
const (
	wireMagic   = "TnHA"
	wireVersion = 1
	macLen      = sha256.Size
	flagHolding = 1
	// MaxPacket bounds a heartbeat: 255 groups of 32-byte names fit.
	MaxPacket = 16 << 10
)

var (
	// ErrAuth is returned for a heartbeat whose HMAC does not match.
	ErrAuth = errors.New("ha: heartbeat authentication failed")
	// ErrReplay is returned for a heartbeat whose sequence number is not
	// above the last accepted from its sender, or whose time is too far
	// from ours.
	ErrReplay = errors.New("ha: replayed or stale heartbeat")
	// ErrMalformed is returned for a packet that is not a heartbeat.
	ErrMalformed = errors.New("ha: malformed heartbeat")
)

// Encode appends hb's packet, authenticated with key, to buf.
func Encode(buf []byte, hb Heartbeat, key []byte) ([]byte, error) {
	if len(hb.ID) == 0 || len(hb.ID) > 255 || len(hb.Groups) > 255 {
		return nil, fmt.Errorf("%w: id of %d bytes, %d groups", ErrMalformed, len(hb.ID), len(hb.Groups))
	}
	start := len(buf)
	buf = append(buf, wireMagic...)
	buf = append(buf, wireVersion)
	ms := hb.Interval.Milliseconds()
	if ms < 1 || ms > 65535 {
		return nil, fmt.Errorf("%w: interval %v", ErrMalformed, hb.Interval)
	}
	buf = binary.BigEndian.AppendUint16(buf, uint16(ms))
	buf = binary.BigEndian.AppendUint64(buf, hb.Seq)
	buf = binary.BigEndian.AppendUint64(buf, uint64(hb.Time.UnixNano()))
	buf = binary.BigEndian.AppendUint64(buf, hb.Config)
	buf = append(buf, byte(len(hb.ID)))
	buf = append(buf, hb.ID...)
	buf = append(buf, byte(len(hb.Groups)))
	for _, g := range hb.Groups {
		if len(g.Name) == 0 || len(g.Name) > 255 {
			return nil, fmt.Errorf("%w: group name of %d bytes", ErrMalformed, len(g.Name))
		}
		buf = append(buf, byte(len(g.Name)))
		buf = append(buf, g.Name...)
		var flags byte
		if g.Holding {
			flags |= flagHolding
		}
		buf = append(buf, g.Priority, flags)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(buf[start:])
	return mac.Sum(buf), nil
}

// Decode authenticates pkt with key and parses it. It does not check
// freshness; a Verifier does.
func Decode(pkt, key []byte) (Heartbeat, error) {
	var hb Heartbeat
	if len(pkt) < len(wireMagic)+1+macLen || string(pkt[:4]) != wireMagic {
		return hb, ErrMalformed
	}
	body, sum := pkt[:len(pkt)-macLen], pkt[len(pkt)-macLen:]
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), sum) {
		return hb, ErrAuth
	}
	// Authenticated: a parse error now means a peer of another version
	// or a bug, never an attacker without the key.
	r := reader{b: body[4:]}
	if v := r.byte(); v != wireVersion {
		return hb, fmt.Errorf("%w: version %d", ErrMalformed, v)
	}
	hb.Interval = time.Duration(r.uint16()) * time.Millisecond
	hb.Seq = r.uint64()
	hb.Time = time.Unix(0, int64(r.uint64()))
	hb.Config = r.uint64()
	hb.ID = string(r.bytes(int(r.byte())))
	n := int(r.byte())
	for range n {
		name := string(r.bytes(int(r.byte())))
		prio, flags := r.byte(), r.byte()
		if flags&^flagHolding != 0 {
			r.bad = true // a flag this version does not know
		}
		hb.Groups = append(hb.Groups, GroupState{Name: name, Priority: prio, Holding: flags&flagHolding != 0})
	}
	if r.bad || len(r.b) != 0 || hb.ID == "" || hb.Interval == 0 {
		return Heartbeat{}, ErrMalformed
	}
	return hb, nil
}

type reader struct {
	b   []byte
	bad bool
}

func (r *reader) bytes(n int) []byte {
	if r.bad || len(r.b) < n {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) uint16() uint16 {
	if b := r.bytes(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) uint64() uint64 {
	if b := r.bytes(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// Verifier rejects replayed heartbeats: each sender's sequence numbers must
// rise, and a heartbeat's time must be within MaxSkew of the receiver's
// clock, which bounds what a receiver that has just restarted (and forgot
// the sequence numbers) can be fed. Senders start their sequence at their
// clock's nanoseconds, so it rises across their restarts too.
type Verifier struct {
	MaxSkew time.Duration
	last    map[string]uint64
}

// DefaultMaxSkew is how far a heartbeat's time may be from the receiver's.
// Dispatchers of a site are expected to run NTP.
const DefaultMaxSkew = 5 * time.Second

// Check accepts hb received at now, or says why not. An accepted heartbeat
// raises the sender's floor.
func (v *Verifier) Check(now time.Time, hb Heartbeat) error {
	skew := v.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	if d := now.Sub(hb.Time); d > skew || d < -skew {
		return fmt.Errorf("%w: from %s, its clock is %v off ours", ErrReplay, hb.ID, d.Round(time.Millisecond))
	}
	if v.last == nil {
		v.last = map[string]uint64{}
	}
	if last, ok := v.last[hb.ID]; ok && hb.Seq <= last {
		return fmt.Errorf("%w: from %s, sequence %d after %d", ErrReplay, hb.ID, hb.Seq, last)
	}
	v.last[hb.ID] = hb.Seq
	return nil
}
