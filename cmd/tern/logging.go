package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ternlb/tern/config"
)

// logFlags are the flags of the commands that run until stopped (serve,
// dispatch, decap): how much they log and in which form.
func logFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"TERN_LOG_LEVEL"}, Usage: "`LEVEL`: debug (every probe, API request and snapshot swap), info, warn or error"},
		&cli.StringFlag{Name: "log-format", Value: "text", EnvVars: []string{"TERN_LOG_FORMAT"}, Usage: "`FORMAT`: text (logfmt key=value) or json (one object a line)"},
	}
}

// commandLogger is the logger logFlags ask for, writing to the app's
// error writer (stderr).
func commandLogger(c *cli.Context) (*slog.Logger, error) {
	return newLogger(c.App.ErrWriter, c.String("log-level"), c.String("log-format"))
}

// newLogger is a slog logger of level and format writing to w. Every
// record is one line: a value with a line break (a list of configuration
// problems, a panic's stack) has its breaks replaced by "; " rather than
// escaped as \n inside the line, which is how log shippers and grep read
// it best.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: write debug, info, warn or error", level)
	}
	o := &slog.HandlerOptions{Level: l, ReplaceAttr: singleLine}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, usagef("--log-format %q: write text or json", format)
}

// singleLine is the handlers' ReplaceAttr: string, error and Stringer values
// with line breaks become one line.
func singleLine(_ []string, a slog.Attr) slog.Attr {
	v := a.Value
	var s string
	switch v.Kind() {
	case slog.KindString:
		s = v.String()
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			s = x.Error()
		case fmt.Stringer:
			s = x.String()
		default:
			return a
		}
		if !strings.ContainsAny(s, "\r\n") {
			return a
		}
	default:
		return a
	}
	if !strings.ContainsAny(s, "\r\n") {
		return a
	}
	return slog.String(a.Key, flatten(s))
}

// flatten joins s's lines with "; ", dropping empty ones and the
// indentation of continuation lines.
func flatten(s string) string {
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	out := lines[:0]
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "; ")
}

// logProblems logs err's configuration problems one record each (so each
// keeps its file:line), or err itself when it is not a list of them.
func logProblems(log *slog.Logger, msg string, err error) {
	var ps config.Problems
	if errors.As(err, &ps) {
		log.Error(msg, "problems", len(ps))
		for _, p := range ps {
			log.Error("configuration problem", "problem", p.String())
		}
		return
	}
	log.Error(msg, "err", err)
}
