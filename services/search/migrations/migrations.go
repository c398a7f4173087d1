// Package migrations holds the search index definition (settings and explicit mappings),
// embedded into the binary. esindex creates every concrete index from it; there is no
// in-place migration: a changed mapping takes effect with the next rebuild, which builds a
// new index and swaps the alias.
package migrations

import _ "embed"

// Index is index.json: the body of the create-index request.
//
//go:embed index.json
var Index []byte
