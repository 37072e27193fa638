package main

import (
	"bytes"
	"os"
	"os/exec"
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
	for shell, check := range map[string][]string{"bash": {"bash", "-n"}, "zsh": {"zsh", "-n"}} {
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
