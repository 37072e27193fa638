package main

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func runOK(t *testing.T, args ...string) string {
	t.Helper()
	app := newApp()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	app.ExitErrHandler = func(*cli.Context, error) {}
	// urfave/cli's completion reads os.Args, not Run's arguments.
	saved := os.Args
	os.Args = append([]string{"tern"}, args...)
	defer func() { os.Args = saved }()
	if err := app.Run(os.Args); err != nil {
		t.Fatalf("tern %v: %v\n%s", args, err, out.String())
	}
	return out.String()
}

func TestCompletionCandidates(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--generate-bash-completion"}, []string{"serve", "check", "apply", "explain", "member", "cluster", "completion"}},
		{[]string{"member", "--generate-bash-completion"}, []string{"drain", "down", "up", "auto"}},
		{[]string{"cluster", "--generate-bash-completion"}, []string{"members", "remove"}},
	} {
		got := strings.Fields(runOK(t, tc.args...))
		for _, w := range tc.want {
			if !contains(got, w) {
				t.Errorf("tern %v offers %v, lacks %q", tc.args, got, w)
			}
		}
	}
}

func TestCompletionScriptsParse(t *testing.T) {
	for shell, check := range map[string][]string{"bash": {"bash", "-n"}, "zsh": {"zsh", "-n"}, "fish": {"fish", "-n"}} {
		script := runOK(t, "completion", shell)
		if _, err := exec.LookPath(check[0]); err != nil {
			t.Logf("%s not installed; not checking its syntax", check[0])
			continue
		}
		cmd := exec.Command(check[0], check[1:]...)
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s completion script does not parse: %v\n%s", shell, err, out)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}

var update = flag.Bool("update", false, "rewrite the generated files (docs/tern.1, contrib/completion/)")

// The generated files the package installs are what the binary
// generates: make man rewrites them (go test -update does too).
func TestGeneratedFilesInSync(t *testing.T) {
	page, err := manPage()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"../../docs/tern.1":                  page,
		"../../contrib/completion/tern.bash": bashCompletion,
		"../../contrib/completion/_tern":     zshCompletion,
		"../../contrib/completion/tern.fish": fishCompletion,
	}
	for path, want := range files {
		if *update {
			os.MkdirAll(filepath.Dir(path), 0o755)
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("%s is not what tern generates (%v): run make man", path, err)
		}
	}
	for _, want := range []string{"member", "pool", "config", "EXIT STATUS", "TERN_API", "--output"} {
		if !strings.Contains(page, want) {
			t.Errorf("tern.1 lacks %q", want)
		}
	}
	if _, err := exec.LookPath("groff"); err == nil {
		cmd := exec.Command("groff", "-man", "-ww", "-z")
		cmd.Stdin = strings.NewReader(page)
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("groff warns about tern.1: %v\n%s", err, out)
		}
	}
}

// Pool names and member addresses come from the API when one answers.
func TestCompletionFromAPI(t *testing.T) {
	addr := startAPI(t, &fakeAPI{inQuorum: true})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--api", addr, "member", "drain", "--generate-bash-completion"}, "web\n"},
		{[]string{"--api", addr, "member", "drain", "web", "--generate-bash-completion"}, "192.0.2.10\n"},
		{[]string{"--api", addr, "member", "drain", "web", "192.0.2.10", "--generate-bash-completion"}, ""},
		{[]string{"--api", addr, "pool", "show", "--generate-bash-completion"}, "web\n"},
		{[]string{"--api", "127.0.0.1:1", "pool", "show", "--generate-bash-completion"}, ""},
	} {
		if got := runOK(t, tc.args...); got != tc.want {
			t.Errorf("tern %q offers %q, want %q", tc.args, got, tc.want)
		}
	}
	if got := runOK(t, "member", "drain", "--o", "--generate-bash-completion"); !strings.Contains(got, "--output") {
		t.Errorf("a flag being completed: offered %q", got)
	}
}
