package impl_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"

	gen "refreshd/generated"
)

// checkAnswer asserts the property every answer has: below 500, a 400 in the
// error format (OAuth's under /oauth2/, RFC 7009), and for any 4xx an unchanged
// database. specPath is the operation's path in the contract.
func checkAnswer(t *testing.T, what, specPath string, resp response, state *dbState, before dbMark) {
	t.Helper()
	if resp.Status >= 500 {
		t.Fatalf("%s: status %d", what, resp.Status)
	}
	if resp.Status == http.StatusBadRequest {
		var e struct {
			FieldErrors   map[string][]struct{ Code string } `json:"fieldErrors"`
			GeneralErrors []struct{ Code string }            `json:"generalErrors"`
		}
		var oauth struct {
			Error string `json:"error"`
		}
		if strings.HasPrefix(specPath, "/oauth2/") {
			if err := json.Unmarshal(resp.Body, &oauth); err != nil || oauth.Error == "" {
				t.Fatalf("%s: 400 body %q is not OAuth's error format", what, resp.Body)
			}
		} else if err := json.Unmarshal(resp.Body, &e); err != nil || (len(e.FieldErrors) == 0 && len(e.GeneralErrors) == 0) {
			t.Fatalf("%s: 400 body %q is not the error format", what, resp.Body)
		}
	}
	if resp.Status >= 400 && !state.unchanged(t, before) {
		t.Fatalf("%s: status %d, and the database changed", what, resp.Status)
	}
}

// TestGarbageNeverFails sends malformed bodies, parameters and ids to every
// operation of the contract: each answer is a 4xx in the contract's shape, never
// a 500, and nothing changes.
func TestGarbageNeverFails(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 1, 2)
	state := newDBState(t, s.Store.DB())
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
						before := state.mark(t)
						checkAnswer(t, fmt.Sprintf("%s %s with %.40q", method, r.path, body), path, s.do(r), state, before)
					}
				}
			}
		}
	}
	s.expectRemaining(w, none)
}

// validBodies holds, by operationId, a request body the operation accepts: the
// input classes below are planted in each of its fields in turn. An operation
// missing here is tried with {} (and the test says so). The revocation is a bulk
// one, which records an event every time, and the exchange uses a token nothing
// else here revokes, so that the event info of each attempt reaches the database.
func validBodies(user, app, tenant uuid.UUID, exchangeToken, stream string) map[string]string {
	now := fmt.Sprint(nowMillis() - 60_000)
	info := `{"deviceName":"d","ipAddress":"192.0.2.1","data":{"n":1,"s":"x"},"location":{"latitude":1.5,"city":"c"}}`
	application := `{"application":{"name":"app","tenantId":"` + tenant.String() + `","jwtConfiguration":{"enabled":true,` +
		`"timeToLiveInSeconds":60,"refreshTokenTimeToLiveInMinutes":60,"refreshTokenUsagePolicy":"OneTimeUse",` +
		`"refreshTokenOneTimeUseConfiguration":{"gracePeriodInSeconds":1}}},"eventInfo":` + info + `}`
	userBody := `{"user":{"email":"e@example.com","username":"u","firstName":"f","lastName":"l","fullName":"f l",` +
		`"password":"p","data":{"n":1,"s":"x"}},"eventInfo":` + info + `}`
	tenantBody := `{"tenant":{"name":"t","jwtConfiguration":{"timeToLiveInSeconds":60}}}`
	key := `{"apiKey":{"key":"` + strings.Repeat("k", 40) + `","description":"d",` +
		`"permissions":{"endpoints":{"/api/jwt/refresh":["DELETE"]}}}}`
	hook := `{"webhook":{"url":"https://example.com/h","description":"d","global":true,` +
		`"eventsEnabled":{"jwt.refresh":true},"connectTimeout":100,"readTimeout":100,"headers":{"X-A":"b"}}}`
	keyGen := `{"key":{"algorithm":"ES256","name":"k","kid":"generated","issuer":"i"}}`
	streamConfig := `"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"https://example.com/ssf",` +
		`"authorization_header":"Bearer x"},"aud":"https://receiver.example","description":"d",` +
		`"events_requested":["https://schemas.openid.net/secevent/caep/event-type/session-revoked"]`
	keyImport := `{"key":{"algorithm":"HS384","name":"h","kid":"imported","secret":"` + strings.Repeat("k", 48) + `"}}`
	return map[string]string{
		"revokeRefreshTokens": `{"userId":"` + user.String() + `","applicationId":"` + app.String() +
			`","eventInfo":` + info + `}`,
		"exchangeRefreshTokenForJWT": `{"refreshToken":"` + exchangeToken + `","timeToLiveInSeconds":60,"eventInfo":` + info + `}`,
		"importRefreshTokens": `{"refreshTokens":[{"token":"imported","userId":"` + user.String() + `","applicationId":"` +
			app.String() + `","startInstant":` + now + `,"insertInstant":` + now + `,"metaData":{"device":{"name":"n",` +
			`"lastAccessedInstant":1,"type":"BROWSER"},"scopes":["s"],"data":{"n":1}}}],"validateDbConstraints":true}`,
		"createApplication": application, "createApplicationWithId": application,
		"createUser": userBody, "createUserWithId": userBody,
		"createTenant": tenantBody, "createTenantWithId": tenantBody,
		"createAPIKey": key, "createAPIKeyWithId": key,
		"createWebhook": hook, "createWebhookWithId": hook, "updateWebhook": hook,
		"logout":      `{"global":false,"refreshToken":"none","eventInfo":` + info + `}`,
		"generateKey": keyGen, "generateKeyWithId": keyGen, "importKey": keyImport, "importKeyWithId": keyImport,
		"createSSFStream":  `{` + streamConfig + `}`,
		"replaceSSFStream": `{"stream_id":"` + stream + `",` + streamConfig + `}`,
		"updateSSFStream":  `{"stream_id":"` + stream + `","description":"e","aud":["a","b"]}`,
		"verifySSFStream":  `{"stream_id":"` + stream + `","state":"s"}`,
	}
}

