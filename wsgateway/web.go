package wsgateway

import (
	"embed"
	"io/fs"
)

// web holds the demo page served at /. The binary's engineer owns its contents.
//
//go:embed web
var web embed.FS

func webFS() fs.FS {
	sub, err := fs.Sub(web, "web")
	if err != nil {
		panic(err) // the embedded directory is fixed at build time
	}
	return sub
}
