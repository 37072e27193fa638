package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls a node's API; the CLI uses it.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient returns a client for the API at addr ("host:port" or a URL).
// tlsConf may be nil; a host:port with tlsConf set is reached over https.
func NewClient(addr, token string, tlsConf *tls.Config) *Client {
	base := addr
	if !strings.Contains(addr, "://") {
		scheme := "http"
		if tlsConf != nil {
			scheme = "https"
		}
		base = scheme + "://" + addr
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	return &Client{
		base:  strings.TrimRight(base, "/"),
		token: token,
		http:  &http.Client{Transport: tr, Timeout: 30 * time.Second},
	}
}

// Error is an error answer from the API.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status) }

// slow is c for a request the server may take minutes over (an apply or a
// rollback: a big zone is parsed and uploaded): the same transport, and
// the server's apply deadline in place of 30 seconds.
func (c *Client) slow() *Client {
	cc := *c
	cc.http = &http.Client{Transport: c.http.Transport, Timeout: applyDeadline}
	return &cc
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = b
	}
	return c.send(ctx, method, path, "application/json", body, out)
}

func (c *Client) send(ctx context.Context, method, path, ctype string, in []byte, out any) error {
	var body io.Reader
	if in != nil {
		body = bytes.NewReader(in)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", ctype)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("api %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, DefaultMaxApplyBody)) // a shown version carries a configuration
	if err != nil {
		return fmt.Errorf("api %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var eb errorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error == "" {
			eb.Error = strings.TrimSpace(string(data))
		}
		return &Error{Status: resp.StatusCode, Message: eb.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("api %s %s: bad answer: %w", method, path, err)
	}
	return nil
}

func (c *Client) Status(ctx context.Context) (s Status, err error) {
	err = c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
	return s, err
}

func (c *Client) Members(ctx context.Context) (m []ClusterMember, err error) {
	err = c.do(ctx, http.MethodGet, "/v1/cluster/members", nil, &m)
	return m, err
}

func (c *Client) Join(ctx context.Context, r JoinRequest) error {
	return c.do(ctx, http.MethodPost, "/v1/cluster/join", r, nil)
}

func (c *Client) Remove(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/cluster/members/"+url.PathEscape(id), nil, nil)
}

func (c *Client) Pools(ctx context.Context) (p []Pool, err error) {
	err = c.do(ctx, http.MethodGet, "/v1/pools", nil, &p)
	return p, err
}

func (c *Client) SetAdmin(ctx context.Context, pool, address, state string) error {
	return c.do(ctx, http.MethodPut, "/v1/pools/"+url.PathEscape(pool)+"/members/"+url.PathEscape(address)+"/admin", AdminRequest{State: state}, nil)
}

// ShedSite sheds percent of a site's clients (0: none, 100: drain).
func (c *Client) ShedSite(ctx context.Context, site string, percent int) (r ShedResult, err error) {
	err = c.do(ctx, http.MethodPut, "/v1/sites/"+url.PathEscape(site)+"/shed", ShedRequest{Percent: percent}, &r)
	return r, err
}

func (c *Client) Versions(ctx context.Context) (v []ConfigVersion, err error) {
	err = c.do(ctx, http.MethodGet, "/v1/config/versions", nil, &v)
	return v, err
}

func (c *Client) Version(ctx context.Context, v uint64) (cv ConfigVersion, err error) {
	err = c.do(ctx, http.MethodGet, "/v1/config/versions/"+strconv.FormatUint(v, 10), nil, &cv)
	return cv, err
}

// Apply sends a whole configuration; r.Base must be the current version
// (409 otherwise) unless r.Force.
func (c *Client) Apply(ctx context.Context, r ApplyRequest) (res ApplyResult, err error) {
	err = c.slow().do(ctx, http.MethodPost, "/v1/config", r, &res)
	return res, err
}

// Rollback re-applies kept version v as a new version; r.Base must be the
// current version (409 otherwise) unless r.Force.
func (c *Client) Rollback(ctx context.Context, v uint64, r RollbackRequest) (res ApplyResult, err error) {
	err = c.slow().do(ctx, http.MethodPost, "/v1/config/versions/"+strconv.FormatUint(v, 10)+"/rollback", r, &res)
	return res, err
}

// Current returns the cluster's current configuration version (0 when it
// has none), from GET /v1/config/versions.
func (c *Client) Current(ctx context.Context) (uint64, error) {
	vs, err := c.Versions(ctx)
	if err != nil {
		return 0, err
	}
	for _, v := range vs {
		if v.Current {
			return v.Version, nil
		}
	}
	return 0, nil
}

// ApplyCommand forwards an encoded replicated-state command to the node
// (the leader) at this client's address.
func (c *Client) ApplyCommand(ctx context.Context, cmd []byte) (res CommandResult, err error) {
	err = c.send(ctx, http.MethodPost, "/v1/raft/apply", "application/octet-stream", cmd, &res)
	return res, err
}

func (c *Client) Explain(ctx context.Context, name, client string) (e Explanation, err error) {
	q := url.Values{"name": {name}, "client": {client}}
	err = c.do(ctx, http.MethodGet, "/v1/explain?"+q.Encode(), nil, &e)
	return e, err
}

// Alive returns nil when the node's API answers /healthz: the process is
// up, whatever its state.
func (c *Client) Alive(ctx context.Context) error {
	var body map[string]string
	return c.do(ctx, http.MethodGet, "/healthz", nil, &body)
}

// Ready returns nil when the node is ready, else why not.
func (c *Client) Ready(ctx context.Context) error {
	var body map[string]string
	err := c.do(ctx, http.MethodGet, "/readyz", nil, &body)
	return err
}
