package test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The README's shell blocks are run by TestREADME, in order, each in a
// fresh bash from the top of a scratch copy of the repository. A block
// that cannot run in a test says so on the line before its fence:
//
//	<!-- illustrative: why -->
//
// A block that needs settings the text asks the reader to add names the
// file on that line instead, and the test adds the last ```yaml block
// before it to that file (of the scratch copy) first:
//
//	<!-- with the yaml above added to examples/tern.yaml -->
//
// A line that starts a node (tern serve, make run) is started in the
// background, and the next lines run once it logs that it serves. It
// runs until a line starts a node without a trailing & (which stops every
// node running first), or to the end; nodes started with & run side by
// side (a cluster's), and one whose tern serve command (and leading cd)
// is that of a running node restarts that node alone (a rolling
// restart).
//
// /etc/tern/ in a command is a folder of the test's own, so that the
// host's /etc stays as it was.

// readmeBlock is one ```sh block of README.md.
type readmeBlock struct {
	line         int    // of the opening fence
	illustrative string // the reason, when it is marked so
	addTo        string // the file the yaml is added to first, if any
	yaml         string // the last ```yaml block before it
	lines        []string
}

var (
	illustrativeMark = regexp.MustCompile(`^<!-- illustrative: (.*\S) -->$`)
	addYAMLMark      = regexp.MustCompile(`^<!-- with the yaml above added to (\S+) -->$`)
)

