package dnssec

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Key rolls (RFC 7583). Tern signs online, so a key that starts or stops
// signing does so for every answer at once; what remains is the caches
// of resolvers: a DNSKEY RRset cached without the new key, signatures
// cached that need the old one. KeyHistory remembers when each key was
// seen published and signing, so that a check can say a step comes too
// soon.

// KeySeen is what a node saw of one key of a zone.
type KeySeen struct {
	SEP bool `json:"sep,omitempty"`
	// FirstPublished is when the key was first seen in the DNSKEY RRset;
	// LastPublished and LastSigning when it last was, and last signed.
	FirstPublished time.Time `json:"first_published"`
	LastPublished  time.Time `json:"last_published"`
	LastSigning    time.Time `json:"last_signing,omitzero"`
	// FirstSigning is when it first signed.
	FirstSigning time.Time `json:"first_signing,omitzero"`
}

// KeyHistory is a zone's keys by tag.
type KeyHistory map[uint16]KeySeen

// Observe records that at now the zone signs with signing and publishes
// published as well (published need not repeat signing), and returns h
// (a new one when h is nil).
func (h KeyHistory) Observe(now time.Time, signing, published []*Key) KeyHistory {
	if h == nil {
		h = KeyHistory{}
	}
	see := func(k *Key, signs bool) {
		s, ok := h[k.Tag()]
		if !ok {
			s.FirstPublished = now
		}
		s.SEP = k.SEP()
		s.LastPublished = now
		if signs {
			if s.FirstSigning.IsZero() {
				s.FirstSigning = now
			}
			s.LastSigning = now
		}
		h[k.Tag()] = s
	}
	for _, k := range signing {
		see(k, true)
	}
	for _, k := range published {
		see(k, false)
	}
	return h
}

// RollWarnings says which steps of a configuration (signing and
// published keys) would break validation for resolvers that cached what
// h records, at now: keyTTL is the DNSKEY TTL, maxTTL the longest TTL of
// the zone's signed RRsets (negative answers included). A zone h knows
// nothing of (first signed) gets none.
func RollWarnings(h KeyHistory, signing, published []*Key, now time.Time, keyTTL, maxTTL time.Duration) []string {
	if len(h) == 0 {
		return nil
	}
	var ws []string
	named := map[uint16]bool{}
	for _, k := range slices.Concat(signing, published) {
		named[k.Tag()] = true
	}
	for _, k := range signing {
		s, ok := h[k.Tag()]
		if !s.FirstSigning.IsZero() {
			continue // it signed before: caches know it
		}
		switch {
		case !ok:
			ws = append(ws, fmt.Sprintf("key %d signs without having been published: resolvers that cached the DNSKEY RRset without it fail to validate for up to %v. Publish it first (publish:), and move it to keys: after dnskey_ttl (RFC 7583 3.2)", k.Tag(), keyTTL))
		case now.Sub(s.FirstPublished) < keyTTL:
			ws = append(ws, fmt.Sprintf("key %d signs %v after it was first published, less than dnskey_ttl %v: wait until %s (RFC 7583 3.2)", k.Tag(), now.Sub(s.FirstPublished).Round(time.Second), keyTTL, s.FirstPublished.Add(keyTTL).UTC().Format(time.RFC3339)))
		}
	}
	for _, tag := range slices.Sorted(maps.Keys(h)) {
		s := h[tag]
		if named[tag] {
			continue
		}
		// Removed: the signatures it made must be gone from caches.
		if !s.LastSigning.IsZero() && now.Sub(s.LastSigning) < maxTTL {
			ws = append(ws, fmt.Sprintf("key %d is removed %v after it last signed, less than the zone's longest TTL %v: resolvers still hold its signatures. Keep it under publish: until %s (RFC 7583 3.2)", tag, now.Sub(s.LastSigning).Round(time.Second), maxTTL, s.LastSigning.Add(maxTTL).UTC().Format(time.RFC3339)))
		}
		if s.SEP && now.Sub(s.LastPublished) < keyTTL {
			ws = append(ws, fmt.Sprintf("key %d, a key-signing key, is removed: make sure the parent's DS no longer names it and the DS TTL has passed, or the zone goes bogus (RFC 7583 3.3)", tag))
		}
	}
	return ws
}
