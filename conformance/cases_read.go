package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/google/uuid"

	gen "refreshd/generated"
)

func (e *Env) listRaw(ctx context.Context, p gen.RetrieveRefreshTokensParams) *exchange {
	return call(ctx, func(ctx context.Context) error {
		_, err := e.s.api.RetrieveRefreshTokensWithResponse(ctx, &p)
		return err
	})
}

func (e *Env) getByID(ctx context.Context, id uuid.UUID) *exchange {
	return call(ctx, func(ctx context.Context) error {
		_, err := e.s.api.RetrieveRefreshTokenByIdWithResponse(ctx, id, nil)
		return err
	})
}

// tokenShape lists what is wrong with one RefreshToken object against the
// token it should describe (want nil: find it among candidates by applicationId
// and startInstant).
func tokenShape(raw json.RawMessage, want *token, candidates []*token) (*token, []string) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, []string{"not a JSON object"}
	}
	var problems []string
	str := func(field string) (string, bool) {
		v, ok := obj[field]
		if !ok {
			problems = append(problems, field+" missing")
			return "", false
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			problems = append(problems, fmt.Sprintf("%s is %s, not a string", field, v))
			return "", false
		}
		return s, true
	}
	integer := func(field string) (int64, bool) {
		v, ok := obj[field]
		if !ok {
			problems = append(problems, field+" missing")
			return 0, false
		}
		var n int64
		if err := json.Unmarshal(v, &n); err != nil {
			problems = append(problems, fmt.Sprintf("%s is %s, not an integer (epoch milliseconds)", field, v))
			return 0, false
		}
		return n, true
	}
	id, idOK := str("id")
	if idOK {
		if _, err := uuid.Parse(id); err != nil {
			problems = append(problems, fmt.Sprintf("id %q is not a UUID", id))
		}
	}
	app, appOK := str("applicationId")
	user, userOK := str("userId")
	integer("insertInstant")
	start, startOK := integer("startInstant")
	if want == nil && appOK && startOK {
		for _, c := range candidates {
			if c.appID.String() == strings.ToLower(app) && c.start == start {
				want = c
			}
		}
		if want == nil {
			problems = append(problems, fmt.Sprintf("no imported token has applicationId %s and startInstant %d", app, start))
		}
	}
	if want != nil {
		if idOK && want.id != uuid.Nil && strings.ToLower(id) != want.id.String() {
			problems = append(problems, fmt.Sprintf("id is %s, want %s", id, want.id))
		}
		if appOK && strings.ToLower(app) != want.appID.String() {
			problems = append(problems, fmt.Sprintf("applicationId is %s, want %s", app, want.appID))
		}
		if userOK && strings.ToLower(user) != want.userID.String() {
			problems = append(problems, fmt.Sprintf("userId is %s, want %s", user, want.userID))
		}
		if startOK && start != want.start {
			problems = append(problems, fmt.Sprintf("startInstant is %d, want %d", start, want.start))
		}
	}
	return want, problems
}

// shapeFailure reports a 200 whose body is not the documented shape.
func (e *Env) shapeFailure(x *exchange, expected string, problems []string) *Failure {
	f := e.failAt(x, expected, http.StatusOK, nil)
	f.Actual = e.show(strings.Join(problems, "; "))
	return f
}

// tokenValueIn returns the "token" property of a RefreshToken object, if any.
func tokenValueIn(raw json.RawMessage) string {
	var obj struct {
		Token *string `json:"token"`
	}
	if json.Unmarshal(raw, &obj) != nil || obj.Token == nil {
		return ""
	}
	return *obj.Token
}

