package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/google/uuid"

	gen "refreshd/generated"
)

const importPath = "/api/user/refresh-token/import"

func (e *Env) importTokens(ctx context.Context, ts ...*token) *exchange {
	req := gen.RefreshTokenImportRequest{}
	for _, t := range ts {
		req.RefreshTokens = append(req.RefreshTokens, t.importItem())
	}
	return call(ctx, func(ctx context.Context) error {
		_, err := e.s.api.ImportRefreshTokensWithResponse(ctx, nil, req)
		return err
	})
}

// importWithout sends a batch as raw JSON, leaving the property drop out of the
// item at index at: a request the generated client, whose fields are required,
// cannot make.
func importWithout(ts []*token, at int, drop string) rawRequest {
	items := make([]map[string]any, len(ts))
	for i, t := range ts {
		items[i] = map[string]any{"token": t.value, "userId": t.userID, "applicationId": t.appID, "startInstant": t.start}
	}
	delete(items[at], drop)
	body, _ := json.Marshal(map[string]any{"refreshTokens": items})
	return rawRequest{method: http.MethodPost, target: importPath, body: body}
}

// importRefused sends a batch that must be refused in a fresh world of 2 users
// × 2 applications, one token each: the answer is checked, then that the world's
// tokens all remain and no token of the batch was stored.
func importRefused(batch func(e *Env, w *world) []*token, send func(ctx context.Context, e *Env, ts []*token) *exchange,
	check func(e *Env, x *exchange) *Failure) func(ctx context.Context, e *Env) *Failure {
	return func(ctx context.Context, e *Env) *Failure {
		var ts []*token
		return refused(func(ctx context.Context, w *world) *Failure {
			ts = batch(e, w)
			return nil
		}, func(ctx context.Context, e *Env, w *world) *exchange {
			return send(ctx, e, ts)
		}, check)(ctx, e)
	}
}

// goodAndBad is a batch of one good token and, at index 1, one changed by bad.
func goodAndBad(bad func(e *Env, w *world, t *token)) func(e *Env, w *world) []*token {
	return func(e *Env, w *world) []*token {
		good := w.newToken(1, 1, "new u1/a1")
		other := w.newToken(2, 2, "new u2/a2")
		bad(e, w, other)
		return []*token{good, other}
	}
}

func sendGenerated(ctx context.Context, e *Env, ts []*token) *exchange {
	return e.importTokens(ctx, ts...)
}

func sendWithout(drop string) func(ctx context.Context, e *Env, ts []*token) *exchange {
	return func(ctx context.Context, e *Env, ts []*token) *exchange {
		return e.raw(ctx, importWithout(ts, 1, drop))
	}
}

