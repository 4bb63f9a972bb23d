package impl_test

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"

	gen "refreshd/generated"
)

// TestGarbageNeverFails sends malformed bodies, parameters and ids to every
// operation of the contract: each answer is a 4xx in the contract's shape, never
// a 500, and nothing changes.
func TestGarbageNeverFails(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 1, 2)
	spec, err := gen.GetSwagger()
	if err != nil {
		t.Fatal(err)
	}
	bodies := []string{`{`, `[]`, `"text"`, `null`, `12345678901234567890123`, `{"a":` + strings.Repeat("[", 5000),
		`{"refreshTokens":[{"token":1e400}]}`, `{"user":{"email":["x"]},"application":{"name":{}}}`,
		`{"webhook":{"url":"http://[::1"}}`, `{"apiKey":{"key":"` + strings.Repeat("k", 300) + `"}}`,
		"\xff\xfe{}", `{"token":"` + strings.Repeat("\u0000", 10) + `"}`}
	ids := []string{"x", "00000000-0000-0000-0000-00000000000g", strings.Repeat("a", 300), "%00", uuid.NewString()}
	var paths []string
	for path := range spec.Paths.Map() {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	for _, path := range paths {
		for method := range spec.Paths.Value(path).Operations() {
			for _, id := range ids {
				concrete := path
				for _, param := range []string{"{tokenId}", "{applicationId}", "{userId}", "{tenantId}", "{keyId}", "{webhookId}"} {
					concrete = strings.ReplaceAll(concrete, param, id)
				}
				for _, body := range append(bodies, "") {
					for _, query := range []string{"", "?userId=bad&applicationId=%zz&token=&limit=-1&hardDelete=maybe&cursor=x"} {
						r := req{method: method, path: concrete + query}
						if body != "" {
							r.body = body
						}
						resp := s.do(r)
						if resp.Status >= 500 {
							t.Fatalf("%s %s with %.40q: status %d", method, r.path, body, resp.Status)
						}
						if resp.Status == http.StatusBadRequest {
							var e struct {
								FieldErrors   map[string][]struct{ Code string } `json:"fieldErrors"`
								GeneralErrors []struct{ Code string }            `json:"generalErrors"`
							}
							var oauth struct {
								Error string `json:"error"`
							}
							if path == "/oauth2/revoke" { // RFC 7009: OAuth's error format
								if err := json.Unmarshal(resp.Body, &oauth); err != nil || oauth.Error == "" {
									t.Fatalf("%s %s with %.40q: 400 body %q is not OAuth's error format", method, r.path, body, resp.Body)
								}
							} else if err := json.Unmarshal(resp.Body, &e); err != nil || (len(e.FieldErrors) == 0 && len(e.GeneralErrors) == 0) {
								t.Fatalf("%s %s with %.40q: 400 body %q is not the error format", method, r.path, body, resp.Body)
							}
						}
					}
				}
			}
		}
	}
	s.expectRemaining(w, none)
}
