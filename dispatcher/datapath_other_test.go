//go:build !linux

package dispatcher

import (
	"errors"
	"testing"
)

func TestUnsupported(t *testing.T) {
	if _, err := OpenDatapath(DatapathConfig{Interface: "eth0"}); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("OpenDatapath: %v, want errors.ErrUnsupported", err)
	}
	if _, err := AttachDecap("eth0", nil); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("AttachDecap: %v, want errors.ErrUnsupported", err)
	}
}
