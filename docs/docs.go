// Package docs holds the sources of nixcfs's documentation that are not Go code, for
// the binary to render (nixcfs gen-docs).
package docs

import _ "embed"

// Filesystem is the markdown source of nixcfs(5), the files of the mount. Its first
// heading is NAME: the title line is the renderer's.
//
//go:embed filesystem.md
var Filesystem string
