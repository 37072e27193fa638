package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The request decoders' fuzz targets: random bodies (and, for rollback,
// path values) go to every route that reads one, through the real
// handler and its auth. Each answer must be JSON with the status the
// input deserves (200, 400 or 413, never 500), and the backend must be
// called exactly when the route answers 200, with what it validated.
// Seeds are in testdata/fuzz/<target>.

// fuzzLimit is the fuzz server's apply limit: small, so that the fuzzer
// reaches 413 as well.
const fuzzLimit = 4 << 10

// fuzzBackend is every backend the write routes call; it records calls.
type fuzzBackend struct {
	mu       sync.Mutex
	joins    []JoinRequest
	admins   []string
	applies  []ApplyRequest
	commands [][]byte
	rollback []uint64
}

func (b *fuzzBackend) Members(context.Context) ([]ClusterMember, error) { return nil, nil }
func (b *fuzzBackend) Join(_ context.Context, r JoinRequest) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.joins = append(b.joins, r)
	return nil
}
func (b *fuzzBackend) Remove(context.Context, string) error              { return nil }
func (b *fuzzBackend) Pools(context.Context) ([]Pool, error)             { return nil, nil }
func (b *fuzzBackend) Versions(context.Context) ([]ConfigVersion, error) { return nil, nil }
func (b *fuzzBackend) Version(context.Context, uint64) (ConfigVersion, error) {
	return ConfigVersion{}, nil
}
func (b *fuzzBackend) SetAdmin(_ context.Context, _, _, state string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.admins = append(b.admins, state)
	return nil
}
func (b *fuzzBackend) Apply(_ context.Context, r ApplyRequest) (ApplyResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.applies = append(b.applies, r)
	return ApplyResult{Version: 1}, nil
}
func (b *fuzzBackend) Rollback(_ context.Context, v uint64, _ RollbackRequest) (ApplyResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rollback = append(b.rollback, v)
	return ApplyResult{Version: v + 1}, nil
}
func (b *fuzzBackend) ApplyCommand(_ context.Context, cmd []byte) (CommandResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.commands = append(b.commands, bytes.Clone(cmd))
	return CommandResult{Index: 1}, nil
}

// lastCall returns the last call recorded in calls, one of b's lists.
func lastCall[T any](b *fuzzBackend, calls *[]T) T {
	b.mu.Lock()
	defer b.mu.Unlock()
	return (*calls)[len(*calls)-1]
}

// calls is how many times the backend was called in all.
func (b *fuzzBackend) calls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.joins) + len(b.admins) + len(b.applies) + len(b.commands) + len(b.rollback)
}

// fuzzServer is a server with every write backend and a token, and its
// handler (the fuzzer calls it directly, without sockets).
func fuzzServer(f *testing.F) (*Server, *fuzzBackend) {
	f.Helper()
	b := &fuzzBackend{}
	s, err := New(Options{Addr: "127.0.0.1:0", Token: "tok", MaxApplyBody: fuzzLimit, Cluster: b, Pools: b, Configs: b, Forwarder: b})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.ln.Close() })
	return s, b
}

// fuzzCall sends body to method path and checks what every answer must
// be: JSON, a status in allowed, an error message on failure, and a
// backend call exactly on 200. It returns the status.
func fuzzCall(t *testing.T, s *Server, b *fuzzBackend, method, path string, body []byte, allowed ...int) int {
	t.Helper()
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	r.Header.Set("Authorization", "Bearer tok")
	w := httptest.NewRecorder()
	before := b.calls()
	s.Handler().ServeHTTP(w, r)
	called := b.calls() - before
	ok := false
	for _, a := range allowed {
		ok = ok || w.Code == a
	}
	if !ok {
		t.Fatalf("%s %s with %q: HTTP %d %s, want one of %v", method, path, body, w.Code, w.Body.String(), allowed)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("answer's Content-Type %q", ct)
	}
	var eb errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &eb); w.Code != 200 && (err != nil || eb.Error == "") {
		t.Fatalf("HTTP %d answer %q is not an error body: %v", w.Code, w.Body.String(), err)
	}
	if (w.Code == 200) != (called == 1) || called > 1 {
		t.Fatalf("HTTP %d but the backend was called %d times", w.Code, called)
	}
	if len(body) > fuzzLimit && w.Code != http.StatusRequestEntityTooLarge && w.Code != http.StatusBadRequest {
		t.Fatalf("a %d-byte body over the %d limit got HTTP %d", len(body), fuzzLimit, w.Code)
	}
	return w.Code
}

