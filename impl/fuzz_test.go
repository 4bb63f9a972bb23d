package impl_test

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"

	gen "refreshd/generated"
	"refreshd/internal/testserver"
)

// Fixtures of the request fuzzer: fixed ids and token values, so that inputs
// (and the seed corpus) can name them and a failing input replays alike.
var (
	fuzzUser   = uuid.MustParse("f0000000-0000-4000-8000-000000000001")
	fuzzApp    = uuid.MustParse("f0000000-0000-4000-8000-000000000002")
	fuzzTokens = map[uuid.UUID]string{
		uuid.MustParse("f0000000-0000-4000-8000-000000000003"): "fuzz-token-1",
		uuid.MustParse("f0000000-0000-4000-8000-000000000004"): "fuzz-token-2",
	}
)

// fuzzContentTypes are what the content-type input chooses from.
var fuzzContentTypes = []string{"application/json", "", "text/plain", "application/x-www-form-urlencoded",
	"application/json; charset=utf-8", "multipart/form-data; boundary=b", "application/json;;x"}

// fuzzOperation is one operation of the contract.
type fuzzOperation struct {
	id, method, path string
	anonymous        bool
}

func fuzzOperations(f *testing.F) []fuzzOperation {
	spec, err := gen.GetSwagger()
	if err != nil {
		f.Fatal(err)
	}
	var ops []fuzzOperation
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			ops = append(ops, fuzzOperation{id: lowerFirst(op.OperationID), method: method, path: path,
				anonymous: op.Security != nil && len(*op.Security) == 0})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].id < ops[j].id })
	return ops
}

// FuzzRequest sends what the fuzzer makes of an operation (named, or chosen by
// the name's hash), a path parameter, a query string, a body and a content type
// to the real server over a real socket, and checks the property of every
// answer: below 500, a 400 in the error format, and no change to the database
// on a 4xx. The fixtures are restored before each input.
//
// go test ./impl -run '^$' -fuzz '^FuzzRequest$' -fuzztime 1m
func FuzzRequest(f *testing.F) {
	srv := testserver.Start(f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	db := srv.Store.DB()
	tenant, err := srv.Store.DefaultTenant(f.Context())
	if err != nil {
		f.Fatal(err)
	}
	email := "fixture-" + uuid.NewString() + "@example.com" // no input can take it
	api := &testServer{t: nil, URL: srv.URL, Key: srv.Key, Store: srv.Store}
	// The fixtures are made through the API when missing (so that they stay
	// whatever the schema grows) and revived by SQL when deactivated.
	restore := func(t *testing.T) {
		api.t = t
		var users, apps int
		if err := db.QueryRow(`SELECT (SELECT count(*) FROM users WHERE id = $1), (SELECT count(*) FROM applications WHERE id = $2)`,
			fuzzUser, fuzzApp).Scan(&users, &apps); err != nil {
			t.Fatalf("restore fixtures: %v", err)
		}
		if users == 0 {
			api.expect(req{method: "POST", path: "/api/user/" + fuzzUser.String(),
				body: map[string]any{"user": map[string]any{"email": email}}}, 200)
		}
		if apps == 0 {
			api.expect(req{method: "POST", path: "/api/application/" + fuzzApp.String(),
				body: map[string]any{"application": map[string]any{"name": "fuzz"}}}, 200)
		}
		// One round trip for the rest: revive, and put back the tokens (the
		// values are fixed; the conflict clause makes this a no-op when present).
		var b strings.Builder
		fmt.Fprintf(&b, `UPDATE users SET active = true WHERE id = '%s' AND NOT active;
			UPDATE applications SET active = true WHERE id = '%s' AND NOT active;`, fuzzUser, fuzzApp)
		for id, value := range fuzzTokens {
			fmt.Fprintf(&b, `INSERT INTO refresh_tokens (id, tenant_id, user_id, application_id, token_hash, start_instant,
				insert_instant, expires_at) VALUES ('%s', '%s', '%s', '%s', sha256('%s'), %[6]d, %[6]d, %[6]d + 3600000)
				ON CONFLICT DO NOTHING;`, id, tenant.ID, fuzzUser, fuzzApp, value, nowMillis())
		}
		if _, err := db.Exec(b.String()); err != nil {
			t.Fatalf("restore fixtures: %v", err)
		}
	}

	// After an answer that may have written, everything but the fixtures goes,
	// so that the database stays small however long the fuzzer runs.
	prune := func(t *testing.T) {
		for _, q := range []string{
			`DELETE FROM events`, `DELETE FROM webhooks`,
			`DELETE FROM api_keys WHERE key_hash <> sha256(convert_to($1, 'UTF8'))`,
			`DELETE FROM users WHERE id <> '` + fuzzUser.String() + `'`,
			`DELETE FROM applications WHERE id <> '` + fuzzApp.String() + `'`,
			`DELETE FROM tenants WHERE NOT is_default`,
		} {
			args := []any{}
			if strings.Contains(q, "$1") {
				args = append(args, srv.Key)
			}
			if _, err := db.Exec(q, args...); err != nil {
				t.Fatalf("prune: %v", err)
			}
		}
	}
	state := newDBState(f, db)
	ops := fuzzOperations(f)
	byID := map[string]fuzzOperation{}
	for _, op := range ops {
		byID[op.id] = op
	}
	fixtureParams := map[string]string{"userId": fuzzUser.String(), "applicationId": fuzzApp.String(),
		"tokenId": "f0000000-0000-4000-8000-000000000003", "tenantId": tenant.ID.String()}

	f.Add("revokeRefreshTokens", "", "", []byte(`{"token":"fuzz-token-1","eventInfo":{"deviceName":"a\u0000b"}}`), uint8(0))
	f.Fuzz(func(t *testing.T, opName, param, query string, body []byte, contentType uint8) {
		op, ok := byID[opName]
		if !ok {
			h := fnv.New32a()
			h.Write([]byte(opName))
			op = ops[int(h.Sum32()%uint32(len(ops)))]
		}
		path := op.path
		for strings.Contains(path, "{") {
			start, end := strings.Index(path, "{"), strings.Index(path, "}")
			name, value := path[start+1:end], param
			if value == "" {
				value = fixtureParams[name]
				if value == "" {
					value = uuid.NewString()
				}
			}
			path = path[:start] + url.PathEscape(value) + path[end+1:]
		}
		target := srv.URL + path
		if query != "" {
			target += "?" + escapeQuery(query)
		}
		hr, err := http.NewRequest(op.method, target, bytes.NewReader(body))
		if err != nil {
			t.Skip("not a request an HTTP client can send:", err)
		}
		if ct := fuzzContentTypes[int(contentType)%len(fuzzContentTypes)]; ct != "" && len(body) > 0 {
			hr.Header.Set("Content-Type", ct)
		}
		if !op.anonymous {
			hr.Header.Set("Authorization", srv.Key)
		}
		restore(t)
		before := state.mark(t)
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatalf("%s %s: %v", op.method, target, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		checkAnswer(t, fmt.Sprintf("%s %.200s with %.200q", op.method, target, body), op.path,
			response{Status: resp.StatusCode, Body: raw, Header: resp.Header}, state, before)
		if resp.StatusCode < 300 && op.method != http.MethodGet {
			prune(t)
		}
	})
}

// escapeQuery percent-encodes what may not appear raw in a request line,
// leaving the rest (bad escapes included) for the server to judge.
func escapeQuery(q string) string {
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c <= ' ' || c >= 0x7f || c == '#' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