func retrieveCases() []Case {
	const listShape = `200 with {"refreshTokens":[…]}: one object per token, each with id, applicationId, userId, insertInstant and startInstant as imported`
	return []Case{
		{ID: "retrieve/shape", Title: "A user's tokens are listed in the documented shape",
			Source: sourceContract, Documented: []string{docEmptyList}, Profile: ProfileCore,
			Requirement: "GET /api/jwt/refresh?userId=u1 for a user with 2 tokens for each of 2 applications answers 200 with {\"refreshTokens\":[…]} holding exactly those 4 tokens, each with a UUID id, its applicationId and userId, an integer insertInstant and the startInstant it was imported with.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 1, 2, 2)
				if fail != nil {
					return fail
				}
				x := e.listRaw(ctx, gen.RetrieveRefreshTokensParams{UserId: ptr(w.user(1).String())})
				if x.err != nil || x.status != http.StatusOK {
					return e.failAt(x, listShape, http.StatusOK, nil)
				}
				var body map[string]json.RawMessage
				if err := json.Unmarshal(x.body, &body); err != nil {
					return e.shapeFailure(x, listShape, []string{"the body is not a JSON object"})
				}
				var list []json.RawMessage
				if err := json.Unmarshal(body["refreshTokens"], &list); err != nil || list == nil {
					return e.shapeFailure(x, listShape, []string{fmt.Sprintf("refreshTokens is %s, not an array", orMissing(body["refreshTokens"]))})
				}
				var problems []string
				seen := map[*token]bool{}
				for i, raw := range list {
					t, ps := tokenShape(raw, nil, w.tokens)
					for _, p := range ps {
						problems = append(problems, fmt.Sprintf("refreshTokens[%d]: %s", i, p))
					}
					if t != nil {
						seen[t] = true
					}
				}
				for _, t := range w.tokens {
					if !seen[t] {
						problems = append(problems, fmt.Sprintf("{%s} is not listed", t.name))
					}
				}
				if len(list) != len(w.tokens) {
					problems = append(problems, fmt.Sprintf("%d entries, want %d", len(list), len(w.tokens)))
				}
				if len(problems) > 0 {
					return e.shapeFailure(x, listShape, problems)
				}
				return nil
			}},
		{ID: "retrieve/empty-list", Title: "A user without tokens has an empty list, not null",
			Source: sourceContract, Documented: []string{docEmptyList}, Profile: ProfileCore,
			Requirement: "GET /api/jwt/refresh?userId=u1 for a user without tokens answers 200 with {\"refreshTokens\":[]}.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 1, 1, 0)
				if fail != nil {
					return fail
				}
				x := e.listRaw(ctx, gen.RetrieveRefreshTokensParams{UserId: ptr(w.user(1).String())})
				const want = `200 with {"refreshTokens":[]}`
				if x.err != nil || x.status != http.StatusOK {
					return e.failAt(x, want, http.StatusOK, nil)
				}
				var body map[string]json.RawMessage
				if err := json.Unmarshal(x.body, &body); err != nil {
					return e.shapeFailure(x, want, []string{"the body is not a JSON object: " + shorten(x.body, 200)})
				}
				if got := bytes.TrimSpace(body["refreshTokens"]); string(got) != "[]" {
					return e.shapeFailure(x, want, []string{"refreshTokens is " + orMissing(got)})
				}
				return nil
			}},
		{ID: "retrieve/missing-user-id", Title: "Listing without a userId is refused",
			Source: sourceContract, Documented: []string{docListMissing}, Profile: ProfileCore,
			Requirement: "GET /api/jwt/refresh without userId answers 400 with exactly userId: [missing]userId.",
			Run: func(ctx context.Context, e *Env) *Failure {
				return e.expect400(e.listRaw(ctx, gen.RetrieveRefreshTokensParams{}), fieldCode("userId", "[missing]userId"))
			}},
		{ID: "retrieve/unknown-user", Title: "Listing the tokens of an unknown user is refused",
			Source: sourceContract, Documented: []string{docListMissing}, Profile: ProfileCore,
			Requirement: "GET /api/jwt/refresh?userId=<an id no user has> answers 400 with exactly userId: [invalid]userId.",
			Run: func(ctx context.Context, e *Env) *Failure {
				x := e.listRaw(ctx, gen.RetrieveRefreshTokensParams{UserId: ptr(e.unknownID("unknown user").String())})
				return e.expect400(x, fieldCode("userId", "[invalid]userId"))
			}},
		{ID: "retrieve/malformed-user-id", Title: "A malformed userId cannot be converted",
			Source: sourceContract, Documented: []string{docCouldNotConvert}, Profile: ProfileCore,
			Requirement: "GET /api/jwt/refresh?userId=not-a-uuid answers 400 with exactly userId: [couldNotConvert]userId.",
			Run: func(ctx context.Context, e *Env) *Failure {
				x := e.raw(ctx, rawRequest{method: http.MethodGet, target: revokePath + "?userId=not-a-uuid"})
				return e.expect400(x, fieldCode("userId", "[couldNotConvert]userId"))
			}},
		{ID: "retrieve/auth/missing-key", Title: "Listing without an API key is unauthorized",
			Source: sourceOpenAPI, Documented: []string{docAuth}, Profile: ProfileCore,
			Requirement: "GET /api/jwt/refresh?userId=u1 without an Authorization header answers 401 with an empty body.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 1, 1, 1)
				if fail != nil {
					return fail
				}
				x := e.raw(ctx, rawRequest{method: http.MethodGet, target: revokePath + "?userId=" + w.user(1).String(), noKey: true})
				return e.expectEmpty(x, http.StatusUnauthorized)
			}},
		{ID: "retrieve/no-token-value", Title: "Token values are never returned",
			Source: sourceOpenAPI, Documented: []string{docList, docNoValues}, Profile: ProfileStrict,
			Requirement: "Neither GET /api/jwt/refresh?userId= nor GET /api/jwt/refresh/{id} carries a token value: the token property is absent, null or empty. (FusionAuth returns the value.)",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 1, 1, 1)
				if fail != nil {
					return fail
				}
				t := w.tok(1, 1, 1)
				x := e.listRaw(ctx, gen.RetrieveRefreshTokensParams{UserId: ptr(w.user(1).String())})
				if x.err != nil || x.status != http.StatusOK {
					return e.failAt(x, `200 with {"refreshTokens":[…]}`, http.StatusOK, nil)
				}
				var list struct {
					RefreshTokens []json.RawMessage `json:"refreshTokens"`
				}
				_ = json.Unmarshal(x.body, &list)
				for _, raw := range list.RefreshTokens {
					if v := tokenValueIn(raw); v != "" {
						return e.shapeFailure(x, "no token value in the listing", []string{"token: " + v})
					}
				}
				x = e.getByID(ctx, t.id)
				if x.err != nil || x.status != http.StatusOK {
					return e.failAt(x, `200 with {"refreshToken":{…}}`, http.StatusOK, nil)
				}
				var one struct {
					RefreshToken json.RawMessage `json:"refreshToken"`
				}
				_ = json.Unmarshal(x.body, &one)
				if v := tokenValueIn(one.RefreshToken); v != "" {
					return e.shapeFailure(x, "no token value in the answer", []string{"token: " + v})
				}
				return nil
			}},
	}
}

