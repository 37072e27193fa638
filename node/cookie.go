package node

import (
	"crypto/hmac"
	"crypto/sha256"
)

// cookieLabel separates the DNS cookie secret from any other use of the
// API token.
const cookieLabel = "tern dns cookie secret"

// cookieSecret is the DNS server cookie secret (RFC 9018) of a node whose
// API token is token: the first 16 bytes of HMAC-SHA256(token, label).
// Every node of a cluster holds the same token (they join and forward
// writes with it), so every node accepts the cookies another made, and
// the secret itself is never stored or sent anywhere. Without a token
// (a loopback-only node) it is zero: the DNS server picks a random one.
func cookieSecret(token string) [16]byte {
	var s [16]byte
	if token == "" {
		return s
	}
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(cookieLabel))
	copy(s[:], m.Sum(nil))
	return s
}
