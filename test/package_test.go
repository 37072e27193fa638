package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackage builds the .deb with make package in a scratch copy,
// installs it on this machine with dpkg -i, checks the unit with
// systemd-analyze verify and that the files are where the package says,
// runs the installed tern version, then removes and purges it. Root
// only, and only where no tern package or /usr/bin/tern is installed
// already (it would replace them).
func TestPackage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: installs the package with dpkg -i")
	}
	if testing.Short() {
		t.Skip("-short: builds and installs the package")
	}
	for _, tool := range []string{"dpkg", "dpkg-deb", "systemd-analyze", "make", "gzip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	if err := exec.Command("dpkg", "-s", "tern").Run(); err == nil {
		t.Skip("a tern package is installed already")
	}
	if _, err := os.Stat("/usr/bin/tern"); err == nil {
		t.Skip("/usr/bin/tern exists already")
	}
	userBefore := exec.Command("getent", "passwd", "tern").Run() == nil

	scratch := scratchRepo(t)
	const version = "1.2.3~test"
	cmd := exec.Command("make", "package", "VERSION="+version)
	cmd.Dir = scratch
	cmd.Env = append(os.Environ(), "PATH=/usr/local/go/bin:"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make package: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(scratch, "dist", "tern_"+version+"_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make package made %v\n%s", debs, out)
	}
	deb := debs[0]

	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	installed := false
	t.Cleanup(func() {
		if installed {
			exec.Command("dpkg", "--purge", "tern").Run()
		}
		if !userBefore && exec.Command("getent", "passwd", "tern").Run() == nil {
			exec.Command("userdel", "tern").Run()
			exec.Command("groupdel", "tern").Run()
		}
	})
	run("dpkg", "-i", deb)
	installed = true

	files := []string{
		"/usr/bin/tern",
		"/usr/lib/systemd/system/tern.service",
		"/usr/lib/sysusers.d/tern.conf",
		"/usr/share/man/man1/tern.1.gz",
		"/usr/share/bash-completion/completions/tern",
		"/usr/share/zsh/vendor-completions/_tern",
		"/usr/share/fish/vendor_completions.d/tern.fish",
		"/usr/share/doc/tern/examples/tern.yaml",
		"/usr/share/doc/tern/copyright",
	}
	listed := run("dpkg", "-L", "tern")
	for _, f := range files {
		if _, err := os.Stat(f); err != nil || !strings.Contains(listed, f+"\n") {
			t.Errorf("%s: %v, in dpkg -L: %v", f, err, strings.Contains(listed, f+"\n"))
		}
	}
	if st, err := os.Stat("/etc/tern"); err != nil || st.Mode().Perm() != 0o750 {
		t.Errorf("/etc/tern: %v %v, want a folder 0750 root:tern", err, st)
	}
	run("getent", "passwd", "tern") // made by systemd-sysusers in postinst

	// The unit: systemd's own checks, and the hardening it promises.
	if out, err := exec.Command("systemd-analyze", "verify", "/usr/lib/systemd/system/tern.service").CombinedOutput(); err != nil || strings.Contains(string(out), "tern.service") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	unit, _ := os.ReadFile("/usr/lib/systemd/system/tern.service")
	for _, want := range []string{"User=tern", "ExecStart=/usr/bin/tern serve", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "ProtectSystem=strict", "NoNewPrivileges=true", "SystemCallFilter=@system-service"} {
		if !strings.Contains(string(unit), want+"\n") && !strings.Contains(string(unit), want+" ") {
			t.Errorf("the unit has no %s", want)
		}
	}
	if v := run("/usr/bin/tern", "version"); !strings.Contains(v, "tern "+version) {
		t.Errorf("tern version: %q, want tern %s", v, version)
	}
	if out := run("sh", "-c", "zcat /usr/share/man/man1/tern.1.gz | head -20"); !strings.Contains(out, ".TH") {
		t.Errorf("man page: %q", out)
	}

	run("dpkg", "-r", "tern")
	if _, err := os.Stat("/usr/bin/tern"); err == nil {
		t.Error("/usr/bin/tern left after dpkg -r")
	}
	run("dpkg", "--purge", "tern")
	installed = false
	if err := exec.Command("dpkg", "-s", "tern").Run(); err == nil {
		t.Error("tern still known to dpkg after --purge")
	}
}
