// Package refreshd holds the contract, openapi.yaml, byte for byte: the server
// serves it at /openapi.yaml and the conformance suite checks answers against it.
// The server itself lives in impl/, its command in cmd/refreshd.
package refreshd

import _ "embed"

// OpenAPI is openapi.yaml as written, comments and all.
//
//go:embed openapi.yaml
var OpenAPI []byte