// validForms holds, by operationId, a form body the operation accepts
// (application/x-www-form-urlencoded).
func validForms(app uuid.UUID) map[string]url.Values {
	return map[string]url.Values{
		"revokeOAuth2Token": {"token": {"none"}, "token_type_hint": {"refresh_token"}, "client_id": {app.String()},
			"client_secret": {"not-the-secret"}},
		"revokeRefreshTokens": {"token": {"none"}},
	}
}

// validQueries holds, by operationId, query parameters the operation accepts.
func validQueries(user, app uuid.UUID) map[string]url.Values {
	return map[string]url.Values{
		"retrieveRefreshTokens": {"userId": {user.String()}},
		"revokeRefreshTokens":   {"userId": {user.String()}, "applicationId": {app.String()}, "token": {"none"}},
		"searchEvents": {"type": {"jwt.refresh"}, "userId": {user.String()}, "applicationId": {app.String()},
			"start": {"0"}, "end": {"9999999999999"}, "limit": {"10"}, "cursor": {"0"}},
		"deleteUser":        {"hardDelete": {"false"}},
		"deleteApplication": {"hardDelete": {"false"}},
	}
}

// Input classes, as raw JSON text planted in place of one field.
var (
	stringClasses = map[string]string{
		"NUL":                 `"a\u0000b"`,
		"invalid UTF-8":       "\"a\xff\xfeb\"",
		"lone surrogate":      `"\ud800"`,
		"reversed surrogates": `"\udc00\ud800"`,
	}
	numberClasses = map[string]string{
		"huge":           `1e400`,
		"beyond int64":   `9223372036854775808`,
		"very long":      `123456789012345678901234567890`,
		"negative":       `-1`,
		"below int64":    `-9223372036854775809`,
		"tiny":           `1e-400`,
		"many decimals":  `0.` + strings.Repeat("1", 500),
		"big exponent":   `0e99999999999999999999`,
		"negative zero":  `-0`,
		"fractional int": `1.5`,
	}
	typeClasses = map[string]string{
		"object": `{}`, "array": `[]`, "null": `null`, "true": `true`, "text": `"x"`, "number": `1`,
		"10,000-deep": strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000),
	}
	contentTypes = []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
		"application/json; charset=utf-16", "application/json;;", "application/vnd.api+json", ""}
	paramClasses = []string{"%00", "a%00b", "%ff", "%ed%a0%80", "-1", "-9223372036854775809", "99999999999999999999999999",
		"1e400", strings.Repeat("a", 5000), "null", "undefined", ""}
)

// plant returns JSON text v with the field at path (object keys and array
// indexes) replaced by raw JSON text.
func plant(v any, path []string, raw string) string {
	const marker = `"@planted@"`
	var set func(v any, path []string) any
	set = func(v any, path []string) any {
		if len(path) == 0 {
			return json.RawMessage(marker)
		}
		switch x := v.(type) {
		case map[string]any:
			out := make(map[string]any, len(x))
			for k, e := range x {
				out[k] = e
			}
			out[path[0]] = set(x[path[0]], path[1:])
			return out
		case []any:
			out := append([]any(nil), x...)
			var i int
			fmt.Sscan(path[0], &i)
			out[i] = set(x[i], path[1:])
			return out
		}
		return v
	}
	b, err := json.Marshal(set(v, path))
	if err != nil {
		panic(err)
	}
	return strings.Replace(string(b), marker, raw, 1)
}

