package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
)

type fakeForwarder struct{ got [][]byte }

func (f *fakeForwarder) ApplyCommand(_ context.Context, cmd []byte) (CommandResult, error) {
	if bytes.Equal(cmd, []byte("bad")) {
		return CommandResult{}, fmt.Errorf("%w: malformed command", ErrInvalid)
	}
	if bytes.Equal(cmd, []byte("follower")) {
		return CommandResult{}, fmt.Errorf("%w: not the leader", ErrUnavailable)
	}
	f.got = append(f.got, bytes.Clone(cmd))
	return CommandResult{Index: 42, Changed: true, Version: 3}, nil
}

// The forward endpoint passes the command's bytes through untouched,
// answers the leader's result, maps errors, and needs the write token.
func TestForwardCommand(t *testing.T) {
	f := &fakeForwarder{}
	s := serve(t, Options{Token: "tok", Forwarder: f})
	ctx := context.Background()
	c := NewClient(s.Addr().String(), "tok", nil)
	cmd := []byte(`{"v":1,"type":"admin.set","body":{}}` + "\x00\xff")
	res, err := c.ApplyCommand(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if res != (CommandResult{Index: 42, Changed: true, Version: 3}) || len(f.got) != 1 || !bytes.Equal(f.got[0], cmd) {
		t.Fatalf("result %+v, forwarded %q", res, f.got)
	}
	for _, tc := range []struct {
		name  string
		c     *Client
		cmd   string
		code  int
		calls int
	}{
		{"no token", NewClient(s.Addr().String(), "", nil), "x", http.StatusUnauthorized, 1},
		{"invalid", c, "bad", http.StatusBadRequest, 1},
		{"not leader", c, "follower", http.StatusServiceUnavailable, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var apiErr *Error
			_, err := tc.c.ApplyCommand(ctx, []byte(tc.cmd))
			if !errors.As(err, &apiErr) || apiErr.Status != tc.code || len(f.got) != tc.calls {
				t.Fatalf("got %v (%d forwarded), want HTTP %d", err, len(f.got), tc.code)
			}
		})
	}
	if _, err := NewClient(serve(t, Options{}).Addr().String(), "", nil).ApplyCommand(ctx, cmd); err == nil {
		t.Fatal("a node without a Forwarder accepted a command")
	}
}
