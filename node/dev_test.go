package node

import "testing"

// TestDevConfigCompiles keeps `make run` working: the embedded example
// must load and compile with no problem.
func TestDevConfigCompiles(t *testing.T) {
	cfg, err := DevConfig()
	if err != nil {
		t.Fatalf("embedded dev configuration: %v", err)
	}
	if _, ps := Compile(cfg); len(ps) > 0 {
		t.Fatalf("embedded dev configuration does not compile:\n%v", ps)
	}
}