// leaves lists the path of every field of a JSON value, containers included.
func leaves(v any, path []string, out *[][]string) {
	*out = append(*out, path)
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			leaves(x[k], append(path[:len(path):len(path)], k), out)
		}
	case []any:
		for i, e := range x {
			leaves(e, append(path[:len(path):len(path)], fmt.Sprint(i)), out)
		}
	}
}

// firstKeyDuplicated returns JSON text of an object with its first key given a
// second time, with another value.
func firstKeyDuplicated(body string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(body), &m) != nil || len(m) == 0 {
		return body
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteByte('{')
	for _, k := range keys {
		fmt.Fprintf(&b, "%q:%s,", k, m[k])
	}
	fmt.Fprintf(&b, "%q:%s}", keys[0], `"duplicate"`)
	return b.String()
}

// TestEveryOperationEveryInputClass is the property behind "no input makes a
// request fail with 500": for every operation of the contract, and every class
// of hostile input — U+0000, invalid UTF-8, lone surrogates, huge, tiny and
// negative numbers, wrong types, 10,000-deep nesting, duplicate keys, a 7 MiB
// string, odd content types, and the same in path and query parameters — planted
// in each field of an otherwise valid request in turn, the answer is below 500
// and, when it is a 4xx, the database is exactly as before.
func TestEveryOperationEveryInputClass(t *testing.T) {
	s := newServer(t)
	w := s.seed(2, 2, 2)
	state := newDBState(t, s.Store.DB())
	user, app := w.users[0], w.apps[0]
	exchangeToken := w.tokens[pair{w.users[1], w.apps[1]}][0]
	tenant, err := s.Store.DefaultTenant(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	hook := s.registerWebhook("https://example.com/hook", "a-signing-secret-of-some-length", "jwt.refresh")
	keyResp := s.expect(req{method: "POST", path: "/api/api-key", body: map[string]any{"apiKey": map[string]any{}}}, 200)
	var created struct {
		APIKey struct{ ID string } `json:"apiKey"`
	}
	if err := json.Unmarshal(keyResp.Body, &created); err != nil {
		t.Fatal(err)
	}
	fixtures := map[string]string{"tokenId": s.tokenIDs(user)[0], "applicationId": app.String(), "userId": user.String(),
		"tenantId": tenant.ID.String(), "keyId": created.APIKey.ID, "webhookId": hook}
	streamResp := s.expect(req{method: "POST", path: "/ssf/streams", body: `{"delivery":{"method":"urn:ietf:rfc:8935",` +
		`"endpoint_url":"https://example.com/ssf"}}`}, 201)
	var stream struct {
		ID string `json:"stream_id"`
	}
	if err := json.Unmarshal(streamResp.Body, &stream); err != nil {
		t.Fatal(err)
	}
	bodies, queries := validBodies(user, app, tenant.ID, exchangeToken, stream.ID), validQueries(user, app)
	var sent, byStatus = 0, map[int]int{}
	defer func() { t.Logf("%d requests, by status: %v", sent, byStatus) }()
	spec, err := gen.GetSwagger()
	if err != nil {
		t.Fatal(err)
	}

	type attempt struct {
		name string
		r    req
	}
	send := func(t *testing.T, path string, a attempt) {
		t.Helper()
		before := state.mark(t)
		resp := s.do(a.r)
		checkAnswer(t, a.name, path, resp, state, before)
		sent++
		byStatus[resp.Status]++
	}
	var paths []string
	for path := range spec.Paths.Map() {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	for _, path := range paths {
		item := spec.Paths.Value(path)
		methods := make([]string, 0, len(item.Operations()))
		for m := range item.Operations() {
			methods = append(methods, m)
		}
		sort.Strings(methods)
		for _, method := range methods {
			op := item.GetOperation(method)
			t.Run(op.OperationID, func(t *testing.T) {
				s.t = t
				concrete := func(override map[string]string) string {
					p := path
					for _, param := range append(op.Parameters, item.Parameters...) {
						if param.Value.In != openapi3.ParameterInPath {
							continue
						}
						v, ok := override[param.Value.Name]
						if !ok {
							v = fixtures[param.Value.Name]
							if method == http.MethodPost {
								v = uuid.NewString() // a create with an id: a new one each time
							}
						}
						p = strings.ReplaceAll(p, "{"+param.Value.Name+"}", v)
					}
					return p
				}
				query := queries[lowerFirst(op.OperationID)]
				withQuery := func(p string, q url.Values) string {
					if len(q) == 0 {
						return p
					}
					return p + "?" + q.Encode()
				}
				var attempts []attempt
				// Parameters: each path and query parameter in turn.
				for _, param := range append(op.Parameters, item.Parameters...) {
					name := param.Value.Name
					for _, v := range paramClasses {
						switch param.Value.In {
						case openapi3.ParameterInPath:
							if v == "" {
								continue
							}
							attempts = append(attempts, attempt{"path " + name + "=" + v[:min(len(v), 20)],
								req{method: method, path: withQuery(concrete(map[string]string{name: v}), query)}})
						case openapi3.ParameterInQuery:
							raw := withQuery(concrete(nil), query)
							sep := "?"
							if strings.Contains(raw, "?") {
								sep = "&"
							}
							q := url.Values{}
							for k, vs := range query {
								if k != name {
									q[k] = vs
								}
							}
							p := concrete(nil) + "?" + q.Encode() + "&" + name + "=" + v
							attempts = append(attempts,
								attempt{"query " + name + "=" + v[:min(len(v), 20)], req{method: method, path: p}},
								attempt{"query " + name + " twice", req{method: method, path: raw + sep + name + "=" + v}})
						}
					}
				}
				if form, ok := validForms(app)[lowerFirst(op.OperationID)]; ok {
					target := withQuery(concrete(nil), query)
					formType := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
					for name := range form {
						for _, v := range paramClasses {
							q := url.Values{}
							for k, vs := range form {
								if k != name {
									q[k] = vs
								}
							}
							body := q.Encode() + "&" + name + "=" + v
							attempts = append(attempts,
								attempt{"form " + name + "=" + v[:min(len(v), 20)], req{method: method, path: target, body: body, header: formType}},
								attempt{"form " + name + " twice", req{method: method, path: target, body: form.Encode() + "&" + name + "=" + v, header: formType}})
						}
					}
				}
				if op.RequestBody != nil && op.RequestBody.Value.Content.Get("application/json") != nil {
					body, ok := bodies[lowerFirst(op.OperationID)]
					if !ok {
						t.Logf("no valid body known for %s: trying {}", op.OperationID)
						body = `{}`
					}
					var tmpl any
					if err := json.Unmarshal([]byte(body), &tmpl); err != nil {
						t.Fatalf("valid body of %s: %v", op.OperationID, err)
					}
					var fields [][]string
					leaves(tmpl, nil, &fields)
					target := withQuery(concrete(nil), query)
					for _, f := range fields {
						where := strings.Join(f, ".")
						for name, raw := range classesFor(valueAt(tmpl, f)) {
							attempts = append(attempts, attempt{where + ": " + name,
								req{method: method, path: target, body: plant(tmpl, f, raw)}})
						}
					}
					big := `"` + strings.Repeat("x", 7<<20) + `"`
					attempts = append(attempts,
						attempt{"7 MiB string in the first text field", req{method: method, path: target, body: plantFirstString(tmpl, fields, big)}},
						attempt{"duplicate keys", req{method: method, path: target, body: firstKeyDuplicated(body)}})
					for _, ct := range contentTypes {
						attempts = append(attempts, attempt{"content type " + fmt.Sprintf("%q", ct),
							req{method: method, path: target, body: body, header: map[string]string{"Content-Type": ct}}})
					}
				}
				for _, a := range attempts {
					if op.Security != nil && len(*op.Security) == 0 {
						a.r.noKey = true
					}
					send(t, path, a)
				}
			})
		}
	}
}

// classesFor returns the input classes to plant in place of a field holding v:
// for text the text classes, for a number the number classes, for an object or
// an array (free-form data included) 10,000-deep nesting; for each also values of
// the other JSON types.
func classesFor(v any) map[string]string {
	out := map[string]string{}
	add := func(m map[string]string, names ...string) {
		for _, n := range names {
			out[n] = m[n]
		}
	}
	switch v.(type) {
	case string:
		for k, raw := range stringClasses {
			out[k] = raw
		}
		add(typeClasses, "number", "null", "object")
	case float64:
		for k, raw := range numberClasses {
			out[k] = raw
		}
		add(typeClasses, "text", "null", "array")
	case bool:
		add(typeClasses, "text", "number", "null")
	default:
		add(typeClasses, "10,000-deep", "text", "null", "true", "array", "object", "number")
	}
	return out
}

// valueAt returns the field of v at path.
func valueAt(v any, path []string) any {
	for _, k := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			var i int
			fmt.Sscan(k, &i)
			v = x[i]
		}
	}
	return v
}

// plantFirstString plants raw in the first field holding text.
func plantFirstString(tmpl any, fields [][]string, raw string) string {
	for _, f := range fields {
		if _, ok := valueAt(tmpl, f).(string); ok {
			return plant(tmpl, f, raw)
		}
	}
	return plant(tmpl, nil, raw)
}

// lowerFirst turns the embedded spec's operation id into the contract's.
func lowerFirst(id string) string {
	if id == "" {
		return id
	}
	return strings.ToLower(id[:1]) + id[1:]
}
