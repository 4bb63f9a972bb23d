package conformance_test

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"refreshd/conformance"
	gen "refreshd/generated"
)

// A variant is our real server with exactly one defect, introduced by a wrapper
// in front of it: the real server does the work, the wrapper breaks one rule the
// way a real implementation might. Each variant must make exactly the cases in
// fails fail (in the strict profile, unless profile says otherwise: a variant run
// in the core profile shows that a check belongs to core), and every case must
// be caught by some variant.
//
// A variant with webhooks runs in webhook mode, against a server of its own
// whose events a dispatcher delivers: its defect shows only in the events. A
// wrapper cannot touch what the dispatcher sends, so a variant whose events are
// built wrong edits them instead in a relay between the dispatcher and the suite
// (see relayDeliveries).
type variant struct {
	name     string
	defect   string
	wrap     func(next http.Handler, key string) http.Handler // nil: the real server as it is
	fails    []string
	webhooks bool
	events   func(event map[string]any) // edits each delivered event; needs webhooks
	profile  conformance.Profile        // "" means strict
	// schema says the defect breaks only the contract's response schemas, so
	// every case it fails must fail with a failure of kind schema.
	schema bool
	// only, when set, runs just the cases with these id prefixes: a defect that
	// can touch nothing else need not cost a run of the whole suite. When unset,
	// the variant runs the cases of the APIs its fails name (the first segment of
	// their ids), or with full the whole suite: a cross-cutting defect must
	// show where it should not too.
	only []string
	full bool
	// ownServer runs the variant against a server of its own, for a defect that
	// leaves fixtures behind by its nature.
	ownServer bool
}

