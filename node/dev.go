package node

import (
	"embed"
	"io/fs"

	"github.com/ternlb/tern/config"
)

//go:embed devconfig
var devFS embed.FS

// DevConfig returns the embedded example configuration that `tern serve
// --dev` serves on loopback.
func DevConfig() (*config.Config, error) {
	sub, err := fs.Sub(devFS, "devconfig")
	if err != nil {
		return nil, err
	}
	return config.LoadFS(sub, "tern.yaml", "(embedded)/tern.yaml")
}