// strictJSON reports whether body is exactly one JSON value of v's type
// without unknown fields, as the handlers decode it.
func strictJSON(body []byte, v any) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if dec.Decode(v) != nil {
		return false
	}
	_, err := dec.Token()
	return errors.Is(err, io.EOF)
}

func FuzzJoinBody(f *testing.F) {
	s, b := fuzzServer(f)
	f.Add([]byte(`{"id":"n2","raft_addr":"127.0.0.1:7000","api_addr":"127.0.0.1:8054","fresh":true}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		code := fuzzCall(t, s, b, "POST", "/v1/cluster/join", body, 200, 400, 413)
		var req JoinRequest
		valid := len(body) <= maxSmallBody && strictJSON(body, &req) && req.ID != "" && req.RaftAddr != ""
		if (code == 200) != valid {
			t.Fatalf("join %q: HTTP %d, but the body is valid=%v (%+v)", body, code, valid, req)
		}
		if code == 200 {
			if got := lastCall(b, &b.joins); got != req {
				t.Fatalf("the backend got %+v, the body says %+v", got, req)
			}
		}
	})
}

func FuzzAdminBody(f *testing.F) {
	s, b := fuzzServer(f)
	f.Add([]byte(`{"state":"drain"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		code := fuzzCall(t, s, b, "PUT", "/v1/pools/web/members/192.0.2.1/admin", body, 200, 400, 413)
		var req AdminRequest
		valid := len(body) <= maxSmallBody && strictJSON(body, &req)
		switch req.State {
		case "auto", "up", "down", "drain":
		default:
			valid = false
		}
		if (code == 200) != valid {
			t.Fatalf("admin %q: HTTP %d, but the body is valid=%v (%+v)", body, code, valid, req)
		}
	})
}

func FuzzApplyBody(f *testing.F) {
	s, b := fuzzServer(f)
	f.Add([]byte(`{"main":"tern.yaml","files":{"tern.yaml":"node: {name: n1}\n","z.zone":"@ SOA ns h 1 2 3 4 5\n"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		code := fuzzCall(t, s, b, "POST", "/v1/config", body, 200, 400, 413)
		var req ApplyRequest
		valid := len(body) <= fuzzLimit && strictJSON(body, &req) && req.Main != "" && req.Files[req.Main] != ""
		if (code == 200) != valid {
			t.Fatalf("apply %q: HTTP %d, but the body is valid=%v", body, code, valid)
		}
	})
}

func FuzzForwardBody(f *testing.F) {
	s, b := fuzzServer(f)
	f.Add([]byte(`{"v":1,"type":"admin.set","body":{"states":[]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		code := fuzzCall(t, s, b, "POST", "/v1/raft/apply", body, 200, 413)
		if (code == 200) != (len(body) <= fuzzLimit) {
			t.Fatalf("a %d-byte command: HTTP %d (limit %d)", len(body), code, fuzzLimit)
		}
		if code == 200 {
			if got := lastCall(b, &b.commands); !bytes.Equal(got, body) {
				t.Fatalf("the backend got %q, not the command's bytes %q", got, body)
			}
		}
	})
}

func FuzzRollbackVersion(f *testing.F) {
	s, b := fuzzServer(f)
	f.Add("3", []byte(nil))
	f.Fuzz(func(t *testing.T, v string, body []byte) {
		if strings.ContainsAny(v, "/?#%") || v == "" || v == "." || v == ".." || !validPathSegment(v) {
			return // not one path segment: another route, or no request at all
		}
		code := fuzzCall(t, s, b, "POST", "/v1/config/versions/"+v+"/rollback", body, 200, 400)
		n, err := strconv.ParseUint(v, 10, 64)
		if valid := err == nil && n > 0 && (len(body) == 0 || strictJSON(body, &RollbackRequest{})); (code == 200) != valid {
			t.Fatalf("rollback %q: HTTP %d, but valid=%v", v, code, valid)
		}
		if code == 200 {
			if got := lastCall(b, &b.rollback); got != n {
				t.Fatalf("rollback %q reached the backend as %d", v, got)
			}
		}
	})
}

// validPathSegment reports whether s can stand in a request path as it
// is (printable ASCII, no space).
func validPathSegment(s string) bool {
	for _, r := range s {
		if r <= ' ' || r >= 0x7f {
			return false
		}
	}
	return true
}