func orMissing(raw []byte) string {
	if raw == nil {
		return "missing"
	}
	return shorten(raw, 200)
}

func retrieveByIDCases() []Case {
	const oneShape = `200 with {"refreshToken":{…}} carrying the token's id, applicationId, userId, insertInstant and startInstant`
	return []Case{
		{ID: "retrieve-by-id/shape", Title: "One token is retrieved in the documented shape",
			Source: sourceContract, Documented: []string{docByIDShape}, Profile: ProfileCore,
			Requirement: "GET /api/jwt/refresh/{id} answers 200 with {\"refreshToken\":{…}} carrying that id, the token's applicationId and userId, an integer insertInstant and the startInstant it was imported with.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 1, 1, 1)
				if fail != nil {
					return fail
				}
				t := w.tok(1, 1, 1)
				x := e.getByID(ctx, t.id)
				if x.err != nil || x.status != http.StatusOK {
					return e.failAt(x, oneShape, http.StatusOK, nil)
				}
				var body map[string]json.RawMessage
				if err := json.Unmarshal(x.body, &body); err != nil {
					return e.shapeFailure(x, oneShape, []string{"the body is not a JSON object"})
				}
				raw, ok := body["refreshToken"]
				if !ok {
					keys := make([]string, 0, len(body))
					for k := range body {
						keys = append(keys, k)
					}
					sort.Strings(keys)
					return e.shapeFailure(x, oneShape, []string{"no refreshToken property; properties: " + strings.Join(keys, ", ")})
				}
				if _, problems := tokenShape(raw, t, nil); len(problems) > 0 {
					return e.shapeFailure(x, oneShape, problems)
				}
				return nil
			}},
		{ID: "retrieve-by-id/unknown", Title: "An id naming no token is not found",
			Source: sourceOpenAPI, Documented: []string{docGetByID}, Profile: ProfileCore,
			Requirement: "GET /api/jwt/refresh/{an id no token has} answers 404 with an empty body.",
			Run: func(ctx context.Context, e *Env) *Failure {
				return e.expectEmpty(e.getByID(ctx, e.unknownID("unknown token id")), http.StatusNotFound)
			}},
		{ID: "retrieve-by-id/malformed", Title: "A malformed token id cannot be converted",
			Source: sourceContract, Documented: []string{docCouldNotConvert}, Profile: ProfileCore,
			Requirement: "GET /api/jwt/refresh/not-a-uuid answers 400 with exactly tokenId: [couldNotConvert]tokenId.",
			Run: func(ctx context.Context, e *Env) *Failure {
				x := e.raw(ctx, rawRequest{method: http.MethodGet, target: revokePath + "/not-a-uuid"})
				return e.expect400(x, fieldCode("tokenId", "[couldNotConvert]tokenId"))
			}},
	}
}
