package bench

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"

	"github.com/google/uuid"
)

// Everything the benchmark stores is derived from a per-run seed and a name, so
// that the harness and the load-generator process agree on token values, user ids
// and application ids without passing millions of them over a pipe.

var idSpace = uuid.MustParse("6f1c2a4e-9d3b-4c57-8e0a-5b7d1f2e3c4a")

// tokenValue is token i of a pool: 43 URL-safe characters, the shape of a real
// refresh token.
func tokenValue(seed, pool string, i int) string {
	h := sha256.Sum256([]byte(seed + "/token/" + pool + "/" + strconv.Itoa(i)))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// tokenHash is how the store keys a token: the SHA-256 of its value.
func tokenHash(value string) []byte {
	h := sha256.Sum256([]byte(value))
	return h[:]
}

func userID(seed, group string, i int) uuid.UUID {
	return uuid.NewSHA1(idSpace, []byte(seed+"/user/"+group+"/"+strconv.Itoa(i)))
}

func appID(seed, name string) uuid.UUID {
	return uuid.NewSHA1(idSpace, []byte(seed+"/app/"+name))
}

// pool is a set of imported tokens: they belong to one application of their own
// (so that what is left of them can be counted) and to the users of a group,
// round-robin, so token i belongs to user i mod users.
type pool struct {
	Name  string    `json:"name"`
	App   uuid.UUID `json:"app"`
	Group string    `json:"group"`
	Users int       `json:"users"`
	Size  int       `json:"size"`
}

// owner is the user of token i.
func (p pool) owner(seed string, i int) uuid.UUID { return userID(seed, p.Group, i%p.Users) }