func variants(allIDs []string) []variant {
	return []variant{
		{name: "ignore-app-with-user", defect: "ignores applicationId when a userId is given (query and body)",
			wrap: onRevoke(func(r *http.Request) {
				editQuery(r, func(q url.Values) {
					if given(q.Get("userId")) {
						q.Del("applicationId")
					}
				})
				editBody(r, func(b map[string]any) {
					if s, _ := b["userId"].(string); s != "" {
						delete(b, "applicationId")
					}
				})
			}),
			fails: []string{
				"revoke/by-user-and-app/query", "revoke/by-user-and-app/body", "revoke/by-user-and-app/body-event-info",
				"revoke/by-user-and-app/go-client", "revoke/by-user-and-app/typescript-client",
				"revoke/malformed-id/query-application-id", "revoke/malformed-id/body-application-id",
				"revoke/malformed-id/before-unknown", "revoke/unknown-app/with-user", "exchange/revoked/by-user-and-app",
			}},
		{name: "unknown-token-200", defect: "answers 200 instead of 404 to both DELETEs",
			wrap: rewriteAnswer(func(r *http.Request) bool {
				return r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/api/jwt/refresh")
			},
				func(rec *httptest.ResponseRecorder) {
					if rec.Code == http.StatusNotFound {
						rec.Code = http.StatusOK
					}
				}),
			fails: []string{
				"revoke/by-token/query", "revoke/by-token/body", "revoke/by-token/body-event-info", "revoke/by-token/go-client",
				"revoke/by-token/typescript-client", "revoke/by-token/other-user", "revoke/by-token/other-app",
				"revoke/by-token/unknown/query", "revoke/by-token/unknown/body", "revoke/by-token/expired",
				"revoke-by-id/path", "revoke-by-id/unknown", "exchange/expired",
				"revoke/by-token/form", "revoke/access-token/other-user", "revoke-by-id/access-token-cookie",
			}},
		{name: "drop-delete-body", defect: "ignores the JSON body of DELETE /api/jwt/refresh",
			wrap: onRevoke(func(r *http.Request) {
				readBody(r) // consume it, as a server that ignores it would
				setBody(r, nil)
			}),
			fails: []string{
				"revoke/by-token/body", "revoke/by-token/body-event-info", "revoke/by-user/body", "revoke/by-user/body-event-info",
				"revoke/by-user-and-app/body", "revoke/by-user-and-app/body-event-info", "revoke/by-app/body", "revoke/by-app/body-event-info",
				"revoke/body-overrides-query", "revoke/by-token/unknown/body",
				"revoke/malformed-id/body-user-id", "revoke/malformed-id/body-application-id",
				"revoke/invalid-json/syntax", "revoke/invalid-json/wrong-type", "revoke/too-large",
				"revoke/unmodelled-properties", "revoke/null-body-fields", "revoke/invalid-content-type",
				"revoke/by-token/form", "revoke/by-user/form", "revoke/by-user-and-app/form", "revoke/by-app/form",
			}},
		{name: "revoke-nothing", defect: "answers 200 to DELETE /api/jwt/refresh and does nothing",
			wrap: func(next http.Handler, _ string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if isRevoke(r) {
						w.WriteHeader(http.StatusOK)
						return
					}
					next.ServeHTTP(w, r)
				})
			},
			fails: append(withPrefix(allIDs, "revoke/"), "exchange/revoked/by-token", "exchange/revoked/by-user",
				"exchange/revoked/by-user-and-app", "exchange/revoked/by-app", "exchange/expired")},
		{name: "no-key-needed", defect: "lets a request without an API key through",
			wrap: func(next http.Handler, key string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Header.Get("Authorization") == "" {
						r.Header.Set("Authorization", key)
					}
					next.ServeHTTP(w, r)
				})
			},
			fails: []string{"revoke/auth/missing-key", "revoke-by-id/auth/missing-key", "retrieve/auth/missing-key", "import/auth/missing-key",
				"revoke-by-id/access-token-cookie"}, full: true},
		{name: "any-key", defect: "accepts any non-empty API key",
			wrap: func(next http.Handler, key string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Header.Get("Authorization") != "" {
						r.Header.Set("Authorization", key)
					}
					next.ServeHTTP(w, r)
				})
			},
			fails: []string{"revoke/auth/wrong-key", "revoke/access-token/other-user", "revoke/access-token/bulk",
				"revoke/access-token/invalid", "oauth-revoke/bad-client", "oauth-revoke/own-token", "revoke/except/access-token",
				"validate/revoked-session", "validate/shape"}, full: true},
		{name: "echo-errors", defect: "answers 400 with Echo's {\"message\": …} instead of FusionAuth's error body",
			wrap: rewriteAnswer(everything, func(rec *httptest.ResponseRecorder) {
				if rec.Code == http.StatusBadRequest {
					rec.Body = bytes.NewBufferString(`{"message":"Bad Request"}`)
				}
			}),
			fails: append(append([]string(nil), expect400Cases...), goneCases...), full: true},
		{name: "404-with-body", defect: "answers 404 with a JSON body",
			wrap: rewriteAnswer(everything, func(rec *httptest.ResponseRecorder) {
				if rec.Code == http.StatusNotFound {
					rec.Header().Set("Content-Type", "application/json")
					rec.Body = bytes.NewBufferString(`{"message":"Not Found"}`)
				}
			}),
			fails: append([]string{
				"revoke/by-token/query", "revoke/by-token/body", "revoke/by-token/body-event-info", "revoke/by-token/go-client",
				"revoke/by-token/typescript-client", "revoke/by-token/other-user", "revoke/by-token/other-app",
				"revoke/by-token/unknown/query", "revoke/by-token/unknown/body", "revoke/by-token/expired",
				"revoke-by-id/path", "revoke-by-id/unknown", "retrieve-by-id/unknown", "exchange/expired",
				"revoke/by-token/form", "revoke/access-token/other-user",
				"ssf/stream-lifecycle",
			}, goneCases...), full: true},
		{name: "null-is-a-value", defect: "takes the query texts null and undefined literally",
			wrap: onRevoke(func(r *http.Request) {
				editQuery(r, func(q url.Values) {
					for name, vs := range q {
						if vs[0] != "null" && vs[0] != "undefined" {
							continue
						}
						if name == "token" {
							q.Set(name, "literally-"+vs[0])
						} else {
							q.Set(name, vs[0]+"-is-not-a-uuid")
						}
					}
				})
			}),
			fails: []string{
				"revoke/by-token/typescript-client", "revoke/by-user/typescript-client", "revoke/by-user-and-app/typescript-client",
				"revoke/by-app/typescript-client", "revoke/nothing-selected/null-params",
			}},
		{name: "empty-is-a-value", defect: "takes empty query values literally",
			wrap: onRevoke(func(r *http.Request) {
				editQuery(r, func(q url.Values) {
					for name, vs := range q {
						if vs[0] != "" {
							continue
						}
						if name == "token" {
							q.Set(name, "literally-empty")
						} else {
							q.Set(name, "empty-is-not-a-uuid")
						}
					}
				})
			}),
			fails: []string{
				"revoke/by-token/go-client", "revoke/by-user/go-client", "revoke/by-user-and-app/go-client",
				"revoke/by-app/go-client", "revoke/nothing-selected/empty-params",
			}},
		{name: "first-param-wins", defect: "takes the first of a repeated query parameter",
			wrap: onRevoke(func(r *http.Request) {
				editQuery(r, func(q url.Values) {
					for name, vs := range q {
						q[name] = vs[:1]
					}
				})
			}),
			fails: []string{"revoke/repeated-param"}},
		{name: "query-wins", defect: "lets a query parameter override the body field of the same name",
			wrap: onRevoke(func(r *http.Request) {
				q := r.URL.Query()
				editBody(r, func(b map[string]any) {
					for name, v := range b {
						if _, isText := v.(string); isText && given(q.Get(name)) {
							delete(b, name)
						}
					}
				})
			}),
			fails: []string{"revoke/body-overrides-query"}},
		{name: "fusionauth-ignores-app-on-token", defect: "ignores applicationId beside a token (what FusionAuth does)",
			wrap: onRevoke(func(r *http.Request) {
				editQuery(r, func(q url.Values) {
					if given(q.Get("token")) {
						q.Del("applicationId")
					}
				})
			}),
			fails: []string{"revoke/by-token/other-app"}},
		{name: "tenant-header-ignored", defect: "ignores X-FusionAuth-TenantId",
			wrap: func(next http.Handler, _ string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					r.Header.Del("X-FusionAuth-TenantId")
					next.ServeHTTP(w, r)
				})
			},
			fails: []string{"revoke/tenant/malformed", "revoke/tenant/unknown", "exchange/one-time-use/reuse-revokes"}, full: true},
		{name: "413-too-large", defect: "answers 413 with an empty body to a body over 1 MiB, as a proxy would",
			wrap: func(next http.Handler, _ string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.ContentLength > 1<<20 {
						w.WriteHeader(http.StatusRequestEntityTooLarge)
						return
					}
					next.ServeHTTP(w, r)
				})
			},
			fails: []string{"revoke/too-large"}},
		{name: "unknown-owner-200", defect: "answers 200 to a revoke naming an unknown user or application",
			wrap: rewriteAnswer(isRevoke, func(rec *httptest.ResponseRecorder) {
				if rec.Code == http.StatusBadRequest && regexp.MustCompile(`\[invalid\](userId|applicationId)`).Match(rec.Body.Bytes()) {
					rec.Code, rec.Body = http.StatusOK, new(bytes.Buffer)
				}
			}),
			fails: []string{"revoke/unknown-user/query", "revoke/unknown-user/with-token", "revoke/unknown-app/query",
				"revoke/unknown-app/with-user", "revoke/repeated-param"}},
		{name: "nothing-selected-200", defect: "answers 200 to a revoke that selects nothing",
			wrap: rewriteAnswer(isRevoke, func(rec *httptest.ResponseRecorder) {
				if rec.Code == http.StatusBadRequest && strings.Contains(rec.Body.String(), `"code":"[invalid]"`) {
					rec.Code, rec.Body = http.StatusOK, new(bytes.Buffer)
				}
			}),
			fails: []string{"revoke/nothing-selected/bare", "revoke/nothing-selected/empty-params",
				"revoke/nothing-selected/empty-body", "revoke/nothing-selected/null-params"}},
		{name: "invalid-instead-of-could-not-convert", defect: "reports a malformed id as [invalid] rather than [couldNotConvert]",
			wrap: rewriteAnswer(everything, func(rec *httptest.ResponseRecorder) {
				if rec.Code == http.StatusBadRequest {
					rec.Body = bytes.NewBufferString(strings.ReplaceAll(rec.Body.String(), "[couldNotConvert]", "[invalid]"))
				}
			}),
			fails: []string{
				"revoke/malformed-id/query-user-id", "revoke/malformed-id/query-application-id", "revoke/malformed-id/body-user-id",
				"revoke/malformed-id/body-application-id", "revoke/malformed-id/before-unknown",
				"revoke-by-id/malformed", "retrieve/malformed-user-id", "retrieve-by-id/malformed",
			}},
		{name: "invalid-json-500", defect: "answers a body that does not parse with 500",
			wrap: rewriteAnswer(everything, func(rec *httptest.ResponseRecorder) {
				if rec.Code == http.StatusBadRequest && strings.Contains(rec.Body.String(), "[invalidJSON]") {
					rec.Code, rec.Body = http.StatusInternalServerError, new(bytes.Buffer)
				}
			}),
			fails: []string{"revoke/invalid-json/syntax", "revoke/invalid-json/wrong-type"}, full: true},
		{name: "import-not-atomic", defect: "stores the good tokens of a batch that has a bad one",
			wrap: func(next http.Handler, _ string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if !isImport(r) {
						next.ServeHTTP(w, r)
						return
					}
					body := readBody(r)
					rec := serve(next, r, body)
					if rec.Code == http.StatusBadRequest {
						var batch struct {
							RefreshTokens []json.RawMessage `json:"refreshTokens"`
						}
						_ = json.Unmarshal(body, &batch)
						for _, item := range batch.RefreshTokens {
							serve(next, r, []byte(`{"refreshTokens":[`+string(item)+`]}`))
						}
					}
					replay(w, rec)
				})
			},
			fails: []string{
				"import/missing/token", "import/missing/user-id", "import/missing/application-id", "import/missing/start-instant",
				"import/duplicate/stored", "import/duplicate/in-batch", "import/unknown-user", "import/unknown-app", "import/all-or-nothing",
			}},
		{name: "import-skips-duplicates", defect: "silently skips duplicate token values on import",
			wrap: func(next http.Handler, _ string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if !isImport(r) {
						next.ServeHTTP(w, r)
						return
					}
					body := readBody(r)
					rec := serve(next, r, body)
					if rec.Code == http.StatusBadRequest && strings.Contains(rec.Body.String(), "[duplicate]") {
						var errs struct {
							FieldErrors map[string]json.RawMessage `json:"fieldErrors"`
						}
						var batch struct {
							RefreshTokens []json.RawMessage `json:"refreshTokens"`
						}
						_ = json.Unmarshal(rec.Body.Bytes(), &errs)
						_ = json.Unmarshal(body, &batch)
						var keep []string
						for i, item := range batch.RefreshTokens {
							if _, dup := errs.FieldErrors["refreshTokens["+strconv.Itoa(i)+"].token"]; !dup {
								keep = append(keep, string(item))
							}
						}
						rec = serve(next, r, []byte(`{"refreshTokens":[`+strings.Join(keep, ",")+`]}`))
					}
					replay(w, rec)
				})
			},
			fails: []string{"import/duplicate/stored", "import/duplicate/in-batch"}},
		{name: "import-unindexed-keys", defect: "keys import field errors refreshTokens.token instead of refreshTokens[1].token",
			wrap: rewriteAnswer(isImport, func(rec *httptest.ResponseRecorder) {
				if rec.Code == http.StatusBadRequest {
					rec.Body = bytes.NewBufferString(regexp.MustCompile(`refreshTokens\[\d+\]`).ReplaceAllString(rec.Body.String(), "refreshTokens"))
				}
			}),
			fails: []string{
				"import/missing/token", "import/missing/user-id", "import/missing/application-id", "import/missing/start-instant",
				"import/duplicate/stored", "import/duplicate/in-batch", "import/unknown-user", "import/unknown-app", "import/all-or-nothing",
			}},
		{name: "import-answers-with-body", defect: "answers a successful import with a JSON body",
			wrap: rewriteAnswer(isImport, func(rec *httptest.ResponseRecorder) {
				if rec.Code == http.StatusOK {
					rec.Header().Set("Content-Type", "application/json")
					rec.Body = bytes.NewBufferString(`{"refreshTokens":[]}`)
				}
			}),
			fails: []string{"import/round-trip", "import/unmodelled-properties"}},
		{name: "empty-list-null", defect: "lists no tokens as null rather than []",
			wrap: rewriteAnswer(isList, func(rec *httptest.ResponseRecorder) {
				rec.Body = bytes.NewBufferString(strings.Replace(rec.Body.String(), `"refreshTokens":[]`, `"refreshTokens":null`, 1))
			}),
			// The contract says refreshTokens is an array: every empty listing breaks it.
			fails: []string{"retrieve/empty-list", "exchange/expired", "revoke/body-overrides-query", "revoke/null-body-fields",
				"revoke/unmodelled-properties", "revoke/by-user/query", "revoke/by-user/body", "revoke/by-user/body-event-info",
				"revoke/by-user/go-client", "revoke/by-user/typescript-client", "revoke/by-user/form", "revoke/receipt/by-user"}},
		{name: "no-insert-instant", defect: "leaves insertInstant out of GET answers",
			wrap: rewriteAnswer(func(r *http.Request) bool { return r.Method == http.MethodGet }, func(rec *httptest.ResponseRecorder) {
				rec.Body = bytes.NewBufferString(regexp.MustCompile(`"insertInstant":\d+,?`).ReplaceAllString(rec.Body.String(), ""))
			}),
			// insertInstant is required: every case that sees a token listed or fetched fails.
			fails: except(allIDs, "retrieve/empty-list", "retrieve/missing-user-id", "retrieve/unknown-user", "retrieve/malformed-user-id",
				"retrieve-by-id/unknown", "retrieve-by-id/malformed", "import/missing/list", "exchange/missing-token",
				"exchange/unknown-token", "exchange/expired", "logout/unknown", "oauth-revoke/discovery", "ssf/configuration",
				"ssf/stream-lifecycle")},
		{name: "by-id-unwrapped", defect: "answers GET /api/jwt/refresh/{id} with the bare token, without {\"refreshToken\": …}",
			wrap: rewriteAnswer(isGetByID, func(rec *httptest.ResponseRecorder) {
				var body struct {
					RefreshToken json.RawMessage `json:"refreshToken"`
				}
				if rec.Code == http.StatusOK && json.Unmarshal(rec.Body.Bytes(), &body) == nil {
					rec.Body = bytes.NewBuffer(body.RefreshToken)
				}
			}),
			// refreshToken is required: every case that fetches a live token by id fails.
			fails: except(allIDs, "retrieve/shape", "retrieve/empty-list", "retrieve/missing-user-id", "retrieve/unknown-user",
				"retrieve/malformed-user-id", "retrieve/auth/missing-key", "retrieve-by-id/unknown", "retrieve-by-id/malformed",
				"import/missing/list", "exchange/missing-token", "exchange/unknown-token", "exchange/revoked/by-token",
				"exchange/revoked/by-user", "exchange/revoked/by-user-and-app", "exchange/revoked/by-app", "exchange/revoked/by-id",
				"exchange/expired", "exchange/one-time-use", "exchange/jwks/signature", "exchange/claims",
				"delete/application", "delete/user", "exchange/cookie-wins", "exchange/one-time-use/grace",
				"exchange/one-time-use/reuse-revokes", "exchange/sets-cookies", "logout/clears-cookies", "logout/cookie",
				"logout/global", "logout/rotated-away", "logout/token", "logout/unknown", "revoke-by-id/access-token-cookie",
				"revoke-by-id/after-rotations", "revoke/access-token/invalid", "revoke/access-token/other-user",
				"revoke/access-token/own", "oauth-revoke/bad-client", "oauth-revoke/discovery", "oauth-revoke/other-client",
				"oauth-revoke/own-token", "validate/revoked-session", "validate/shape", "ssf/configuration", "ssf/stream-lifecycle")},
		{name: "get-returns-token", defect: "returns a token value in GET answers (as FusionAuth does)",
			wrap: rewriteAnswer(func(r *http.Request) bool { return r.Method == http.MethodGet }, func(rec *httptest.ResponseRecorder) {
				rec.Body = bytes.NewBufferString(strings.ReplaceAll(rec.Body.String(), `"applicationId":`, `"token":"a-returned-value","applicationId":`))
			}),
			fails: []string{"retrieve/no-token-value"}},
		{name: "disallow-unknown-fields", defect: "rejects properties the contract does not model, as a strict Go decoder would",
			wrap: func(next http.Handler, _ string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					var into any
					switch {
					case isRevoke(r):
						into = new(gen.RefreshTokenRevokeRequest)
					case isImport(r):
						into = new(gen.RefreshTokenImportRequest)
					default:
						next.ServeHTTP(w, r)
						return
					}
					dec := json.NewDecoder(bytes.NewReader(readBody(r)))
					dec.DisallowUnknownFields()
					if err := dec.Decode(into); err != nil && strings.Contains(err.Error(), "unknown field") {
						writeErrors(w, `{"generalErrors":[{"code":"[invalidJSON]","message":"unknown field"}]}`)
						return
					}
					next.ServeHTTP(w, r)
				})
			},
			fails: []string{"revoke/unmodelled-properties", "import/unmodelled-properties"}},
		{name: "null-is-invalid", defect: "rejects JSON null in a revoke body",
			wrap: func(next http.Handler, _ string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					var b map[string]any
					if isRevoke(r) && json.Unmarshal(readBody(r), &b) == nil {
						for _, v := range b {
							if v == nil {
								writeErrors(w, `{"generalErrors":[{"code":"[invalidJSON]","message":"null"}]}`)
								return
							}
						}
					}
					next.ServeHTTP(w, r)
				})
			},
			fails: []string{"revoke/null-body-fields"}},
		{name: "ignores-content-type", defect: "reads every body as JSON, whatever its Content-Type",
			wrap: func(next http.Handler, _ string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.ContentLength > 0 {
						r.Header.Set("Content-Type", "application/json")
					}
					next.ServeHTTP(w, r)
				})
			},
			fails: []string{"revoke/invalid-content-type", "revoke/by-token/form", "revoke/by-user/form",
				"revoke/by-user-and-app/form", "revoke/by-app/form",
				"oauth-revoke/bad-client", "oauth-revoke/other-client", "oauth-revoke/own-token"}, full: true},
		{name: "by-id-revokes-user", defect: "revokes all of the user's tokens when asked to revoke one by id",
			wrap: func(next http.Handler, _ string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method != http.MethodDelete || !strings.HasPrefix(r.URL.Path, "/api/jwt/refresh/") {
						next.ServeHTTP(w, r)
						return
					}
					get := r.Clone(r.Context())
					get.Method = http.MethodGet
					rec := serve(next, get, nil)
					var body struct {
						RefreshToken struct {
							UserID string `json:"userId"`
						} `json:"refreshToken"`
					}
					if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
						next.ServeHTTP(w, r)
						return
					}
					del := r.Clone(r.Context())
					del.URL.Path, del.URL.RawQuery = "/api/jwt/refresh", "userId="+body.RefreshToken.UserID
					next.ServeHTTP(w, del)
				})
			},
			fails: []string{"revoke-by-id/path", "exchange/revoked/by-id", "validate/revoked-session"}},
		{name: "exchange-ignores-revocation", defect: "answers an exchange of an unknown, revoked or expired token 200 (with a made-up body)",
			wrap: rewriteAnswer(isExchange, func(rec *httptest.ResponseRecorder) {
				if rec.Code == http.StatusBadRequest && strings.Contains(rec.Body.String(), "[invalid]refreshToken") {
					rec.Code = http.StatusOK
					rec.Body = bytes.NewBufferString(`{"token":"e30.e30.c2ln","refreshToken":"made-up","refreshTokenId":"` + uuid.NewString() + `"}`)
				}
			}),
			fails: append([]string{
				"exchange/unknown-token", "exchange/revoked/by-token", "exchange/revoked/by-user", "exchange/revoked/by-user-and-app",
				"exchange/revoked/by-app", "exchange/revoked/by-id", "exchange/expired", "exchange/one-time-use",
			}, goneCases...)},
		{name: "never-rotates", defect: "answers a OneTimeUse exchange with the refresh token it was sent instead of its successor",
			wrap: func(next http.Handler, _ string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if !isExchange(r) {
						next.ServeHTTP(w, r)
						return
					}
					var sent struct {
						RefreshToken string `json:"refreshToken"`
					}
					_ = json.Unmarshal(readBody(r), &sent)
					rec := httptest.NewRecorder()
					next.ServeHTTP(rec, r)
					editJSON(rec, func(b map[string]any) { b["refreshToken"] = sent.RefreshToken })
					replay(w, rec)
				})
			},
			fails: append([]string{"exchange/one-time-use"}, rotatingCases...)},
		{name: "refresh-token-id-wrong", defect: "answers an exchange with a refreshTokenId that names no token",
			wrap: rewriteAnswer(isExchange, func(rec *httptest.ResponseRecorder) {
				editJSON(rec, func(b map[string]any) { b["refreshTokenId"] = uuid.NewString() })
			}),
			fails: append([]string{"exchange/shape", "exchange/claims", "exchange/cookie-wins"}, rotatingCases...)},
		{name: "jwks-wrong-key", defect: "publishes RSA public keys that do not match the keys it signs with",
			wrap: rewriteAnswer(func(r *http.Request) bool { return r.URL.Path == "/.well-known/jwks.json" }, func(rec *httptest.ResponseRecorder) {
				editJSON(rec, func(b map[string]any) {
					keys, _ := b["keys"].([]any)
					for _, k := range keys {
						key, _ := k.(map[string]any)
						if n, ok := key["n"].(string); ok {
							mod, _ := base64.RawURLEncoding.DecodeString(n)
							mod[len(mod)-1] ^= 2 // another odd modulus
							key["n"] = base64.RawURLEncoding.EncodeToString(mod)
						}
					}
				})
			}),
			fails: []string{"exchange/jwks/signature"}},
		{name: "ignores-app-jwt-configuration", defect: "ignores an application's jwtConfiguration: the tenant's defaults always apply",
			wrap: func(next http.Handler, _ string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/application") {
						editBody(r, func(b map[string]any) {
							if app, ok := b["application"].(map[string]any); ok {
								delete(app, "jwtConfiguration")
							}
						})
					}
					next.ServeHTTP(w, r)
				})
			},
			fails: append([]string{"exchange/expired", "exchange/one-time-use", "exchange/jwks/signature"}, rotatingCases...)},
		{name: "jwks-crv-number", defect: "adds crv, a text in the contract, to each JWKS key as a number", schema: true,
			wrap: rewriteAnswer(func(r *http.Request) bool { return r.URL.Path == "/.well-known/jwks.json" }, func(rec *httptest.ResponseRecorder) {
				editJSON(rec, func(b map[string]any) {
					keys, _ := b["keys"].([]any)
					for _, k := range keys {
						if key, ok := k.(map[string]any); ok {
							key["crv"] = 256
						}
					}
				})
			}),
			fails: []string{"exchange/jwks/signature"}, only: []string{"exchange/jwks/"}},
		{name: "revoke-by-id-204", defect: "answers 204, a status the contract does not declare, to a revocation by id", schema: true,
			wrap: rewriteAnswer(func(r *http.Request) bool {
				return r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/api/jwt/refresh/")
			}, func(rec *httptest.ResponseRecorder) {
				if rec.Code == http.StatusOK {
					rec.Code = http.StatusNoContent
				}
			}),
			fails: []string{"revoke-by-id/path", "exchange/revoked/by-id"}, only: []string{"revoke-by-id/path", "exchange/revoked/by-id"}},
		{name: "drop-event-info", defect: "leaves the eventInfo of a DELETE body out of the event", webhooks: true,
			wrap: onRevoke(func(r *http.Request) {
				if r.ContentLength > 8<<20 {
					return // the server refuses it before reading eventInfo
				}
				editBody(r, func(b map[string]any) { delete(b, "eventInfo") })
			}),
			fails: []string{"revoke/by-token/body-event-info", "revoke/by-user/body-event-info",
				"revoke/by-user-and-app/body-event-info", "revoke/by-app/body-event-info"}},
		{name: "revoke-user-per-app", defect: "revokes a user's tokens one application at a time, recording an event for each", webhooks: true,
			wrap: revokeUserPerApp,
			fails: append(withoutPrefix(withPrefix(allIDs, "revoke/by-user/"), "revoke/by-user/form"), // it passes form bodies through
				"revoke/except/api-key", "revoke/receipt/by-user")},
		{name: "ignores-signing-secret", defect: "signs webhook deliveries with a secret of its own, not the signingSecret registered", webhooks: true,
			wrap: func(next http.Handler, _ string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/webhook") {
						editBody(r, func(b map[string]any) {
							if hook, ok := b["webhook"].(map[string]any); ok {
								hook["signingSecret"] = "a-secret-the-server-chose-itself"
							}
						})
					}
					next.ServeHTTP(w, r)
				})
			},
			fails: append(matching(allIDs, usageCase), "revoke-by-id/path", "delete/application", "delete/user",
				"exchange/one-time-use/reuse-revokes", "logout/global", "logout/token")},
		{name: "unsigned-webhooks", defect: "ignores a webhook's signatureConfiguration: deliveries carry no X-FusionAuth-Signature-JWT", webhooks: true,
			wrap: func(next http.Handler, _ string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/webhook") {
						editBody(r, func(b map[string]any) {
							if hook, ok := b["webhook"].(map[string]any); ok {
								delete(hook, "signatureConfiguration")
							}
						})
					}
					next.ServeHTTP(w, r)
				})
			},
			// In core, the cases whose events are ours (an application's delete, reuse detection) check no events.
			fails:   coreOnly(append(matching(allIDs, usageCase), "revoke-by-id/path", "delete/user", "logout/global", "logout/token")),
			profile: conformance.ProfileCore},
		{name: "event-without-refresh-token", defect: "leaves refreshToken out of the event of a single-token revocation", webhooks: true,
			events: func(ev map[string]any) { delete(ev, "refreshToken") },
			fails: append(withPrefix(matching(allIDs, usageCase), "revoke/by-token/"), "revoke-by-id/path",
				"exchange/one-time-use/reuse-revokes", "logout/token")},
		{name: "event-without-user", defect: "leaves user and linkedObjectId out of its revoke events", webhooks: true,
			events: func(ev map[string]any) { delete(ev, "user"); delete(ev, "linkedObjectId") },
			fails: append(withoutPrefix(matching(allIDs, usageCase), "revoke/by-app/"), "revoke-by-id/path", "delete/user",
				"exchange/one-time-use/reuse-revokes", "logout/global", "logout/token")},
		{name: "event-names-another-user", defect: "names another user in the userId of its events", webhooks: true,
			events: func(ev map[string]any) {
				if _, ok := ev["userId"]; ok {
					ev["userId"] = uuid.NewString()
				}
			},
			fails: append(withoutPrefix(matching(allIDs, usageCase), "revoke/by-app/"), "revoke-by-id/path", "delete/user",
				"exchange/one-time-use/reuse-revokes", "logout/global", "logout/token")},
		{name: "rotation-new-id", defect: "gives a one-time-use token a new id (a new row) on each rotation",
			wrap: rotationNewID, only: sessionPrefixes,
			fails: []string{"exchange/one-time-use/stable-id", "exchange/one-time-use/grace", "exchange/one-time-use/reuse-revokes",
				"revoke-by-id/after-rotations", "logout/rotated-away"}},
		{name: "grace-forks", defect: "mints another live token for each reuse within the grace period",
			wrap: graceForks, only: sessionPrefixes,
			fails: []string{"exchange/one-time-use/grace"}},
		{name: "no-reuse-detection", defect: "refuses a rotated-away value without revoking its session",
			wrap: noReuseDetection, only: sessionPrefixes,
			fails: []string{"exchange/one-time-use/grace", "exchange/one-time-use/reuse-revokes"}},
		{name: "logout-does-nothing", defect: "answers 200 to POST /api/logout and does nothing",
			wrap: answer(isLogout, http.StatusOK), only: sessionPrefixes,
			fails: []string{"logout/token", "logout/global", "logout/cookie", "logout/clears-cookies", "logout/rotated-away"}},
		{name: "logout-needs-key", defect: "answers 401 to a logout without an API key",
			wrap: func(next http.Handler, _ string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if isLogout(r) && r.Header.Get("Authorization") == "" {
						w.WriteHeader(http.StatusUnauthorized)
						return
					}
					next.ServeHTTP(w, r)
				})
			}, only: sessionPrefixes,
			fails: []string{"logout/token", "logout/global", "logout/cookie", "logout/unknown", "logout/clears-cookies", "logout/rotated-away"}},
		{name: "logout-ignores-global", defect: "revokes only the named token on a global logout",
			wrap: func(next http.Handler, _ string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if isLogout(r) {
						editQuery(r, func(q url.Values) { q.Del("global") })
						editBody(r, func(b map[string]any) { delete(b, "global") })
					}
					next.ServeHTTP(w, r)
				})
			}, only: sessionPrefixes,
			fails: []string{"logout/global"}},
		{name: "logout-ignores-cookie", defect: "does not read the refresh_token cookie on logout",
			wrap: func(next http.Handler, _ string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if isLogout(r) {
						r.Header.Del("Cookie")
					}
					next.ServeHTTP(w, r)
				})
			}, only: sessionPrefixes,
			fails: []string{"logout/cookie"}},
		{name: "logout-keeps-cookies", defect: "does not clear the session cookies on logout",
			wrap: rewriteAnswer(isLogout, func(rec *httptest.ResponseRecorder) { rec.Header().Del("Set-Cookie") }), only: sessionPrefixes,
			fails: []string{"logout/clears-cookies"}},
		{name: "exchange-sets-no-cookies", defect: "sets no cookies with an exchange",
			wrap: rewriteAnswer(isExchange, func(rec *httptest.ResponseRecorder) { rec.Header().Del("Set-Cookie") }), only: sessionPrefixes,
			fails: []string{"exchange/sets-cookies"}},
		{name: "body-wins-over-cookie", defect: "takes the body's refreshToken over the refresh_token cookie",
			wrap: func(next http.Handler, _ string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if isExchange(r) && len(readBody(r)) > 0 {
						r.Header.Del("Cookie")
					}
					next.ServeHTTP(w, r)
				})
			}, only: sessionPrefixes,
			fails: []string{"exchange/cookie-wins"}},
		{name: "no-last-accessed", defect: "never records when a token was last used",
			wrap: rewriteAnswer(func(r *http.Request) bool { return r.Method == http.MethodGet }, func(rec *httptest.ResponseRecorder) {
				rec.Body = bytes.NewBufferString(regexp.MustCompile(`"lastAccessed(Instant|Address)":("[^"]*"|\d+),?`).ReplaceAllString(rec.Body.String(), ""))
			}), only: sessionPrefixes,
			fails: []string{"exchange/last-accessed"}},
		{name: "access-token-refused", defect: "accepts only API keys: an access token is answered 401",
			wrap: func(next http.Handler, _ string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if _, err := r.Cookie("access_token"); err == nil || strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
						w.WriteHeader(http.StatusUnauthorized)
						return
					}
					next.ServeHTTP(w, r)
				})
			}, only: []string{"revoke/access-token/", "revoke-by-id/access-token-cookie"},
			fails: []string{"revoke/access-token/own", "revoke/access-token/other-user", "revoke-by-id/access-token-cookie"}},
		{name: "user-delete-deactivates", defect: "only deactivates a user asked to be deleted: the tokens stay",
			wrap: userDeleteDeactivates, only: []string{"delete/"}, ownServer: true,
			fails: []string{"delete/user"}},
		{name: "insert-instant-from-start", defect: "stamps an imported token without insertInstant with its startInstant",
			wrap: func(next http.Handler, _ string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if isImport(r) {
						editBody(r, func(b map[string]any) {
							items, _ := b["refreshTokens"].([]any)
							for _, it := range items {
								if item, ok := it.(map[string]any); ok && item["insertInstant"] == nil && item["startInstant"] != nil {
									item["insertInstant"] = item["startInstant"]
								}
							}
						})
					}
					next.ServeHTTP(w, r)
				})
			}, only: []string{"import/"},
			fails: []string{"import/insert-instant"}},
		{name: "oauth-revoke-any-client", defect: "revokes any token sent to /oauth2/revoke, whoever the client",
			wrap: func(next http.Handler, key string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if !isOAuthRevoke(r) {
						next.ServeHTTP(w, r)
						return
					}
					form, _ := url.ParseQuery(string(readBody(r)))
					asKey(next, key, "", http.MethodDelete, "/api/jwt/refresh?token="+url.QueryEscape(form.Get("token")), nil)
					w.WriteHeader(http.StatusOK)
				})
			}, only: []string{"oauth-revoke/"},
			fails: []string{"oauth-revoke/other-client", "oauth-revoke/bad-client"}},
		{name: "oauth-revoke-nothing", defect: "answers 200 to /oauth2/revoke and revokes nothing",
			wrap: answer(isOAuthRevoke, http.StatusOK), only: []string{"oauth-revoke/"},
			fails: []string{"oauth-revoke/own-token", "oauth-revoke/bad-client"}},
		{name: "no-discovery", defect: "has no OpenID discovery document",
			wrap:  answer(func(r *http.Request) bool { return r.URL.Path == "/.well-known/openid-configuration" }, http.StatusNotFound),
			only:  []string{"oauth-revoke/"},
			fails: []string{"oauth-revoke/discovery"}},
		{name: "receipt-ignored", defect: "ignores Prefer: return=representation",
			wrap: func(next http.Handler, _ string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					r.Header.Del("Prefer")
					next.ServeHTTP(w, r)
				})
			}, only: []string{"revoke/receipt/"},
			fails: []string{"revoke/receipt/by-user"}},
		{name: "except-ignored", defect: "ignores exceptTokenId",
			wrap:  onRevoke(func(r *http.Request) { editQuery(r, func(q url.Values) { q.Del("exceptTokenId") }) }),
			only:  []string{"revoke/except/"},
			fails: []string{"revoke/except/api-key", "revoke/except/access-token"}},
		{name: "validate-ignores-sessions", defect: "validates an access token by signature and expiry only, as FusionAuth does",
			wrap: validateIgnoresSessions, only: []string{"validate/"},
			fails: []string{"validate/revoked-session"}},
		{name: "validate-unwrapped", defect: "answers /api/jwt/validate with the bare claims, without {\"jwt\": …}",
			wrap: rewriteAnswer(func(r *http.Request) bool { return r.URL.Path == "/api/jwt/validate" }, func(rec *httptest.ResponseRecorder) {
				var body struct {
					JWT json.RawMessage `json:"jwt"`
				}
				if rec.Code == http.StatusOK && json.Unmarshal(rec.Body.Bytes(), &body) == nil {
					rec.Body = bytes.NewBuffer(body.JWT)
				}
			}), only: []string{"validate/"},
			// The unwrapped answer also breaks the contract's schema wherever a case validates.
			fails: []string{"validate/shape", "validate/revoked-session"}},
		{name: "no-ssf-configuration", defect: "publishes no Shared Signals configuration",
			wrap:  answer(func(r *http.Request) bool { return r.URL.Path == "/.well-known/ssf-configuration" }, http.StatusNotFound),
			fails: []string{"ssf/configuration"}},
		{name: "ssf-delete-keeps-stream", defect: "answers 204 to a stream's delete and keeps the stream",
			wrap: answer(func(r *http.Request) bool { return r.Method == http.MethodDelete && r.URL.Path == "/ssf/streams" },
				http.StatusNoContent), ownServer: true,
			fails: []string{"ssf/stream-lifecycle"}},
	}
}

