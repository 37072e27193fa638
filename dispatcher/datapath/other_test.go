//go:build !linux

package datapath

import (
	"errors"
	"testing"
)

func TestUnsupported(t *testing.T) {
	if _, err := Open(Config{Interface: "eth0"}); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Open: %v, want errors.ErrUnsupported", err)
	}
	if _, err := AttachDecap("eth0", nil, XDPGeneric); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("AttachDecap: %v, want errors.ErrUnsupported", err)
	}
}
