package api

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// fakeConfigs records the changes it gets; a change based on another
// version than current is a conflict, as the node's FSM decides.
type fakeConfigs struct {
	mu      sync.Mutex
	current uint64
	got     []Change
}

func (f *fakeConfigs) Versions(context.Context) ([]ConfigVersion, error) {
	return []ConfigVersion{{Version: f.current, Current: true}}, nil
}

func (f *fakeConfigs) Version(_ context.Context, v uint64) (ConfigVersion, error) {
	return ConfigVersion{Version: v}, nil
}

func (f *fakeConfigs) change(ch Change) (ApplyResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, ch)
	if ch.Base != f.current && !ch.Force {
		return ApplyResult{}, fmt.Errorf("%w: based on version %d, the current version is %d", ErrConflict, ch.Base, f.current)
	}
	f.current++
	return ApplyResult{Version: f.current, Changed: true}, nil
}

func (f *fakeConfigs) Apply(_ context.Context, r ApplyRequest) (ApplyResult, error) {
	return f.change(r.Change)
}

func (f *fakeConfigs) Rollback(_ context.Context, _ uint64, r RollbackRequest) (ApplyResult, error) {
	return f.change(r.Change)
}

func TestConfigChanges(t *testing.T) {
	f := &fakeConfigs{current: 3}
	s := serve(t, Options{Configs: f})
	c := NewClient(s.Addr().String(), "", nil)
	ctx := context.Background()
	req := ApplyRequest{Main: "tern.yaml", Files: map[string]string{"tern.yaml": "x"}}

	if cur, err := c.Current(ctx); err != nil || cur != 3 {
		t.Fatalf("Current = %d, %v", cur, err)
	}
	req.Change = Change{Base: 2, Comment: "stale", Client: "forged"}
	_, err := c.Apply(ctx, req)
	if ae, ok := err.(*Error); !ok || ae.Status != http.StatusConflict || !strings.Contains(ae.Message, "current version is 3") {
		t.Fatalf("a stale apply: %v, want 409 naming the current version", err)
	}
	req.Change = Change{Base: 2, Force: true, Comment: "forced"}
	if res, err := c.Apply(ctx, req); err != nil || res.Version != 4 {
		t.Fatalf("a forced apply: %+v %v", res, err)
	}
	if res, err := c.Rollback(ctx, 1, RollbackRequest{Change{Base: 4, Comment: "back"}}); err != nil || res.Version != 5 {
		t.Fatalf("a rollback: %+v %v", res, err)
	}
	// No body (an older client): based on version 0, refused.
	resp, err := http.Post("http://"+s.Addr().String()+"/v1/config/versions/1/rollback", "application/json", nil)
	if err != nil || resp.StatusCode != http.StatusConflict {
		t.Fatalf("a rollback without a body: %v %v, want 409", resp.Status, err)
	}
	resp.Body.Close()
	resp, err = http.Post("http://"+s.Addr().String()+"/v1/config", "application/json", bytes.NewReader([]byte(`{"main":"a","files":{"a":"x"},"base":5,"client":"forged"}`)))
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a request naming its own client address: %v %v, want 400", resp.Status, err)
	}
	resp.Body.Close()

	want := []Change{{Base: 2, Comment: "stale"}, {Base: 2, Force: true, Comment: "forced"}, {Base: 4, Comment: "back"}, {}}
	if len(f.got) != len(want) {
		t.Fatalf("changes: %+v", f.got)
	}
	for i, ch := range f.got {
		if !strings.HasPrefix(ch.Client, "127.0.0.1:") {
			t.Errorf("change %d: client %q, want the sender's address", i, ch.Client)
		}
		ch.Client = ""
		if ch != want[i] {
			t.Errorf("change %d: %+v, want %+v", i, ch, want[i])
		}
	}
}
