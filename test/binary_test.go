package test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	ternOnce sync.Once
	ternPath string
	ternErr  error
	ternOut  []byte
)

// ternBinary builds cmd/tern once per test run and returns its path.
func ternBinary(t testing.TB) string {
	t.Helper()
	ternOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tern-e2e-")
		if err != nil {
			ternErr = err
			return
		}
		ternPath = filepath.Join(dir, "tern")
		cmd := exec.Command("go", "build", "-race", "-o", ternPath, "./cmd/tern")
		if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
			cmd = exec.Command("go", "build", "-o", ternPath, "./cmd/tern")
		}
		cmd.Dir = ".."
		ternOut, ternErr = cmd.CombinedOutput()
	})
	if ternErr != nil {
		t.Fatalf("build tern: %v\n%s", ternErr, ternOut)
	}
	return ternPath
}

// lockedBuffer collects a process's output for assertions while it runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