// readmeBlocks parses the ```sh blocks of the file at path, joining lines
// continued with a backslash.
func readmeBlocks(t *testing.T, path string) []readmeBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []readmeBlock
	var cur *readmeBlock
	var yaml []string // the last ```yaml block; inYAML while in one
	inYAML := false
	prev := ""
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case cur == nil && !inYAML && line == "```yaml":
			inYAML, yaml = true, nil
		case inYAML && line == "```":
			inYAML = false
		case inYAML:
			yaml = append(yaml, line)
		case cur == nil && line == "```sh":
			cur = &readmeBlock{line: n}
			if m := illustrativeMark.FindStringSubmatch(prev); m != nil {
				cur.illustrative = m[1]
			} else if m := addYAMLMark.FindStringSubmatch(prev); m != nil {
				cur.addTo, cur.yaml = m[1], strings.Join(yaml, "\n")+"\n"
			} else if strings.Contains(prev, "illustrative") || strings.HasPrefix(prev, "<!-- with") {
				t.Errorf("README.md:%d: write the mark as <!-- illustrative: REASON --> or <!-- with the yaml above added to FILE -->", n-1)
			}
		case cur != nil && line == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			if k := len(cur.lines); k > 0 && strings.HasSuffix(cur.lines[k-1], `\`) {
				cur.lines[k-1] = strings.TrimSuffix(cur.lines[k-1], `\`) + " " + strings.TrimSpace(line)
			} else {
				cur.lines = append(cur.lines, line)
			}
		}
		if strings.TrimSpace(line) != "" {
			prev = line
		}
	}
	if cur != nil {
		t.Fatalf("README.md:%d: block not closed", cur.line)
	}
	return blocks
}

// startsNode reports whether a shell line runs a node.
func startsNode(line string) bool {
	code, _, _ := strings.Cut(line, "#")
	return strings.Contains(code, "tern serve") || strings.TrimSpace(code) == "make run"
}

var leadingCd = regexp.MustCompile(`^cd (\S+) &&`)

// nodeKey is what names the node a line starts: its leading cd and its
// tern serve command, whatever runs before that (a recovery, a wiped
// folder).
func nodeKey(code string) string {
	dir := ""
	if m := leadingCd.FindStringSubmatch(code); m != nil {
		dir = m[1]
	}
	_, serve, ok := strings.Cut(code, "tern serve")
	if !ok {
		return code // make run
	}
	return dir + ": tern serve " + strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(serve), "&"))
}

// TestREADMELinks: everything the README points at is in the
// repository: relative links name files that exist, nothing leaves the
// top folder, and no address outside it is linked.
func TestREADMELinks(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if strings.Contains(text, "../") {
		t.Error("README.md names a path above the repository (../)")
	}
	for _, m := range regexp.MustCompile(`\]\(([^)\s]+)\)`).FindAllStringSubmatch(text, -1) {
		target := m[1]
		switch {
		case strings.HasPrefix(target, "#"):
		case strings.Contains(target, "://"), strings.HasPrefix(target, "/"):
			t.Errorf("README.md links %s, outside the repository", target)
		default:
			p, _, _ := strings.Cut(target, "#")
			if _, err := os.Stat(filepath.Join("..", p)); err != nil {
				t.Errorf("README.md links %s: %v", target, err)
			}
		}
	}
}

// TestREADME runs the README's shell blocks (see above) in a network
// namespace of its own, so that their fixed loopback ports (5354, 8054)
// are free whatever else runs on the machine.
func TestREADME(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the README's commands run in a network namespace of their own")
	}
	if testing.Short() {
		t.Skip("-short: builds and serves the README's examples")
	}
	for _, tool := range []string{"ip", "dig", "openssl", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	bin := ternBinary(t)
	blocks := readmeBlocks(t, "../README.md")
	scratch := scratchRepo(t)
	ns := fmt.Sprintf("tern-readme-%d", os.Getpid())
	nsExec(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	nsExec(t, "ip", "-n", ns, "link", "set", "lo", "up")
	env := append(os.Environ(), "PATH="+filepath.Dir(bin)+":/usr/local/go/bin:"+os.Getenv("PATH"))
	etcTern := filepath.Join(t.TempDir(), "etc", "tern") // for /etc/tern/
	if err := os.MkdirAll(etcTern, 0o750); err != nil {
		t.Fatal(err)
	}

	type node struct {
		key  string // nodeKey
		cmd  *exec.Cmd
		done chan struct{} // closed when it has exited
	}
	var nodes []*node
	stopNode := func(n *node) {
		syscall.Kill(-n.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(15 * time.Second):
			syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
			<-n.done
		}
	}
	stop := func() {
		for _, n := range nodes {
			stopNode(n)
		}
		nodes = nil
	}
	t.Cleanup(stop)
	shell := func(script string) *exec.Cmd {
		cmd := exec.Command("ip", "netns", "exec", ns, "bash", "-e", "-o", "pipefail", "-c", script)
		cmd.Dir, cmd.Env = scratch, env
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		return cmd
	}

	ran, skipped := 0, 0
	var nodeOut *lockedBuffer // the last node's
	for _, b := range blocks {
		if b.illustrative != "" {
			skipped++
			t.Logf("README.md:%d: illustrative (%s)", b.line, b.illustrative)
			continue
		}
		ran++
		if b.addTo != "" {
			f, err := os.OpenFile(filepath.Join(scratch, b.addTo), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatalf("README.md:%d: %v", b.line, err)
			}
			_, err = f.WriteString("\n" + b.yaml)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatalf("README.md:%d: %v", b.line, err)
			}
		}
		var seg []string
		flush := func() {
			if len(seg) == 0 {
				return
			}
			script := strings.Join(seg, "\n")
			seg = nil
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			outB, err := runWithin(ctx, shell(script))
			if err != nil {
				node := ""
				if nodeOut != nil {
					node = "\nthe node's last lines:\n" + tail(nodeOut.String(), 20)
				}
				t.Fatalf("README.md:%d: %v\n%s\n%s%s", b.line, err, script, outB, node)
			}
		}
		for _, l := range b.lines {
			l = strings.ReplaceAll(l, "/etc/tern/", etcTern+"/")
			if !startsNode(l) {
				seg = append(seg, l)
				continue
			}
			flush()
			code, _, _ := strings.Cut(l, "#")
			code = strings.TrimSpace(code)
			key := nodeKey(code)
			if !strings.HasSuffix(code, "&") {
				stop()
			}
			for i, n := range nodes {
				if n.key == key { // restarted alone
					stopNode(n)
					nodes = append(nodes[:i], nodes[i+1:]...)
					break
				}
			}
			n := &node{key: key, cmd: shell(strings.TrimSuffix(code, "&")), done: make(chan struct{})}
			nodeOut = &lockedBuffer{}
			n.cmd.Stdout, n.cmd.Stderr = nodeOut, nodeOut
			if err := n.cmd.Start(); err != nil {
				t.Fatal(err)
			}
			nodes = append(nodes, n)
			go func() { n.cmd.Wait(); close(n.done) }()
			deadline := time.After(3 * time.Minute) // make run builds first
			for !strings.Contains(nodeOut.String(), "msg=serving") {
				select {
				case <-n.done:
					t.Fatalf("README.md:%d: %s exited:\n%s", b.line, l, tail(nodeOut.String(), 30))
				case <-deadline:
					t.Fatalf("README.md:%d: %s did not serve:\n%s", b.line, l, tail(nodeOut.String(), 30))
				case <-time.After(50 * time.Millisecond):
				}
			}
		}
		flush()
	}
	if ran == 0 || skipped > ran {
		t.Errorf("%d blocks run, %d illustrative: the README's commands should run", ran, skipped)
	}
	t.Logf("%d blocks run, %d illustrative", ran, skipped)
}

// runWithin runs cmd until it exits or ctx ends (then its process group
// is killed) and returns its output.
func runWithin(ctx context.Context, cmd *exec.Cmd) (string, error) {
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-ctx.Done():
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return out.String(), ctx.Err()
	}
}

// scratchRepo copies the repository's files (git's, as they are in the
// working tree) into a temporary folder.
func scratchRepo(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = ".."
	list, err := cmd.Output()
	if err != nil {
		t.Skipf("git ls-files: %v (not a git checkout)", err)
	}
	dir := t.TempDir()
	for _, f := range strings.Split(strings.TrimRight(string(list), "\x00"), "\x00") {
		src := filepath.Join("..", f)
		st, err := os.Lstat(src)
		if err != nil {
			continue // deleted in the working tree
		}
		dst := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if st.Mode()&os.ModeSymlink != 0 {
			target, _ := os.Readlink(src)
			os.Symlink(target, dst)
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, st.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