func isOAuthRevoke(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == "/oauth2/revoke"
}

// validateIgnoresSessions stands for a server that checks only an access token's
// signature and expiry: a token it once found valid stays valid.
func validateIgnoresSessions(next http.Handler, _ string) http.Handler {
	var mu sync.Mutex
	valid := map[string][]byte{} // Authorization → the 200 body it got
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/jwt/validate" {
			next.ServeHTTP(w, r)
			return
		}
		auth := r.Header.Get("Authorization")
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		mu.Lock()
		defer mu.Unlock()
		if rec.Code == http.StatusOK {
			valid[auth] = rec.Body.Bytes()
		} else if body, ok := valid[auth]; ok {
			rec = httptest.NewRecorder()
			rec.Header().Set("Content-Type", "application/json")
			rec.WriteHeader(http.StatusOK)
			rec.Body = bytes.NewBuffer(body)
		}
		replay(w, rec)
	})
}

// scope is the id prefixes of the cases the variant runs (nil: all of them).
func (v variant) scope() []string {
	if v.full || v.only != nil {
		return v.only
	}
	seen := map[string]bool{}
	var out []string
	for _, id := range v.fails {
		api, _, _ := strings.Cut(id, "/")
		if !seen[api] {
			seen[api] = true
			out = append(out, api+"/")
		}
	}
	return out
}

