package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Snapshotter writes a backup of the replicated state (`tern snapshot
// save`): the leader's, after a barrier.
type Snapshotter interface {
	// Backup writes the backup to w. Nothing is written before the state
	// is known good, so an error before the first byte can still be
	// answered with its status.
	Backup(ctx context.Context, w io.Writer) error
}

// snapshotRoutes serves GET /v1/snapshot: an operator's call (the whole
// state, configurations included), so it needs the write token.
func (s *Server) snapshotRoutes() {
	s.handle("GET /v1/snapshot", s.auth(operator)(wired(s.o.Snapshots, func(w http.ResponseWriter, r *http.Request) {
		extendDeadlines(w)
		lw := &lazyWriter{w: w}
		if err := s.o.Snapshots.Backup(r.Context(), lw); err != nil {
			if !lw.started {
				writeError(w, err)
				return
			}
			s.o.Logger.Warn("snapshot cut short", "err", err)
		}
	})))
}

// lazyWriter sets the content type at the first byte.
type lazyWriter struct {
	w       http.ResponseWriter
	started bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.Header().Set("Content-Type", "application/octet-stream")
		l.w.WriteHeader(http.StatusOK)
	}
	return l.w.Write(p)
}

// Snapshot streams the cluster's backup (GET /v1/snapshot) to w.
func (c *Client) Snapshot(ctx context.Context, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/snapshot", nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.slow().http.Do(req)
	if err != nil {
		return fmt.Errorf("api %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var eb errorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error == "" {
			eb.Error = strings.TrimSpace(string(data))
		}
		return &Error{Status: resp.StatusCode, Message: eb.Error}
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("api %s GET /v1/snapshot: %w", c.base, err)
	}
	return nil
}