func importCases() []Case {
	keep := func(e *Env, w *world, t *token) {}
	what := map[string]string{"token": "a value", "userId": "a userId", "applicationId": "an applicationId", "startInstant": "a startInstant"}
	missing := func(field string) Case {
		return Case{ID: "import/missing/" + kebab(field), Title: fmt.Sprintf("An imported token without %s is refused", what[field]),
			Source: sourceOpenAPI, Documented: []string{docImportErr, docImport}, Profile: ProfileCore,
			Requirement: fmt.Sprintf("A batch of a good token and, at index 1, a token without %s (%s) answers 400 with exactly refreshTokens[1].%s: [missing]refreshTokens.%s, and neither token is stored.", what[field], field, field, field),
			Run: importRefused(goodAndBad(keep), sendWithout(field),
				errorCodes(fieldCode("refreshTokens[1]."+field, "[missing]refreshTokens."+field)))}
	}
	return []Case{
		{ID: "import/round-trip", Title: "Imported tokens are stored and listed",
			Source: sourceContract, Documented: []string{docImportOK}, Profile: ProfileCore,
			Requirement: "A batch of 4 tokens over 2 users × 2 applications answers 200 with an empty body; each token is then listed for its user with its applicationId and startInstant, and found by its id.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 2, 2, 0)
				if fail != nil {
					return fail
				}
				ts := []*token{w.newToken(1, 1, "u1/a1/1"), w.newToken(1, 2, "u1/a2/1"), w.newToken(2, 1, "u2/a1/1"), w.newToken(2, 2, "u2/a2/1")}
				x := e.importTokens(ctx, ts...)
				if fail := e.expectEmpty(x, http.StatusOK); fail != nil {
					return fail
				}
				w.tokens = append(w.tokens, ts...)
				if fail := w.learnIDs(ctx); fail != nil {
					fail.Note = "After " + e.step(x)
					return fail
				}
				return w.expectTokens(ctx, x, nothing)
			}},
		{ID: "import/unmodelled-properties", Title: "Properties the contract does not model are ignored on import",
			Source: sourceOpenAPI, Documented: []string{docUnmodelled, docImport}, Profile: ProfileCore,
			Requirement: "A batch whose tokens also carry id, tenantId, data and an unknown property, with validateDbConstraints and an unknown top-level property, answers 200 with an empty body, and the tokens are stored.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 1, 2, 0)
				if fail != nil {
					return fail
				}
				ts := []*token{w.newToken(1, 1, "u1/a1/1"), w.newToken(1, 2, "u1/a2/1")}
				items := make([]map[string]any, len(ts))
				for i, t := range ts {
					items[i] = map[string]any{"token": t.value, "userId": t.userID, "applicationId": t.appID, "startInstant": t.start,
						"id": uuid.New(), "tenantId": uuid.New(), "data": map[string]any{"source": "conformance"}, "somethingNew": true,
						"metaData": map[string]any{"device": map[string]any{"name": "conformance", "somethingNew": 1}, "scopes": []string{"offline_access"}}}
				}
				body, _ := json.Marshal(map[string]any{"refreshTokens": items, "validateDbConstraints": true, "somethingNew": "x"})
				x := e.raw(ctx, rawRequest{method: http.MethodPost, target: importPath, body: body})
				if fail := e.expectEmpty(x, http.StatusOK); fail != nil {
					return fail
				}
				w.tokens = append(w.tokens, ts...)
				if fail := w.learnIDs(ctx); fail != nil {
					fail.Note = "After " + e.step(x)
					return fail
				}
				return w.expectTokens(ctx, x, nothing)
			}},
		missing("token"),
		missing("userId"),
		missing("applicationId"),
		missing("startInstant"),
		{ID: "import/missing/list", Title: "An empty batch is refused",
			Source: sourceContract, Documented: []string{docImportEmpty}, Profile: ProfileCore,
			Requirement: "{\"refreshTokens\":[]} answers 400 with exactly refreshTokens: [missing]refreshTokens.",
			Run: func(ctx context.Context, e *Env) *Failure {
				x := e.raw(ctx, rawRequest{method: http.MethodPost, target: importPath, body: []byte(`{"refreshTokens":[]}`)})
				return e.expect400(x, fieldCode("refreshTokens", "[missing]refreshTokens"))
			}},
		{ID: "import/duplicate/stored", Title: "A token value already stored is a duplicate",
			Source: sourceOpenAPI, Documented: []string{docImportErr, docImport}, Profile: ProfileCore,
			Requirement: "A batch of a good token and, at index 1, the value of a stored token answers 400 with exactly refreshTokens[1].token: [duplicate]refreshTokens.token; the good token is not stored and the stored one is untouched.",
			Run: importRefused(goodAndBad(func(e *Env, w *world, t *token) { t.value = w.tok(2, 2, 1).value }), sendGenerated,
				errorCodes(fieldCode("refreshTokens[1].token", "[duplicate]refreshTokens.token")))},
		{ID: "import/duplicate/in-batch", Title: "A token value given twice in one batch is a duplicate",
			Source: sourceContract, Documented: []string{docImportDup}, Profile: ProfileCore,
			Requirement: "A batch holding one new value twice answers 400 with [duplicate]refreshTokens.token on refreshTokens[1].token, refreshTokens[0].token or both, and nothing else; neither is stored.",
			Run: importRefused(func(e *Env, w *world) []*token {
				a, b := w.newToken(1, 1, "new u1/a1"), w.newToken(1, 2, "new u1/a2")
				b.value = a.value
				return []*token{a, b}
			}, sendGenerated, func(e *Env, x *exchange) *Failure {
				first := fieldCode("refreshTokens[0].token", "[duplicate]refreshTokens.token")
				second := fieldCode("refreshTokens[1].token", "[duplicate]refreshTokens.token")
				return e.expect400OneOf(x, []string{second}, []string{first}, []string{first, second})
			})},
		{ID: "import/unknown-user", Title: "A token of an unknown user is refused",
			Source: sourceOpenAPI, Documented: []string{docImportErr, docImport}, Profile: ProfileCore,
			Requirement: "A batch of a good token and, at index 1, a token whose userId names no user answers 400 with exactly refreshTokens[1].userId: [invalid]refreshTokens.userId; neither is stored.",
			Run: importRefused(goodAndBad(func(e *Env, w *world, t *token) { t.userID = e.unknownID("unknown user") }), sendGenerated,
				errorCodes(fieldCode("refreshTokens[1].userId", "[invalid]refreshTokens.userId")))},
		{ID: "import/unknown-app", Title: "A token of an unknown application is refused",
			Source: sourceContract, Documented: []string{docImportUnk}, Profile: ProfileCore,
			Requirement: "A batch of a good token and, at index 1, a token whose applicationId names no application answers 400 with exactly refreshTokens[1].applicationId: [invalid]refreshTokens.applicationId; neither is stored.",
			Run: importRefused(goodAndBad(func(e *Env, w *world, t *token) { t.appID = e.unknownID("unknown app") }), sendGenerated,
				errorCodes(fieldCode("refreshTokens[1].applicationId", "[invalid]refreshTokens.applicationId")))},
		{ID: "import/all-or-nothing", Title: "One bad token keeps the whole batch out",
			Source: sourceOpenAPI, Documented: []string{docImport}, Profile: ProfileCore,
			Requirement: "A batch of 4 good tokens over 2 users × 2 applications followed by one whose applicationId names no application answers 400 with exactly refreshTokens[4].applicationId: [invalid]refreshTokens.applicationId, and none of the 4 good tokens is stored.",
			Run: importRefused(func(e *Env, w *world) []*token {
				bad := w.newToken(2, 2, "new bad")
				bad.appID = e.unknownID("unknown app")
				return []*token{w.newToken(1, 1, "new u1/a1"), w.newToken(1, 2, "new u1/a2"), w.newToken(2, 1, "new u2/a1"), w.newToken(2, 2, "new u2/a2"), bad}
			}, sendGenerated, errorCodes(fieldCode("refreshTokens[4].applicationId", "[invalid]refreshTokens.applicationId")))},
		{ID: "import/auth/missing-key", Title: "Importing without an API key is unauthorized",
			Source: sourceOpenAPI, Documented: []string{docAuth}, Profile: ProfileCore,
			Requirement: "A good batch without an Authorization header answers 401 with an empty body, and nothing is stored.",
			Run: importRefused(goodAndBad(keep), func(ctx context.Context, e *Env, ts []*token) *exchange {
				r := importWithout(ts, 0, "")
				r.noKey = true
				return e.raw(ctx, r)
			}, status(http.StatusUnauthorized))},
	}
}

// kebab turns "applicationId" into "application-id" for case ids.
func kebab(s string) string {
	var out []rune
	for _, r := range s {
		if r >= 'A' && r <= 'Z' {
			out = append(out, '-', r-'A'+'a')
			continue
		}
		out = append(out, r)
	}
	return string(out)
}
