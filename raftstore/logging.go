package raftstore

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// newHCLog returns an hclog.Logger (what raft speaks) that writes through
// l, so that Raft's messages reach the node's slog handler with levels.
func newHCLog(l *slog.Logger) hclog.Logger {
	if l == nil {
		return hclog.New(&hclog.LoggerOptions{Name: "raft", Output: io.Discard, Level: hclog.Off})
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:        "raft",
		Level:       hclog.Info,
		Output:      &slogWriter{l: l},
		DisableTime: true,
	})
}

// slogWriter turns hclog's text lines ("[WARN]  raft: msg: k=v") into slog
// records.
type slogWriter struct{ l *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		s := string(line)
		lvl := slog.LevelInfo
		if strings.HasPrefix(s, "[") {
			if end := strings.IndexByte(s, ']'); end > 0 {
				switch s[1:end] {
				case "TRACE", "DEBUG":
					lvl = slog.LevelDebug
				case "WARN":
					lvl = slog.LevelWarn
				case "ERROR":
					lvl = slog.LevelError
				}
				s = strings.TrimSpace(s[end+1:])
			}
		}
		w.l.Log(context.Background(), lvl, s)
	}
	return len(p), nil
}
