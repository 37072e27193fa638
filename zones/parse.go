package zones

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/config"
)

// source is one zone file being parsed. It hands the parser one byte at a
// time (miekg/dns uses an io.ByteReader as it is, without buffering), so
// the number of lines consumed so far tells which lines a record came from.
type source struct {
	tr      *tracker
	path    string // in the fs.FS
	display string
	data    []byte
	off     int // next byte to read
	lines   int // newlines read

	// where the previous record from this file ended, the line that
	// offset is on, and the line that record started on
	lastOff     int
	lastOffLine int
	lastLine    int
}

func (s *source) ReadByte() (byte, error) {
	if s.tr.last != s {
		s.tr.last = s
	}
	if s.off >= len(s.data) {
		return 0, io.EOF
	}
	c := s.data[s.off]
	s.off++
	if c == '\n' {
		s.lines++
	}
	return c, nil
}

func (s *source) Read(p []byte) (int, error) {
	if s.tr.last != s {
		s.tr.last = s
	}
	if s.off >= len(s.data) {
		return 0, io.EOF
	}
	n := copy(p, s.data[s.off:])
	s.lines += bytes.Count(p[:n], []byte{'\n'})
	s.off += n
	return n, nil
}

func (s *source) Stat() (fs.FileInfo, error) { return fileInfo{s}, nil }
func (s *source) Close() error               { return nil }

type fileInfo struct{ s *source }

func (fi fileInfo) Name() string       { return path.Base(fi.s.path) }
func (fi fileInfo) Size() int64        { return int64(len(fi.s.data)) }
func (fi fileInfo) Mode() fs.FileMode  { return 0o444 }
func (fi fileInfo) ModTime() time.Time { return time.Time{} }
func (fi fileInfo) IsDir() bool        { return false }
func (fi fileInfo) Sys() any           { return nil }

// recordLine returns the line the record just returned by the parser
// starts on: the first line since the previous record that is not blank,
// a comment or a directive that yields no record ($TTL, $ORIGIN,
// $INCLUDE). Records a $GENERATE yields after its first share its line.
func (s *source) recordLine() int {
	line := s.lastLine
	off, n := s.lastOff, s.lastOffLine
	for off < s.off {
		end := bytes.IndexByte(s.data[off:], '\n')
		if end < 0 {
			end = len(s.data)
		} else {
			end += off
		}
		if content(s.data[off:end]) {
			line = n
			break
		}
		off, n = end+1, n+1
	}
	s.lastOff, s.lastOffLine, s.lastLine = s.off, s.lines+1, line
	return line
}

// content reports whether a line can start a record.
func content(l []byte) bool {
	l = bytes.TrimLeft(l, " \t\r")
	if len(l) == 0 || l[0] == ';' {
		return false
	}
	for _, d := range []string{"$TTL", "$ORIGIN", "$INCLUDE"} {
		if len(l) > len(d) && strings.EqualFold(string(l[:len(d)]), d) && (l[len(d)] == ' ' || l[len(d)] == '\t') {
			return false
		}
	}
	return true
}

// tracker is the fs.FS the parser opens $INCLUDE files through: it keeps
// them inside root, counts their lines and remembers which file the parser
// read last.
type tracker struct {
	fsys    fs.FS
	root    string // directory (in fsys) includes must stay in
	top     *source
	last    *source
	sources []*source
	openErr string // why the last $INCLUDE failed, for the message
}

func (t *tracker) Open(name string) (fs.File, error) {
	if !within(name, t.root) {
		t.openErr = fmt.Sprintf("$INCLUDE %q: the file is outside %q, the zone file's directory; move it there or below", t.displayOf(name), filepath.Dir(t.top.display))
		return nil, fmt.Errorf("open %q: %w", name, errOutside)
	}
	data, err := fs.ReadFile(t.fsys, name)
	if err != nil {
		why := err
		var pe *fs.PathError
		if errors.As(err, &pe) {
			why = pe.Err
		}
		t.openErr = fmt.Sprintf("$INCLUDE %q: %v", t.displayOf(name), why)
		return nil, err
	}
	return t.add(name, data), nil
}

