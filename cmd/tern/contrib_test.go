package main

import (
	"strings"
	"testing"

	"github.com/ternlb/tern/node"
)

// TestContribSampleChecks keeps contrib/tern.yaml honest: its only problem
// on a machine without the MaxMind file is that file.
func TestContribSampleChecks(t *testing.T) {
	ps := node.Check("../../contrib/tern.yaml")
	for _, p := range ps {
		if !strings.Contains(p.Msg, "geo.database") {
			t.Errorf("contrib/tern.yaml: %s", p)
		}
	}
}
