package store

import (
	"bytes"
	"encoding/json"
	"strings"
)

// PostgreSQL's jsonb cannot hold U+0000 (SQLSTATE 22P05) and its text cannot hold
// the byte 0 (22021). Free-form JSON — event info, token metadata, user data — is
// the caller's to fill, and a revocation must never fail because of what its event
// info says, so every JSON value the store writes goes through pgJSON: U+0000
// becomes U+FFFD, the replacement character, which is also what invalid UTF-8 and
// unpaired surrogates became when the request was decoded. Nothing else changes.

// nulEscape is how encoding/json writes U+0000 inside a string.
const nulEscape = `\u0000`

// pgJSON returns JSON text b with every escaped U+0000 (in keys and values)
// replaced by U+FFFD. b must be valid JSON, as json.Marshal writes it: raw
// control characters cannot occur in it, only their escapes.
func pgJSON(b []byte) []byte {
	if !bytes.Contains(b, []byte(nulEscape)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' || i+1 >= len(b) {
			out = append(out, c)
			continue
		}
		// An escape: `\u0000` is replaced; any other is copied whole, so that
		// the `\\` of an escaped backslash cannot be mistaken for a new escape.
		if b[i+1] == 'u' && i+6 <= len(b) && string(b[i:i+6]) == nulEscape {
			out = append(out, `\ufffd`...)
			i += 5
			continue
		}
		out = append(out, c, b[i+1])
		i++
	}
	return out
}

// pgText returns s as PostgreSQL text can hold it: valid UTF-8 without U+0000.
// It is for text the server writes itself (a delivery's failure reason), never for
// what a client names, which is refused instead.
func pgText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// decodeJSON decodes JSON with numbers kept as json.Number, so that free-form
// values read back exactly as they were written (no float64 detour).
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}
