package node

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/config"
)

// apiTLS is what the API's TLS needs from node.tls: the certificate and
// key files the server presents, and the configuration the node's own API
// clients (join, forwarding to the leader) use: they verify a peer against
// the CA, by node.tls.server_name when set, else by the host of the API
// address dialled, and present this node's certificate.
type apiTLS struct {
	certFile, keyFile string
	cas               *x509.CertPool // node.tls.ca: the peers' client certificates verify against it
	client            *tls.Config
}

// apiTLSFor reads node.tls's files; nil when node.tls is not set.
func apiTLSFor(cfg *config.Config) (*apiTLS, error) {
	t := cfg.Node.TLS
	if !t.Enabled() {
		return nil, nil
	}
	cert, key, ca := cfg.HostPath(t.Cert), cfg.HostPath(t.Key), cfg.HostPath(t.CA)
	if cert == "" || key == "" || ca == "" {
		return nil, fmt.Errorf("api tls: node.tls names files on this host, but the configuration was not loaded from it")
	}
	var raw [3][]byte
	for i, p := range []string{cert, key, ca} {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("api tls: %w", err)
		}
		raw[i] = b
	}
	kp, err := config.ParseKeyPair(raw[0], raw[1], raw[2], time.Now())
	if err != nil {
		return nil, fmt.Errorf("api tls: node.tls: %w", err)
	}
	return &apiTLS{certFile: cert, keyFile: key, cas: kp.CAs, client: &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      kp.CAs,
		Certificates: []tls.Certificate{kp.Cert},
		ServerName:   t.ServerName,
	}}, nil
}

// clientConf is the TLS configuration of API clients: nil (plain HTTP)
// without node.tls.
func (a *apiTLS) clientConf() *tls.Config {
	if a == nil {
		return nil
	}
	return a.client.Clone()
}

// apiToken is the token the API requires: the --api-token flag (Options)
// when given, else node.api_token(_file).
func apiToken(cfg *config.Config, o Options) string {
	if o.APIToken != "" {
		return o.APIToken
	}
	return cfg.Node.APIToken
}

// peerClient is a client for another node's API with the cluster's token
// and, with node.tls, HTTPS verified against the CA.
func peerClient(addr, token string, t *apiTLS) *api.Client {
	return api.NewClient(addr, token, t.clientConf())
}