func (t *tracker) add(name string, data []byte) *source {
	s := &source{tr: t, path: name, display: t.displayOf(name), data: data, lastOffLine: 1, lastLine: 1}
	t.sources = append(t.sources, s)
	return s
}

// displayOf names a file in fsys as the operator knows it: relative to the
// directory of the zone file's display name.
func (t *tracker) displayOf(name string) string {
	if t.top == nil {
		return name
	}
	if name == t.top.path {
		return t.top.display
	}
	rel := name
	if t.root != "." {
		var ok bool
		if rel, ok = strings.CutPrefix(name, t.root+"/"); !ok {
			return name
		}
	}
	return filepath.Join(filepath.Dir(t.top.display), filepath.FromSlash(rel))
}

func within(name, root string) bool {
	if !fs.ValidPath(name) {
		return false
	}
	if root == "." {
		return true
	}
	return strings.HasPrefix(name, root+"/")
}

// read parses data, the zone file at file in fsys, and hands each record
// to emit as the parser yields it, with the display name of the file it
// came from and its line. A syntax error stops the parse (miekg/dns
// cannot go on past one); it is returned as a problem and syntaxErr is
// true.
func read(fsys fs.FS, file, display, origin string, data []byte, emit func(rr dns.RR, file string, line int)) (ps config.Problems, syntaxErr bool) {
	t := &tracker{fsys: fsys, root: path.Dir(file)}
	t.top = &source{tr: t, path: file, display: display, data: data, lastOffLine: 1, lastLine: 1}
	t.sources = append(t.sources, t.top)
	t.last = t.top

	zp := dns.NewZoneParser(t.top, origin, file)
	zp.SetIncludeAllowed(true)
	zp.SetIncludeFS(t)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		s := t.last
		emit(rr, s.display, s.recordLine())
	}
	if err := zp.Err(); err != nil {
		return config.Problems{t.syntaxProblem(err, origin)}, true
	}
	return nil, false
}

// syntaxProblem turns a miekg/dns parse error, which only offers its text
// ("FILE: dns: MESSAGE: "TOKEN" at line: L:C"), into a Problem.
func (t *tracker) syntaxProblem(err error, origin string) config.Problem {
	msg := err.Error()
	p := config.Problem{File: t.top.display}
	// The longest matching path first: "a.zone" is a prefix of "a.zone.inc".
	best := -1
	for i, s := range t.sources {
		if strings.HasPrefix(msg, s.path+": ") && (best < 0 || len(s.path) > len(t.sources[best].path)) {
			best = i
		}
	}
	if best >= 0 {
		p.File = t.sources[best].display
		msg = strings.TrimPrefix(msg, t.sources[best].path+": ")
	}
	msg = strings.TrimPrefix(msg, "dns: ")
	col := ""
	if i := strings.LastIndex(msg, " at line: "); i >= 0 {
		pos := msg[i+len(" at line: "):]
		msg = msg[:i]
		l, c, _ := strings.Cut(pos, ":")
		p.Line, _ = strconv.Atoi(l)
		col = c
	}
	// msg is now `MESSAGE: "TOKEN"`; the token is quoted with every " escaped.
	token := ""
	if i := strings.LastIndex(msg, `: "`); i >= 0 && strings.HasSuffix(msg, `"`) {
		token, msg = msg[i+2:], msg[:i]
	}
	switch {
	case strings.HasPrefix(msg, "failed to open") && t.openErr != "":
		msg = t.openErr
	case msg == "bad owner name" && origin == "" && !strings.HasSuffix(token, `."`):
		msg = fmt.Sprintf("relative owner name %s without an origin: start the file with $ORIGIN or give the zone an origin: in the configuration", token)
	case msg == "":
		msg = "bad record data"
	case msg == "unexpected newline":
		msg = "the record ends before its data"
	case token != "" && token != `""` && token != `"\n"`:
		msg = fmt.Sprintf("%s: %s", msg, token)
	}
	if col != "" && col != "0" {
		msg += " (column " + col + ")"
	}
	p.Msg = "syntax error: " + msg
	return p
}