// sessionPrefixes select the cases about a session's life around an exchange.
var sessionPrefixes = []string{"exchange/", "logout/", "revoke-by-id/after-rotations"}

func isLogout(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == "/api/logout"
}

// answer answers the requests match selects with an empty status, without the real server.
func answer(match func(*http.Request) bool, status int) func(http.Handler, string) http.Handler {
	return func(next http.Handler, _ string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if match(r) {
				w.WriteHeader(status)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// asKey sends a request of the variant's own to the real server with the API key
// (and tenant), and records the answer.
func asKey(next http.Handler, key, tenant, method, target string, body any) *httptest.ResponseRecorder {
	var rd io.Reader = http.NoBody
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	r := httptest.NewRequest(method, target, rd)
	r.Header.Set("Authorization", key)
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if tenant != "" {
		r.Header.Set("X-FusionAuth-TenantId", tenant)
	}
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	return rec
}

// exchangedAnswer is a successful exchange as the variants read it.
type exchangedAnswer struct {
	Token          string `json:"token"`
	RefreshToken   string `json:"refreshToken"`
	RefreshTokenID string `json:"refreshTokenId"`
}

// exchangeThrough runs an exchange on the real server and decodes it: the value
// sent, the answer, and the user, application and tenant of its access token.
func exchangeThrough(next http.Handler, r *http.Request) (sent string, rec *httptest.ResponseRecorder, out exchangedAnswer, claims map[string]string) {
	var req struct {
		RefreshToken string `json:"refreshToken"`
	}
	body := readBody(r)
	_ = json.Unmarshal(body, &req)
	if c, err := r.Cookie("refresh_token"); err == nil {
		req.RefreshToken = c.Value // the cookie wins
	}
	rec = serve(next, r, body)
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
		return req.RefreshToken, rec, out, nil
	}
	claims = map[string]string{}
	if parts := strings.Split(out.Token, "."); len(parts) == 3 {
		raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var all map[string]any
		_ = json.Unmarshal(raw, &all)
		for _, k := range []string{"sub", "applicationId", "tid"} {
			claims[k], _ = all[k].(string)
		}
	}
	return req.RefreshToken, rec, out, claims
}

// mint imports a new token for user and application (in tenant) with a fresh
// value, and returns the value and the id the listing gives it.
func mint(next http.Handler, key string, claims map[string]string) (value, id string) {
	value = "minted-" + uuid.NewString()
	start := time.Now().Add(-time.Minute).UnixMilli() - int64(time.Now().Nanosecond()%1000)
	rec := asKey(next, key, claims["tid"], http.MethodPost, "/api/user/refresh-token/import", map[string]any{"refreshTokens": []any{
		map[string]any{"token": value, "userId": claims["sub"], "applicationId": claims["applicationId"], "startInstant": start}}})
	if rec.Code != http.StatusOK {
		return value, ""
	}
	rec = asKey(next, key, claims["tid"], http.MethodGet, "/api/jwt/refresh?userId="+claims["sub"], nil)
	var list struct {
		RefreshTokens []struct {
			ID           string `json:"id"`
			StartInstant int64  `json:"startInstant"`
		} `json:"refreshTokens"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &list)
	for _, t := range list.RefreshTokens {
		if t.StartInstant == start {
			id = t.ID
		}
	}
	return value, id
}

// answerExchange replaces a successful exchange's answer with value and id.
func answerExchange(w http.ResponseWriter, rec *httptest.ResponseRecorder, out exchangedAnswer, value, id string) {
	out.RefreshToken, out.RefreshTokenID = value, id
	b, _ := json.Marshal(out)
	rec.Body = bytes.NewBuffer(b)
	rec.Header().Del("Set-Cookie")
	replay(w, rec)
}

// rotationNewID stands for a server that rotates a one-time-use token by
// replacing it with a new one: the old row (and id) goes, a new row comes.
func rotationNewID(next http.Handler, key string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isExchange(r) {
			next.ServeHTTP(w, r)
			return
		}
		sent, rec, out, claims := exchangeThrough(next, r)
		if claims == nil || out.RefreshToken == sent {
			replay(w, rec)
			return
		}
		asKey(next, key, claims["tid"], http.MethodDelete, "/api/jwt/refresh/"+out.RefreshTokenID, nil)
		value, id := mint(next, key, claims)
		answerExchange(w, rec, out, value, id)
	})
}

// graceForks stands for a server that answers a reuse within the grace period
// with a brand-new token instead of the current one.
func graceForks(next http.Handler, key string) http.Handler {
	var mu sync.Mutex
	rotated := map[string]bool{} // values a rotation has replaced
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isExchange(r) {
			next.ServeHTTP(w, r)
			return
		}
		sent, rec, out, claims := exchangeThrough(next, r)
		if claims == nil || out.RefreshToken == sent {
			replay(w, rec)
			return
		}
		mu.Lock()
		again := rotated[sent]
		rotated[sent] = true
		mu.Unlock()
		if !again {
			replay(w, rec)
			return
		}
		value, id := mint(next, key, claims)
		answerExchange(w, rec, out, value, id)
	})
}

// noReuseDetection stands for a server that refuses a rotated-away value but
// leaves its session alive.
func noReuseDetection(next http.Handler, _ string) http.Handler {
	var mu sync.Mutex
	rotated := map[string]bool{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isExchange(r) {
			next.ServeHTTP(w, r)
			return
		}
		var req struct {
			RefreshToken string `json:"refreshToken"`
		}
		_ = json.Unmarshal(readBody(r), &req)
		mu.Lock()
		old := rotated[req.RefreshToken]
		mu.Unlock()
		if old {
			writeErrors(w, `{"fieldErrors":{"refreshToken":[{"code":"[invalid]refreshToken","message":"rotated away"}]}}`)
			return
		}
		sent, rec, out, claims := exchangeThrough(next, r)
		if claims != nil && out.RefreshToken != sent {
			mu.Lock()
			rotated[sent] = true
			mu.Unlock()
		}
		replay(w, rec)
	})
}

// userDeleteDeactivates stands for a server that deactivates a user asked to be
// deleted; asked a second time, it deletes.
func userDeleteDeactivates(next http.Handler, _ string) http.Handler {
	var mu sync.Mutex
	seen := map[string]bool{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/api/user/") {
			mu.Lock()
			first := !seen[r.URL.Path]
			seen[r.URL.Path] = true
			mu.Unlock()
			if first {
				editQuery(r, func(q url.Values) { q.Del("hardDelete") })
			}
		}
		next.ServeHTTP(w, r)
	})
}

// relayDeliveries stands for a server whose events are built wrong. It registers
// every webhook with a relay of the test's own instead of the URL given; the
// relay edits each delivered event, signs it again as the server would — with
// the webhook's signing secret, and with the signing key, which the relay made:
// a key generation is turned into the import of a key pair the relay holds — and
// passes it on to the URL given, in the order it came. So only the edit shows.
func relayDeliveries(t *testing.T, next http.Handler, edit func(event map[string]any)) http.Handler {
	type target struct{ url, secret string }
	var mu sync.Mutex
	targets := map[string]target{} // relay path → where the delivery was meant to go
	forward := &http.Client{Timeout: 5 * time.Second}
	signer, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	kid := "relay-" + uuid.NewString()
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		to, ok := targets[r.URL.Path]
		mu.Unlock()
		raw, _ := io.ReadAll(r.Body)
		decode := func() (envelope map[string]map[string]any) {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			if dec.Decode(&envelope) != nil {
				return nil
			}
			return envelope
		}
		envelope, before := decode(), decode()
		if !ok || envelope["event"] == nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		edit(envelope["event"])
		body := raw
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, to.url, nil)
		req.Header = r.Header.Clone()
		if !reflect.DeepEqual(envelope, before) {
			body, _ = json.Marshal(envelope)
			mac := hmac.New(sha256.New, []byte(to.secret))
			mac.Write(body)
			req.Header.Set("X-Refreshd-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
			if req.Header.Get("X-FusionAuth-Signature-JWT") != "" {
				req.Header.Set("X-FusionAuth-Signature-JWT", signRS256(signer, kid, body))
			}
		}
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		resp, err := forward.Do(req)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
	}))
	t.Cleanup(relay.Close)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/key/generate") {
			editBody(r, func(b map[string]any) {
				k, _ := b["key"].(map[string]any)
				b["key"] = map[string]any{"name": k["name"], "kid": kid,
					"privateKey": string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(signer)}))}
			})
			r.URL.Path = "/api/key/import" + strings.TrimPrefix(r.URL.Path, "/api/key/generate")
		}
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/webhook") {
			editBody(r, func(b map[string]any) {
				hook, _ := b["webhook"].(map[string]any)
				url, _ := hook["url"].(string)
				secret, _ := hook["signingSecret"].(string)
				if url == "" {
					return
				}
				path := "/" + uuid.NewString()
				mu.Lock()
				targets[path] = target{url, secret}
				mu.Unlock()
				hook["url"] = relay.URL + path
			})
		}
		next.ServeHTTP(w, r)
	})
}

// signRS256 makes a FusionAuth webhook signature of body with key.
func signRS256(key *rsa.PrivateKey, kid string, body []byte) string {
	seg := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	sum := sha256.Sum256(body)
	signed := seg(map[string]string{"alg": "RS256", "kid": kid, "typ": "JWT"}) + "." +
		seg(map[string]string{"request_body_sha256": base64.StdEncoding.EncodeToString(sum[:])})
	digest := sha256.Sum256([]byte(signed))
	sig, _ := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// revokeUserPerApp stands for a server that revokes all of a user's tokens by
// revoking them for each of the user's applications in turn: the same tokens go,
// but each step records its own user-and-application event. Requests that are
// not a plain revocation by user alone pass through unchanged.
func revokeUserPerApp(next http.Handler, _ string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isRevoke(r) {
			next.ServeHTTP(w, r)
			return
		}
		body := readBody(r)
		var b struct {
			Token, UserID, ApplicationID *string
			EventInfo                    json.RawMessage
		}
		if len(body) > 0 && (r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &b) != nil) {
			next.ServeHTTP(w, r)
			return
		}
		q := r.URL.Query()
		pick := func(name string, fromBody *string) string {
			if fromBody != nil && *fromBody != "" {
				return *fromBody
			}
			if len(q[name]) == 1 && given(q.Get(name)) {
				return q.Get(name)
			}
			return ""
		}
		user := pick("userId", b.UserID)
		if user == "" || pick("token", b.Token) != "" || pick("applicationId", b.ApplicationID) != "" ||
			len(q["userId"]) > 1 || uuid.Validate(user) != nil {
			next.ServeHTTP(w, r)
			return
		}
		list := r.Clone(r.Context())
		list.Method, list.URL.RawQuery = http.MethodGet, "userId="+user
		rec := serve(next, list, nil)
		var listed struct {
			RefreshTokens []struct {
				ApplicationID string `json:"applicationId"`
			} `json:"refreshTokens"`
		}
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &listed) != nil {
			next.ServeHTTP(w, r)
			return
		}
		done := map[string]bool{}
		for _, t := range listed.RefreshTokens {
			if done[t.ApplicationID] {
				continue
			}
			done[t.ApplicationID] = true
			del := r.Clone(r.Context())
			del.URL.RawQuery = url.Values{"userId": {user}, "applicationId": {t.ApplicationID}}.Encode()
			var part []byte
			if len(b.EventInfo) > 0 {
				part = []byte(`{"eventInfo":` + string(b.EventInfo) + `}`)
				del.Header.Set("Content-Type", "application/json")
			}
			if rec := serve(next, del, part); rec.Code != http.StatusOK {
				replay(w, rec)
				return
			}
		}
		w.WriteHeader(http.StatusOK)
	})
}

// goneCases check that what they revoked is gone: its value answers 400
// [invalid]refreshToken and its id 404.
var goneCases = []string{
	"exchange/one-time-use/reuse-revokes", "revoke-by-id/after-rotations", "logout/token", "logout/global", "logout/cookie",
	"logout/rotated-away", "revoke/access-token/own", "revoke-by-id/access-token-cookie", "delete/user", "delete/application",
	"oauth-revoke/own-token",
}

// rotatingCases follow a one-time-use token through its rotations.
var rotatingCases = []string{
	"exchange/one-time-use/stable-id", "exchange/one-time-use/grace", "exchange/one-time-use/reuse-revokes",
	"revoke-by-id/after-rotations", "logout/rotated-away",
}

// expect400Cases are the cases whose only passing answer is a 400.
var expect400Cases = []string{
	"revoke/nothing-selected/bare", "revoke/nothing-selected/empty-params", "revoke/nothing-selected/empty-body",
	"revoke/nothing-selected/null-params", "revoke/malformed-id/query-user-id", "revoke/malformed-id/query-application-id",
	"revoke/malformed-id/body-user-id", "revoke/malformed-id/body-application-id", "revoke/malformed-id/before-unknown",
	"revoke/unknown-user/query", "revoke/unknown-user/with-token", "revoke/unknown-app/query", "revoke/unknown-app/with-user",
	"revoke/invalid-content-type", "revoke/invalid-json/syntax", "revoke/invalid-json/wrong-type", "revoke/repeated-param", "revoke/tenant/malformed",
	"revoke/tenant/unknown", "revoke/too-large", "revoke-by-id/malformed", "retrieve/missing-user-id", "retrieve/unknown-user",
	"retrieve/malformed-user-id", "retrieve-by-id/malformed", "import/missing/token", "import/missing/user-id",
	"import/missing/application-id", "import/missing/start-instant", "import/missing/list", "import/duplicate/stored",
	"import/duplicate/in-batch", "import/unknown-user", "import/unknown-app", "import/all-or-nothing",
	"exchange/missing-token", "exchange/unknown-token", "exchange/revoked/by-token", "exchange/revoked/by-user",
	"exchange/revoked/by-user-and-app", "exchange/revoked/by-app", "exchange/revoked/by-id", "exchange/expired",
	"exchange/one-time-use",
}

// Each broken variant of our server fails exactly the cases its defect touches,
// and together the variants catch every case of the suite.
func TestBrokenVariantsAreCaught(t *testing.T) {
	srv := newServer(t)
	all := conformance.Select(conformance.Cases(), conformance.ProfileStrict, nil)
	var allIDs []string
	for _, c := range all {
		allIDs = append(allIDs, c.ID)
	}
	vs := variants(allIDs)
	caught := make([][]string, len(vs))
	t.Run("variants", func(t *testing.T) {
		for i, v := range vs {
			t.Run(v.name, func(t *testing.T) {
				t.Parallel()
				real, cfg := srv, conformance.Config{}
				if v.ownServer {
					real = newServer(t)
				}
				if v.webhooks {
					real = newServer(t)
					startDispatcher(t, real)
					cfg.WebhookListen = "127.0.0.1:0"
				}
				handler := real.Handler
				if v.wrap != nil {
					handler = v.wrap(handler, real.Key)
				}
				if v.events != nil {
					handler = relayDeliveries(t, handler, v.events)
				}
				ts := httptest.NewServer(handler)
				defer ts.Close()
				cfg.URL, cfg.APIKey = ts.URL, real.Key
				profile := conformance.ProfileStrict
				if v.profile != "" {
					profile = v.profile
				}
				rep := runSuiteOnly(t, cfg, profile, v.scope())
				if v.webhooks {
					expectNoFixtures(t, real)
				}
				got := rep.FailedIDs()
				caught[i] = got
				if _, _, skipped := rep.Counts(); skipped != 0 {
					t.Errorf("%d cases skipped", skipped)
				}
				if missing, extra := diff(got, v.fails); len(missing)+len(extra) > 0 {
					t.Errorf("variant that %s:\nnot caught by: %q\nunexpectedly failed: %q\n%s", v.defect, missing, extra, text(t, rep))
				}
				for _, r := range rep.Results {
					if v.schema && r.Failure != nil && (r.Failure.Kind != conformance.KindSchema || r.Failure.SchemaPath == "") {
						t.Errorf("variant that %s: case %s failed with kind %q (schema path %q), want a schema failure",
							v.defect, r.ID, r.Failure.Kind, r.Failure.SchemaPath)
					}
				}
			})
		}
	})
	seen := map[string]bool{}
	for _, ids := range caught {
		for _, id := range ids {
			seen[id] = true
		}
	}
	for _, id := range allIDs {
		if !seen[id] {
			t.Errorf("no variant makes case %s fail: the suite cannot show it can fail", id)
		}
	}
	expectNoFixtures(t, srv)
}

// diff returns the ids in want but not got, and in got but not want.
func diff(got, want []string) (missing, extra []string) {
	g, w := map[string]bool{}, map[string]bool{}
	for _, id := range got {
		g[id] = true
	}
	for _, id := range want {
		w[id] = true
		if !g[id] {
			missing = append(missing, id)
		}
	}
	for _, id := range got {
		if !w[id] {
			extra = append(extra, id)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return missing, extra
}

// usageCase matches the cases that replay a documented revoke usage in one form:
// with revoke-by-id/path, the cases that check events in webhook mode.
var usageCase = regexp.MustCompile(`^revoke/by-(token|user|user-and-app|app)/(query|body|body-event-info|form|go-client|typescript-client)$`)

func matching(ids []string, re *regexp.Regexp) []string {
	var out []string
	for _, id := range ids {
		if re.MatchString(id) {
			out = append(out, id)
		}
	}
	return out
}

func withoutPrefix(ids []string, prefix string) []string {
	var out []string
	for _, id := range ids {
		if !strings.HasPrefix(id, prefix) {
			out = append(out, id)
		}
	}
	return out
}

// except returns ids without the ones named.
func except(ids []string, drop ...string) []string {
	skip := map[string]bool{}
	for _, id := range drop {
		skip[id] = true
	}
	var out []string
	for _, id := range ids {
		if !skip[id] {
			out = append(out, id)
		}
	}
	return out
}

// coreOnly keeps the ids of core cases.
func coreOnly(ids []string) []string {
	core := map[string]bool{}
	for _, c := range conformance.Select(conformance.Cases(), conformance.ProfileCore, nil) {
		core[c.ID] = true
	}
	var out []string
	for _, id := range ids {
		if core[id] {
			out = append(out, id)
		}
	}
	return out
}

func withPrefix(ids []string, prefix string) []string {
	var out []string
	for _, id := range ids {
		if strings.HasPrefix(id, prefix) {
			out = append(out, id)
		}
	}
	return out
}

func everything(*http.Request) bool { return true }

func writeErrors(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = io.WriteString(w, body)
}

// given is how our server reads a query value: empty, null and undefined are absent.
func given(v string) bool { return v != "" && v != "null" && v != "undefined" }

func isRevoke(r *http.Request) bool {
	return r.Method == http.MethodDelete && r.URL.Path == "/api/jwt/refresh"
}

func isImport(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == "/api/user/refresh-token/import"
}

func isList(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Path == "/api/jwt/refresh"
}

func isExchange(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == "/api/jwt/refresh"
}

func isGetByID(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/jwt/refresh/")
}

// onRevoke edits DELETE /api/jwt/refresh requests before the real server sees them.
func onRevoke(edit func(r *http.Request)) func(http.Handler, string) http.Handler {
	return func(next http.Handler, _ string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isRevoke(r) {
				edit(r)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// rewriteAnswer edits the real server's answer to the requests match selects.
func rewriteAnswer(match func(*http.Request) bool, edit func(rec *httptest.ResponseRecorder)) func(http.Handler, string) http.Handler {
	return func(next http.Handler, _ string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !match(r) {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			edit(rec)
			replay(w, rec)
		})
	}
}

// editJSON edits a 200 answer whose body is a JSON object; others are left as they are.
func editJSON(rec *httptest.ResponseRecorder, edit func(map[string]any)) {
	var m map[string]any
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &m) != nil {
		return
	}
	edit(m)
	b, _ := json.Marshal(m)
	rec.Body = bytes.NewBuffer(b)
}

// serve runs the real server on r with body and records its answer.
func serve(next http.Handler, r *http.Request, body []byte) *httptest.ResponseRecorder {
	r2 := r.Clone(r.Context())
	setBody(r2, body)
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r2)
	return rec
}

func replay(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.Header().Del("Content-Length")
	if rec.Body.Len() == 0 {
		w.Header().Del("Content-Type")
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

func readBody(r *http.Request) []byte {
	if r.Body == nil {
		return nil
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	setBody(r, b)
	return b
}

func setBody(r *http.Request, b []byte) {
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	if len(b) == 0 {
		r.Body = http.NoBody
		r.Header.Del("Content-Type")
	}
}

func editQuery(r *http.Request, edit func(url.Values)) {
	q := r.URL.Query()
	edit(q)
	r.URL.RawQuery = q.Encode()
}

// editBody edits a JSON object body; other bodies are left as they are.
func editBody(r *http.Request, edit func(map[string]any)) {
	b := readBody(r)
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return
	}
	edit(m)
	nb, _ := json.Marshal(m)
	setBody(r, nb)
}
