package conformance

import (
	"context"
	"net/http"
	"sort"
	"strings"

	"github.com/google/uuid"

	gen "refreshd/generated"
)

// Where a case's documented text comes from: files of the repository, named by
// their path from its root, so that a reader of a failure can open them.
const (
	sourceOpenAPI  = "openapi.yaml"
	sourceContract = "docs/fusionauth-compatibility.md"
)

// Sentences of openapi.yaml the cases replay, verbatim (line breaks aside).
const (
	docToken      = "Delete a single refresh token: pass only the token. `revokeRefreshToken(token)`"
	docUser       = "Delete all refresh tokens of a user: pass only the userId. `revokeRefreshToken(null, userId)`"
	docUserApp    = "Delete all refresh tokens of a user for one application: pass the userId and the applicationId. `revokeRefreshToken(null, userId, applicationId)`"
	docApp        = "Delete all refresh tokens of an application: pass only the applicationId. `revokeRefreshToken(null, null, applicationId)`"
	docBody       = "The same four through the JSON body, which may also carry `eventInfo` describing who revoked, from where and on which device."
	docAbsent     = "An empty query value, and the literal values `null` and `undefined`, mean the parameter is absent."
	docBulk200    = "A bulk form answers 200 also when it revoked nothing."
	docToken404   = "`token` given: the token is revoked, or 404 (empty body) when it does not exist, was already revoked, has expired, belongs to another user than the given `userId`, or to another application than the given `applicationId`;"
	docMalformed  = "a malformed id → 400 `[couldNotConvert]<field>`;"
	docNothing    = "nothing selected → 400 general `[invalid]`;"
	docUnknown    = "a `userId` naming no user → 400 `[invalid]userId`; an `applicationId` naming no application → 400 `[invalid]applicationId`;"
	docOverride   = "a body field overrides the query parameter of the same name."
	docAuth       = "A missing, unknown or insufficient key is answered 401 with an empty body."
	docTenant     = "A malformed or unknown tenant id is a 400 with the general error `[invalid]tenantId`."
	docByID       = "Revokes one token without exposing its value. Unknown, expired or already revoked → 404."
	docList       = "Lists the user's live refresh tokens, newest first (by insertInstant), at most 1,000. Expired tokens are left out. Token values are never returned."
	docGetByID    = "No live refresh token has this id."
	docUnmodelled = "Properties a schema does not model are ignored, never rejected: FusionAuth's clients serialise their whole object model."
	docBodyNull   = "A UUID; empty or null means absent."
	docNoValues   = "Refresh-token values are stored only as SHA-256 hashes and are never returned after they were issued."
	docImport     = "Creates refresh tokens with known values, without a login: how existing sessions are migrated. All or nothing: on any error nothing is stored."
	docImportErr  = "Field errors are keyed `refreshTokens[i].field` with codes such as `[missing]refreshTokens.token`, `[invalid]refreshTokens.userId` and `[duplicate]refreshTokens.token`."
)

// Sentences of the wire contract in prose (docs/fusionauth-compatibility.md) for
// what openapi.yaml does not spell out.
const (
	docInvalidJSON     = "`[invalidJSON]` | the general error when the body is not JSON or a field has the wrong JSON type."
	docRepeated        = "`[invalid]F` | **Ours:** the field error when the query parameter F is given more than once; FusionAuth fails with a 500 there."
	docListMissing     = "Without a `userId` the answer is a 400 with `[missing]userId`; with one that names no user, a 400 with `[invalid]userId`."
	docEmptyList       = "`GET /api/jwt/refresh?userId=…` lists the user's live tokens as `{\"refreshTokens\": […]}`, newest first and at most 1,000 of them; expired tokens are not listed, and a user with no tokens gets `{\"refreshTokens\": []}`."
	docByIDShape       = "`GET /api/jwt/refresh/{tokenId}` answers `{\"refreshToken\": {…}}` for a live token, and 404 with an empty body for a token that is unknown or expired."
	docImportEmpty     = "An empty or absent list is refused with `[missing]refreshTokens`."
	docImportDup       = "A token value that is already stored, or that appears twice in the batch, makes it fail with `[duplicate]refreshTokens.token`."
	docImportUnk       = "A user or application that does not exist makes the import fail with `[invalid]refreshTokens.userId` or `[invalid]refreshTokens.applicationId`."
	docImportOK        = "An import is stored whole or not at all, the server picks every token's id, and a successful import is answered 200 with an empty body."
	docContentType     = "`[InvalidContentType]` | the general error when a body comes with a Content-Type other than `application/json`."
	docCouldNotConvert = "`[couldNotConvert]F` | the field error when the UUID in query parameter, path parameter or body field F is malformed."
	docByIDErrors      = "The answers: 200 with an empty body once it is revoked; 404 with an empty body when no live token has that id (never issued, already revoked or expired); a 400 with the field error `[couldNotConvert]tokenId` when the id is not a UUID."
	docUnknownAnyPath  = "A `userId` that names no user is refused with `[invalid]userId`, and an `applicationId` that names no application with `[invalid]applicationId`, whichever form the request takes, the single-token form included."
	docTooLarge        = "a request body larger than the server's limit (8 MiB unless configured) is answered 400 with the general error `[tooLarge]`."
)

// Cases returns every case of the suite, grouped by the API they cover:
// DELETE /api/jwt/refresh, DELETE /api/jwt/refresh/{tokenId},
// GET /api/jwt/refresh, GET /api/jwt/refresh/{tokenId}, the import, the
// exchange (POST /api/jwt/refresh, with the JWKS that verifies its tokens),
// POST /api/logout, the hard deletes of users and applications, and what this
// server adds: RFC 7009 revocation and discovery, receipts, revoking all but one
// session, and validation of access tokens.
func Cases() []Case {
	var all []Case
	all = append(all, revokeCases()...)
	all = append(all, revokeByIDCases()...)
	all = append(all, retrieveCases()...)
	all = append(all, retrieveByIDCases()...)
	all = append(all, importCases()...)
	all = append(all, exchangeCases()...)
	all = append(all, sessionCases()...)
	all = append(all, beyondCases()...)
	all = append(all, ssfCases()...)
	// Grouped by the API they cover, in this order; within an API, as declared.
	order := map[string]int{}
	for i, api := range apiOrder {
		order[api] = i
	}
	sort.SliceStable(all, func(i, j int) bool { return order[all[i].API()] < order[all[j].API()] })
	return all
}

// apiOrder is the order of the APIs in the suite (the first segment of case ids).
var apiOrder = []string{"revoke", "revoke-by-id", "retrieve", "retrieve-by-id", "import", "exchange", "logout", "delete",
	"oauth-revoke", "validate", "ssf"}

// selector is what a revoke request names; a zero id or nil token is absent.
type selector struct {
	token     *token
	user, app uuid.UUID
}

// usage is one documented way of calling DELETE /api/jwt/refresh.
type usage struct {
	id, title, doc string
	bulk           bool
	pick           func(w *world) selector
	requirement    string
	// eventDoc and events say which jwt.refresh-token.revoke events the two calls
	// of the case record, checked in webhook mode.
	eventDoc, events string
	// kept is the token nearest the selection that must survive it, for the
	// exchange cases (a world of at least 2 users × 2 applications × 2 tokens).
	kept func(w *world) *token
}

// Sentences of openapi.yaml about the event each revoke form records.
const (
	docEventToken   = "`jwt.refresh-token.revoke`: single token (by value or id): applicationId, userId, refreshToken (never its value);"
	docEventUserApp = "userId + applicationId: applicationId, userId;"
	docEventApp     = "applicationId only: applicationId;"
	docEventUser    = "userId only (recorded only when at least one token was revoked): userId."
)

// What the revoke cases require of their events in webhook mode.
const (
	reqEventsIntro = " With webhooks (-webhook-listen): "
	reqEventInfo   = " Each event's info carries the eventInfo sent."
	reqSignature   = " An event that names a user also carries user (an object whose id is that user's) and linkedObjectId (the user's id); one that names no user carries neither." +
		" Every delivery carries X-FusionAuth-Signature-JWT, as FusionAuth signs a webhook whose signatureConfiguration names a key: a JWT signed RS256 with the key the suite generated (its kid; it verifies with the JWKS key of that kid) whose only claim, request_body_sha256, is the standard base64 SHA-256 of the body." +
		" In the strict profile every delivery also carries X-Refreshd-Signature: sha256=<hex HMAC-SHA256 of the body, keyed with the signingSecret the suite registered>."
)

// gone says which tokens a selector revokes.
func (s selector) gone(t *token) bool {
	switch {
	case s.token != nil:
		return t == s.token
	case s.user != uuid.Nil && s.app != uuid.Nil:
		return t.userID == s.user && t.appID == s.app
	case s.user != uuid.Nil:
		return t.userID == s.user
	case s.app != uuid.Nil:
		return t.appID == s.app
	}
	return false
}

var usages = []usage{
	{id: "by-token", title: "Revoke one token by its value", doc: docToken,
		pick:        func(w *world) selector { return selector{token: w.tok(2, 2, 1)} },
		requirement: "Exactly that token is revoked — its sibling of the same user and application and every other token remain. Repeating the call answers 404 with an empty body: the token is already revoked.",
		eventDoc:    docEventToken,
		events:      "the first call records exactly one jwt.refresh-token.revoke event, with the token's userId and applicationId, its refreshToken without the value, and applicationTimeToLiveInSeconds for its application alone; the second call records none.",
		kept:        func(w *world) *token { return w.tok(2, 2, 2) }},
	{id: "by-user", title: "Revoke all tokens of a user", doc: docUser, bulk: true,
		pick:        func(w *world) selector { return selector{user: w.user(2)} },
		requirement: "Every token of that user, for every application, is revoked; the other users' tokens remain. Repeating the call answers 200 with an empty body.",
		eventDoc:    docEventUser,
		events:      "the first call records exactly one jwt.refresh-token.revoke event, with the userId, no applicationId, and applicationTimeToLiveInSeconds for each application the user had tokens for; the second call, which revokes nothing, records none.",
		kept:        func(w *world) *token { return w.tok(1, 2, 1) }},
	{id: "by-user-and-app", title: "Revoke a user's tokens for one application", doc: docUserApp, bulk: true,
		pick:        func(w *world) selector { return selector{user: w.user(2), app: w.app(2)} },
		requirement: "Exactly that user's tokens for that application are revoked; the user's tokens for other applications and other users' tokens for that application remain. Repeating the call answers 200 with an empty body.",
		eventDoc:    docEventUserApp,
		events:      "each call records exactly one jwt.refresh-token.revoke event, with the userId and the applicationId, and applicationTimeToLiveInSeconds for that application alone.",
		kept:        func(w *world) *token { return w.tok(2, 1, 1) }},
	{id: "by-app", title: "Revoke all tokens of an application", doc: docApp, bulk: true,
		pick:        func(w *world) selector { return selector{app: w.app(2)} },
		requirement: "Every token of that application, of every user, is revoked; the tokens of other applications remain. Repeating the call answers 200 with an empty body.",
		eventDoc:    docEventApp,
		events:      "each call records exactly one jwt.refresh-token.revoke event, with the applicationId, no userId, and applicationTimeToLiveInSeconds for that application alone.",
		kept:        func(w *world) *token { return w.tok(2, 1, 1) }},
}

// form is one way of sending a usage: query, body, or as a client library does.
type form struct {
	id, title   string
	profile     Profile
	source      string
	docs        []string
	requirement string
	send        func(ctx context.Context, e *Env, s selector) *exchange
	// withInfo says the form sends eventInfo(), which the events must carry.
	withInfo bool
}

func (s selector) values() (tok, user, app string) {
	if s.token != nil {
		tok = s.token.value
	}
	if s.user != uuid.Nil {
		user = s.user.String()
	}
	if s.app != uuid.Nil {
		app = s.app.String()
	}
	return
}

// revokeQuery sends DELETE /api/jwt/refresh with the given query parameters
// (nil: not sent) and no body, through the generated client.
func (e *Env) revokeQuery(ctx context.Context, p gen.RevokeRefreshTokensParams, editors ...gen.RequestEditorFn) *exchange {
	return call(ctx, func(ctx context.Context) error {
		_, err := e.s.api.RevokeRefreshTokensWithBodyWithResponse(ctx, &p, "", nil, editors...)
		return err
	})
}

// revokeBody sends DELETE /api/jwt/refresh with a JSON body and the given query
// parameters, through the generated client.
func (e *Env) revokeBody(ctx context.Context, p gen.RevokeRefreshTokensParams, b gen.RefreshTokenRevokeRequest) *exchange {
	return call(ctx, func(ctx context.Context) error {
		_, err := e.s.api.RevokeRefreshTokensWithResponse(ctx, &p, b)
		return err
	})
}

// orNil is v, or nil (absent) when v is empty.
func orNil(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

// or is v, or the stand-in a client sends for an absent argument.
func or(v, absent string) *string {
	if v == "" {
		return &absent
	}
	return &v
}

// goClientOrder puts the query in the order FusionAuth's Go client sends it
// (url.Values.Encode: sorted, empty values kept as "name=").
func goClientOrder(_ context.Context, r *http.Request) error {
	r.URL.RawQuery = r.URL.Query().Encode()
	return nil
}

func eventInfo() *gen.EventInfo {
	return &gen.EventInfo{
		IpAddress: ptr("192.0.2.7"), DeviceName: ptr("conformance suite"), DeviceType: ptr("OTHER"),
		UserAgent: ptr("refreshd-conformance"), Location: &gen.Location{},
	}
}

var forms = []form{
	{id: "query", title: "query parameters", profile: ProfileCore, source: sourceOpenAPI,
		requirement: "Sent as query parameters, without a body.",
		send: func(ctx context.Context, e *Env, s selector) *exchange {
			tok, user, app := s.values()
			return e.revokeQuery(ctx, gen.RevokeRefreshTokensParams{Token: orNil(tok), UserId: orNil(user), ApplicationId: orNil(app)})
		}},
	{id: "body", title: "JSON body", profile: ProfileCore, source: sourceOpenAPI, docs: []string{docBody},
		requirement: "Sent as a JSON body (RefreshDeleteRequest), without query parameters.",
		send: func(ctx context.Context, e *Env, s selector) *exchange {
			tok, user, app := s.values()
			return e.revokeBody(ctx, gen.RevokeRefreshTokensParams{}, gen.RefreshTokenRevokeRequest{Token: orNil(tok), UserId: orNil(user), ApplicationId: orNil(app)})
		}},
	{id: "body-event-info", title: "JSON body with eventInfo", profile: ProfileCore, source: sourceOpenAPI, docs: []string{docBody},
		requirement: "Sent as a JSON body that also carries eventInfo (ipAddress, device, an empty location), without query parameters.", withInfo: true,
		send: func(ctx context.Context, e *Env, s selector) *exchange {
			tok, user, app := s.values()
			return e.revokeBody(ctx, gen.RevokeRefreshTokensParams{}, gen.RefreshTokenRevokeRequest{Token: orNil(tok), UserId: orNil(user), ApplicationId: orNil(app), EventInfo: eventInfo()})
		}},
	{id: "form", title: "form body", profile: ProfileCore, source: sourceOpenAPI, docs: []string{docForm},
		requirement: "Sent as an application/x-www-form-urlencoded body (token=…&userId=…&applicationId=…, absent ones left out), without query parameters.",
		send: func(ctx context.Context, e *Env, s selector) *exchange {
			tok, user, app := s.values()
			return call(ctx, func(ctx context.Context) error {
				_, err := e.s.api.RevokeRefreshTokensWithFormdataBodyWithResponse(ctx, &gen.RevokeRefreshTokensParams{},
					gen.RefreshTokenRevokeForm{Token: orNil(tok), UserId: orNil(user), ApplicationId: orNil(app)})
				return err
			})
		}},
	{id: "go-client", title: "as FusionAuth's Go client sends it", profile: ProfileCore, source: sourceOpenAPI, docs: []string{docAbsent},
		requirement: "Sent as FusionAuth's Go client sends it: all three query parameters, absent ones empty (?applicationId=&token=&userId=…), no body.",
		send: func(ctx context.Context, e *Env, s selector) *exchange {
			tok, user, app := s.values()
			return e.revokeQuery(ctx, gen.RevokeRefreshTokensParams{Token: &tok, UserId: &user, ApplicationId: &app}, goClientOrder)
		}},
	{id: "typescript-client", title: "as FusionAuth's TypeScript client sends it", profile: ProfileStrict, source: sourceOpenAPI, docs: []string{docAbsent},
		requirement: "Sent as FusionAuth's TypeScript client sends it: all three query parameters, absent ones as the text null (?token=null&userId=…&applicationId=null), no body.",
		send: func(ctx context.Context, e *Env, s selector) *exchange {
			tok, user, app := s.values()
			return e.revokeQuery(ctx, gen.RevokeRefreshTokensParams{Token: or(tok, "null"), UserId: or(user, "null"), ApplicationId: or(app, "null")})
		}},
}

func revokeCases() []Case {
	var cs []Case
	for _, u := range usages {
		for _, f := range forms {
			docs := []string{u.doc}
			docs = append(docs, f.docs...)
			if u.bulk {
				docs = append(docs, docBulk200)
			} else {
				docs = append(docs, docToken404)
			}
			docs = append(docs, u.eventDoc)
			events := reqEventsIntro + u.events
			if f.withInfo {
				events += reqEventInfo
			}
			cs = append(cs, Case{
				ID: "revoke/" + u.id + "/" + f.id, Title: u.title + ", " + f.title,
				Source: f.source, Documented: docs, Profile: f.profile,
				Requirement: f.requirement + " " + u.requirement + " Each answer is 200 with an empty body unless said otherwise." + events + reqSignature,
				Run:         revokeUsage(u, f),
			})
		}
	}
	return append(cs, revokeEdgeCases()...)
}

// revokeUsage replays one usage in one form in a world of 3 users × 3
// applications × 2 tokens, targeting the middle user and application so that
// tokens on every side of the selection must remain; in webhook mode it then
// checks the events the two calls recorded.
func revokeUsage(u usage, f form) func(ctx context.Context, e *Env) *Failure {
	return func(ctx context.Context, e *Env) *Failure {
		w, fail := e.newWorld(ctx, 3, 3, 2)
		if fail != nil {
			return fail
		}
		sel := u.pick(w)
		first := f.send(ctx, e, sel)
		if fail := e.expectEmpty(first, http.StatusOK); fail != nil {
			fail.Note = w.layout()
			return fail
		}
		if fail := w.expectTokens(ctx, first, sel.gone); fail != nil {
			return fail
		}
		again := http.StatusOK
		if !u.bulk {
			again = http.StatusNotFound
		}
		second := f.send(ctx, e, sel)
		if fail := e.expectEmpty(second, again); fail != nil {
			fail.Note = "The same call a second time. " + w.layout()
			return fail
		}
		if fail := w.expectListed(ctx, second, sel.gone); fail != nil {
			return fail
		}
		var info *gen.EventInfo
		if f.withInfo {
			info = eventInfo()
		}
		want := sel.event(w, info)
		var wantAgain *wantEvent
		if sel.recordsWhenNothingRevoked() {
			wantAgain = &want
		}
		return w.expectEvents(ctx, sentRevoke{first, &want}, sentRevoke{second, wantAgain})
	}
}

// refused runs a request that must be refused in a fresh world of 2 users × 2
// applications, one token each, checks the answer, and checks that nothing was
// revoked.
func refused(setup func(ctx context.Context, w *world) *Failure, send func(ctx context.Context, e *Env, w *world) *exchange,
	check func(e *Env, x *exchange) *Failure) func(ctx context.Context, e *Env) *Failure {
	return func(ctx context.Context, e *Env) *Failure {
		w, fail := e.newWorld(ctx, 2, 2, 1)
		if fail != nil {
			return fail
		}
		if setup != nil {
			if fail := setup(ctx, w); fail != nil {
				return fail
			}
		}
		x := send(ctx, e, w)
		if fail := check(e, x); fail != nil {
			if fail.Note == "" {
				fail.Note = w.layout()
			}
			return fail
		}
		return w.expectTokens(ctx, x, nothing)
	}
}

func status(code int) func(e *Env, x *exchange) *Failure {
	return func(e *Env, x *exchange) *Failure { return e.expectEmpty(x, code) }
}

func errorCodes(want ...string) func(e *Env, x *exchange) *Failure {
	return func(e *Env, x *exchange) *Failure { return e.expect400(x, want...) }
}

// unknownID is a fresh id that names nothing, labelled for reports.
func (e *Env) unknownID(name string) uuid.UUID {
	id := uuid.New()
	e.label(id.String(), name)
	return id
}

func (e *Env) unknownToken() string {
	v := "conformance-" + e.s.runID + "-unknown-" + randomHex(16)
	e.label(v, "unknown token")
	return v
}

func query(pairs ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(pairs); i += 2 {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(pairs[i] + "=" + pairs[i+1])
	}
	return b.String()
}

const revokePath = "/api/jwt/refresh"

func revokeEdgeCases() []Case {
	sendQuery := func(p func(e *Env, w *world) gen.RevokeRefreshTokensParams) func(ctx context.Context, e *Env, w *world) *exchange {
		return func(ctx context.Context, e *Env, w *world) *exchange { return e.revokeQuery(ctx, p(e, w)) }
	}
	sendRaw := func(r func(e *Env, w *world) rawRequest) func(ctx context.Context, e *Env, w *world) *exchange {
		return func(ctx context.Context, e *Env, w *world) *exchange { return e.raw(ctx, r(e, w)) }
	}
	return []Case{
		{ID: "revoke/body-overrides-query", Title: "A body field overrides the query parameter of the same name",
			Source: sourceOpenAPI, Documented: []string{docOverride, docUser}, Profile: ProfileCore,
			Requirement: "With ?userId=u1 and the body {\"userId\": u2}, u2's tokens are revoked and u1's remain; 200 with an empty body.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 2, 2, 2)
				if fail != nil {
					return fail
				}
				x := e.revokeBody(ctx, gen.RevokeRefreshTokensParams{UserId: ptr(w.user(1).String())}, gen.RefreshTokenRevokeRequest{UserId: ptr(w.user(2).String())})
				if fail := e.expectEmpty(x, http.StatusOK); fail != nil {
					fail.Note = w.layout()
					return fail
				}
				return w.expectTokens(ctx, x, func(t *token) bool { return t.userID == w.user(2) })
			}},
		{ID: "revoke/unmodelled-properties", Title: "Properties the contract does not model are ignored",
			Source: sourceOpenAPI, Documented: []string{docUnmodelled, docUser}, Profile: ProfileCore,
			Requirement: "The body {\"userId\": u2, \"somethingNew\": 1, \"eventInfo\": {\"location\": {\"extra\": 1}, \"extra\": 2}} answers 200 with an empty body and revokes u2's tokens, and only those.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 2, 2, 2)
				if fail != nil {
					return fail
				}
				x := e.raw(ctx, rawRequest{method: http.MethodDelete, target: revokePath,
					body: []byte(`{"userId":"` + w.user(2).String() + `","somethingNew":1,"eventInfo":{"location":{"extra":1},"extra":2}}`)})
				if fail := e.expectEmpty(x, http.StatusOK); fail != nil {
					fail.Note = w.layout()
					return fail
				}
				return w.expectTokens(ctx, x, func(t *token) bool { return t.userID == w.user(2) })
			}},
		{ID: "revoke/null-body-fields", Title: "Body fields that are null are absent",
			Source: sourceOpenAPI, Documented: []string{docBodyNull, docUser}, Profile: ProfileCore,
			Requirement: "The body {\"userId\": u2, \"token\": null, \"applicationId\": null, \"eventInfo\": null} (a JSON client's nulls) answers 200 with an empty body and revokes u2's tokens, and only those.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 2, 2, 2)
				if fail != nil {
					return fail
				}
				x := e.raw(ctx, rawRequest{method: http.MethodDelete, target: revokePath,
					body: []byte(`{"userId":"` + w.user(2).String() + `","token":null,"applicationId":null,"eventInfo":null}`)})
				if fail := e.expectEmpty(x, http.StatusOK); fail != nil {
					fail.Note = w.layout()
					return fail
				}
				return w.expectTokens(ctx, x, func(t *token) bool { return t.userID == w.user(2) })
			}},
		{ID: "revoke/invalid-content-type", Title: "A body that is not declared JSON is refused",
			Source: sourceContract, Documented: []string{docContentType}, Profile: ProfileCore,
			Requirement: "?userId=u1 with a text/plain body answers 400 with exactly the general error [InvalidContentType] and revokes nothing.",
			Run: refused(nil, sendRaw(func(e *Env, w *world) rawRequest {
				return rawRequest{method: http.MethodDelete, target: revokePath + "?" + query("userId", w.user(1).String()),
					body: []byte("userId=" + w.user(2).String()), header: map[string]string{"Content-Type": "text/plain"}}
			}), errorCodes(generalCode("[InvalidContentType]")))},
		{ID: "revoke/by-token/with-owner", Title: "A token named with its own user and application is revoked",
			Source: sourceOpenAPI, Documented: []string{docToken, docToken404}, Profile: ProfileCore,
			Requirement: "?token=<u1's first token for a1>&userId=u1&applicationId=a1 answers 200 with an empty body and revokes that token alone; its sibling remains.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 2, 2, 2)
				if fail != nil {
					return fail
				}
				t := w.tok(1, 1, 1)
				x := e.revokeQuery(ctx, gen.RevokeRefreshTokensParams{Token: &t.value, UserId: ptr(w.user(1).String()), ApplicationId: ptr(w.app(1).String())})
				if fail := e.expectEmpty(x, http.StatusOK); fail != nil {
					fail.Note = w.layout()
					return fail
				}
				return w.expectTokens(ctx, x, func(o *token) bool { return o == t })
			}},
		{ID: "revoke/by-token/other-user", Title: "A token named with another user's id is not found",
			Source: sourceOpenAPI, Documented: []string{docToken404}, Profile: ProfileCore,
			Requirement: "?token=<u1's token>&userId=u2 answers 404 with an empty body and revokes nothing.",
			Run: refused(nil, sendQuery(func(e *Env, w *world) gen.RevokeRefreshTokensParams {
				return gen.RevokeRefreshTokensParams{Token: &w.tok(1, 1, 1).value, UserId: ptr(w.user(2).String())}
			}), status(http.StatusNotFound))},
		{ID: "revoke/by-token/other-app", Title: "A token named with another application's id is not found",
			Source: sourceOpenAPI, Documented: []string{docToken404}, Profile: ProfileStrict,
			Requirement: "?token=<u1's token for a1>&applicationId=a2 answers 404 with an empty body and revokes nothing. (FusionAuth ignores the applicationId and revokes the token.)",
			Run: refused(nil, sendQuery(func(e *Env, w *world) gen.RevokeRefreshTokensParams {
				return gen.RevokeRefreshTokensParams{Token: &w.tok(1, 1, 1).value, ApplicationId: ptr(w.app(2).String())}
			}), status(http.StatusNotFound))},
		{ID: "revoke/by-token/unknown/query", Title: "An unknown token value in the query is not found",
			Source: sourceOpenAPI, Documented: []string{docToken404}, Profile: ProfileCore,
			Requirement: "?token=<a value never issued> answers 404 with an empty body and revokes nothing.",
			Run: refused(nil, sendQuery(func(e *Env, w *world) gen.RevokeRefreshTokensParams {
				return gen.RevokeRefreshTokensParams{Token: ptr(e.unknownToken())}
			}), status(http.StatusNotFound))},
		{ID: "revoke/by-token/unknown/body", Title: "An unknown token value in the body is not found",
			Source: sourceOpenAPI, Documented: []string{docToken404, docBody}, Profile: ProfileCore,
			Requirement: "The body {\"token\": <a value never issued>} answers 404 with an empty body and revokes nothing.",
			Run: refused(nil, func(ctx context.Context, e *Env, w *world) *exchange {
				return e.revokeBody(ctx, gen.RevokeRefreshTokensParams{}, gen.RefreshTokenRevokeRequest{Token: ptr(e.unknownToken())})
			}, status(http.StatusNotFound))},
		{ID: "revoke/by-token/expired", Title: "An expired token is not found",
			Source: sourceOpenAPI, Documented: []string{docToken404}, Profile: ProfileCore,
			Requirement: "A token imported with a startInstant five years ago (long past any refresh-token lifetime) answers 404 with an empty body when revoked by value, and nothing is revoked.",
			Run: func(ctx context.Context, e *Env) *Failure {
				var expired *token
				return refused(func(ctx context.Context, w *world) *Failure {
					expired = w.newToken(1, 1, "u1/a1/expired")
					expired.start = w.base - 5*365*24*3600*1000
					expired.expired = true
					return w.store(ctx, expired)
				}, sendQuery(func(e *Env, w *world) gen.RevokeRefreshTokensParams {
					return gen.RevokeRefreshTokensParams{Token: &expired.value}
				}), status(http.StatusNotFound))(ctx, e)
			}},
		{ID: "revoke/nothing-selected/bare", Title: "A request that selects nothing is refused",
			Source: sourceOpenAPI, Documented: []string{docNothing}, Profile: ProfileCore,
			Requirement: "DELETE /api/jwt/refresh without parameters or body answers 400 with the general error [invalid] and revokes nothing.",
			Run: refused(nil, sendQuery(func(e *Env, w *world) gen.RevokeRefreshTokensParams { return gen.RevokeRefreshTokensParams{} }),
				errorCodes(generalCode("[invalid]")))},
		{ID: "revoke/nothing-selected/empty-params", Title: "Only empty parameters select nothing",
			Source: sourceOpenAPI, Documented: []string{docNothing, docAbsent}, Profile: ProfileCore,
			Requirement: "?applicationId=&token=&userId= (the Go client with three empty arguments) answers 400 with the general error [invalid] and revokes nothing.",
			Run: refused(nil, func(ctx context.Context, e *Env, w *world) *exchange {
				return e.revokeQuery(ctx, gen.RevokeRefreshTokensParams{Token: ptr(""), UserId: ptr(""), ApplicationId: ptr("")}, goClientOrder)
			}, errorCodes(generalCode("[invalid]")))},
		{ID: "revoke/nothing-selected/empty-body", Title: "A body with only eventInfo selects nothing",
			Source: sourceOpenAPI, Documented: []string{docNothing, docBody}, Profile: ProfileCore,
			Requirement: "The body {\"eventInfo\":{\"location\":{}}} (what the Go client sends with an empty request) answers 400 with the general error [invalid] and revokes nothing.",
			Run: refused(nil, func(ctx context.Context, e *Env, w *world) *exchange {
				return e.revokeBody(ctx, gen.RevokeRefreshTokensParams{}, gen.RefreshTokenRevokeRequest{EventInfo: &gen.EventInfo{Location: &gen.Location{}}})
			}, errorCodes(generalCode("[invalid]")))},
		{ID: "revoke/nothing-selected/null-params", Title: "Parameters that are all null or undefined select nothing",
			Source: sourceOpenAPI, Documented: []string{docNothing, docAbsent}, Profile: ProfileStrict,
			Requirement: "?token=null&userId=undefined&applicationId=null answers 400 with the general error [invalid] and revokes nothing.",
			Run: refused(nil, sendQuery(func(e *Env, w *world) gen.RevokeRefreshTokensParams {
				return gen.RevokeRefreshTokensParams{Token: ptr("null"), UserId: ptr("undefined"), ApplicationId: ptr("null")}
			}), errorCodes(generalCode("[invalid]")))},
		{ID: "revoke/malformed-id/query-user-id", Title: "A malformed userId in the query cannot be converted",
			Source: sourceOpenAPI, Documented: []string{docMalformed}, Profile: ProfileCore,
			Requirement: "?userId=not-a-uuid answers 400 with exactly the field error userId: [couldNotConvert]userId and revokes nothing.",
			Run: refused(nil, sendRaw(func(e *Env, w *world) rawRequest {
				return rawRequest{method: http.MethodDelete, target: revokePath + "?" + query("userId", "not-a-uuid")}
			}), errorCodes(fieldCode("userId", "[couldNotConvert]userId")))},
		{ID: "revoke/malformed-id/query-application-id", Title: "A malformed applicationId in the query cannot be converted",
			Source: sourceOpenAPI, Documented: []string{docMalformed}, Profile: ProfileCore,
			Requirement: "?userId=u1&applicationId=42 answers 400 with exactly the field error applicationId: [couldNotConvert]applicationId and revokes nothing.",
			Run: refused(nil, sendRaw(func(e *Env, w *world) rawRequest {
				return rawRequest{method: http.MethodDelete, target: revokePath + "?" + query("userId", w.user(1).String(), "applicationId", "42")}
			}), errorCodes(fieldCode("applicationId", "[couldNotConvert]applicationId")))},
		{ID: "revoke/malformed-id/body-user-id", Title: "A malformed userId in the body cannot be converted",
			Source: sourceOpenAPI, Documented: []string{docMalformed, docBody}, Profile: ProfileCore,
			Requirement: "The body {\"userId\":\"not-a-uuid\"} answers 400 with exactly the field error userId: [couldNotConvert]userId and revokes nothing.",
			Run: refused(nil, sendRaw(func(e *Env, w *world) rawRequest {
				return rawRequest{method: http.MethodDelete, target: revokePath, body: []byte(`{"userId":"not-a-uuid"}`)}
			}), errorCodes(fieldCode("userId", "[couldNotConvert]userId")))},
		{ID: "revoke/malformed-id/body-application-id", Title: "A malformed applicationId in the body cannot be converted",
			Source: sourceOpenAPI, Documented: []string{docMalformed, docBody}, Profile: ProfileCore,
			Requirement: "The body {\"userId\": u1, \"applicationId\":\"42\"} answers 400 with exactly the field error applicationId: [couldNotConvert]applicationId and revokes nothing.",
			Run: refused(nil, sendRaw(func(e *Env, w *world) rawRequest {
				return rawRequest{method: http.MethodDelete, target: revokePath,
					body: []byte(`{"userId":"` + w.user(1).String() + `","applicationId":"42"}`)}
			}), errorCodes(fieldCode("applicationId", "[couldNotConvert]applicationId")))},
		{ID: "revoke/malformed-id/before-unknown", Title: "A malformed id is reported before an unknown one",
			Source: sourceOpenAPI, Documented: []string{docMalformed, docUnknown}, Profile: ProfileCore,
			Requirement: "?userId=<unknown user>&applicationId=not-a-uuid answers 400 with only applicationId: [couldNotConvert]applicationId (step 1 of the order of decision comes before step 3) and revokes nothing.",
			Run: refused(nil, sendRaw(func(e *Env, w *world) rawRequest {
				return rawRequest{method: http.MethodDelete, target: revokePath + "?" + query("userId", e.unknownID("unknown user").String(), "applicationId", "not-a-uuid")}
			}), errorCodes(fieldCode("applicationId", "[couldNotConvert]applicationId")))},
		{ID: "revoke/unknown-user/query", Title: "A userId naming no user is invalid",
			Source: sourceOpenAPI, Documented: []string{docUnknown}, Profile: ProfileCore,
			Requirement: "?userId=<an id no user has> answers 400 with exactly userId: [invalid]userId and revokes nothing.",
			Run: refused(nil, sendQuery(func(e *Env, w *world) gen.RevokeRefreshTokensParams {
				return gen.RevokeRefreshTokensParams{UserId: ptr(e.unknownID("unknown user").String())}
			}), errorCodes(fieldCode("userId", "[invalid]userId")))},
		{ID: "revoke/unknown-user/with-token", Title: "A userId naming no user is invalid on the token path too",
			Source: sourceContract, Documented: []string{docUnknownAnyPath}, Profile: ProfileCore,
			Requirement: "?token=<u1's token>&userId=<an id no user has> answers 400 with exactly userId: [invalid]userId, and the token is not revoked.",
			Run: refused(nil, sendQuery(func(e *Env, w *world) gen.RevokeRefreshTokensParams {
				return gen.RevokeRefreshTokensParams{Token: &w.tok(1, 1, 1).value, UserId: ptr(e.unknownID("unknown user").String())}
			}), errorCodes(fieldCode("userId", "[invalid]userId")))},
		{ID: "revoke/unknown-app/query", Title: "An applicationId naming no application is invalid",
			Source: sourceOpenAPI, Documented: []string{docUnknown}, Profile: ProfileCore,
			Requirement: "?applicationId=<an id no application has> answers 400 with exactly applicationId: [invalid]applicationId and revokes nothing.",
			Run: refused(nil, sendQuery(func(e *Env, w *world) gen.RevokeRefreshTokensParams {
				return gen.RevokeRefreshTokensParams{ApplicationId: ptr(e.unknownID("unknown app").String())}
			}), errorCodes(fieldCode("applicationId", "[invalid]applicationId")))},
		{ID: "revoke/unknown-app/with-user", Title: "An unknown applicationId beside a real userId is invalid",
			Source: sourceOpenAPI, Documented: []string{docUnknown, docUserApp}, Profile: ProfileCore,
			Requirement: "?userId=u1&applicationId=<an id no application has> answers 400 with exactly applicationId: [invalid]applicationId and revokes nothing — in particular not all of u1's tokens.",
			Run: refused(nil, sendQuery(func(e *Env, w *world) gen.RevokeRefreshTokensParams {
				return gen.RevokeRefreshTokensParams{UserId: ptr(w.user(1).String()), ApplicationId: ptr(e.unknownID("unknown app").String())}
			}), errorCodes(fieldCode("applicationId", "[invalid]applicationId")))},
		{ID: "revoke/invalid-json/syntax", Title: "A body that does not parse is refused",
			Source: sourceContract, Documented: []string{docInvalidJSON}, Profile: ProfileCore,
			Requirement: "?userId=u1 with the body {\"userId\": (cut off) answers 400 with exactly the general error [invalidJSON] and revokes nothing.",
			Run: refused(nil, sendRaw(func(e *Env, w *world) rawRequest {
				return rawRequest{method: http.MethodDelete, target: revokePath + "?" + query("userId", w.user(1).String()), body: []byte(`{"userId": `)}
			}), errorCodes(generalCode("[invalidJSON]")))},
		{ID: "revoke/invalid-json/wrong-type", Title: "A body field of the wrong JSON type is refused",
			Source: sourceContract, Documented: []string{docInvalidJSON}, Profile: ProfileCore,
			Requirement: "?userId=u1 with the body {\"userId\": 42} answers 400 with exactly the general error [invalidJSON] and revokes nothing.",
			Run: refused(nil, sendRaw(func(e *Env, w *world) rawRequest {
				return rawRequest{method: http.MethodDelete, target: revokePath + "?" + query("userId", w.user(1).String()), body: []byte(`{"userId": 42}`)}
			}), errorCodes(generalCode("[invalidJSON]")))},
		{ID: "revoke/auth/missing-key", Title: "A request without an API key is unauthorized",
			Source: sourceOpenAPI, Documented: []string{docAuth}, Profile: ProfileCore,
			Requirement: "?userId=u1 without an Authorization header answers 401 with an empty body and revokes nothing.",
			Run: refused(nil, sendRaw(func(e *Env, w *world) rawRequest {
				return rawRequest{method: http.MethodDelete, target: revokePath + "?" + query("userId", w.user(1).String()), noKey: true}
			}), status(http.StatusUnauthorized))},
		{ID: "revoke/auth/wrong-key", Title: "A request with an unknown API key is unauthorized",
			Source: sourceOpenAPI, Documented: []string{docAuth}, Profile: ProfileCore,
			Requirement: "?userId=u1 with a key the server never issued answers 401 with an empty body and revokes nothing.",
			Run: refused(nil, sendRaw(func(e *Env, w *world) rawRequest {
				return rawRequest{method: http.MethodDelete, target: revokePath + "?" + query("userId", w.user(1).String()),
					key: "conformance-wrong-key-" + randomHex(16)}
			}), status(http.StatusUnauthorized))},
		{ID: "revoke/repeated-param", Title: "A query parameter given twice is refused",
			Source: sourceContract, Documented: []string{docRepeated}, Profile: ProfileStrict,
			Requirement: "?userId=u1&userId=u2 answers 400 with exactly userId: [invalid]userId and revokes nothing.",
			Run: refused(nil, sendRaw(func(e *Env, w *world) rawRequest {
				return rawRequest{method: http.MethodDelete, target: revokePath + "?" + query("userId", w.user(1).String(), "userId", w.user(2).String())}
			}), errorCodes(fieldCode("userId", "[invalid]userId")))},
		{ID: "revoke/tenant/malformed", Title: "A malformed tenant header is refused",
			Source: sourceOpenAPI, Documented: []string{docTenant}, Profile: ProfileStrict,
			Requirement: "?userId=u1 with X-FusionAuth-TenantId: not-a-tenant answers 400 with exactly the general error [invalid]tenantId and revokes nothing.",
			Run: refused(nil, sendQuery(func(e *Env, w *world) gen.RevokeRefreshTokensParams {
				return gen.RevokeRefreshTokensParams{UserId: ptr(w.user(1).String()), XFusionAuthTenantId: ptr("not-a-tenant")}
			}), errorCodes(generalCode("[invalid]tenantId")))},
		{ID: "revoke/tenant/unknown", Title: "A tenant header naming no tenant is refused",
			Source: sourceOpenAPI, Documented: []string{docTenant}, Profile: ProfileStrict,
			Requirement: "?userId=u1 with X-FusionAuth-TenantId: <an id no tenant has> answers 400 with exactly the general error [invalid]tenantId and revokes nothing.",
			Run: refused(nil, sendQuery(func(e *Env, w *world) gen.RevokeRefreshTokensParams {
				return gen.RevokeRefreshTokensParams{UserId: ptr(w.user(1).String()), XFusionAuthTenantId: ptr(e.unknownID("unknown tenant").String())}
			}), errorCodes(generalCode("[invalid]tenantId")))},
		{ID: "revoke/too-large", Title: "An oversized body is refused",
			Source: sourceContract, Documented: []string{docTooLarge}, Profile: ProfileStrict,
			Requirement: "A 9 MiB body {\"userId\": u1, \"eventInfo\": {\"data\": {\"padding\": …}}} answers 400 with exactly the general error [tooLarge] and revokes nothing.",
			Run: refused(nil, sendRaw(func(e *Env, w *world) rawRequest {
				pad := strings.Repeat("x", 9<<20)
				return rawRequest{method: http.MethodDelete, target: revokePath,
					body: []byte(`{"userId":"` + w.user(1).String() + `","eventInfo":{"data":{"padding":"` + pad + `"}}}`)}
			}), errorCodes(generalCode("[tooLarge]")))},
	}
}

// revokeByID sends DELETE /api/jwt/refresh/{id} through the generated client.
func (e *Env) revokeByID(ctx context.Context, id uuid.UUID) *exchange {
	return call(ctx, func(ctx context.Context) error {
		_, err := e.s.api.RevokeRefreshTokenByIdWithResponse(ctx, id, nil)
		return err
	})
}

func revokeByIDCases() []Case {
	return []Case{
		{ID: "revoke-by-id/path", Title: "Revoke one token by its id",
			Source: sourceOpenAPI, Documented: []string{docByID, docEventToken}, Profile: ProfileCore,
			Requirement: "DELETE /api/jwt/refresh/{id} answers 200 with an empty body; exactly that token is revoked and every other remains. Repeating the call answers 404 with an empty body." +
				reqEventsIntro + "the first call records exactly one jwt.refresh-token.revoke event, with the token's userId and applicationId, its refreshToken without the value, and applicationTimeToLiveInSeconds for its application alone; the second call records none." + reqSignature,
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 3, 3, 2)
				if fail != nil {
					return fail
				}
				t := w.tok(2, 2, 1)
				gone := func(o *token) bool { return o == t }
				first := e.revokeByID(ctx, t.id)
				if fail := e.expectEmpty(first, http.StatusOK); fail != nil {
					fail.Note = w.layout()
					return fail
				}
				if fail := w.expectTokens(ctx, first, gone); fail != nil {
					return fail
				}
				second := e.revokeByID(ctx, t.id)
				if fail := e.expectEmpty(second, http.StatusNotFound); fail != nil {
					fail.Note = "The same call a second time. " + w.layout()
					return fail
				}
				if fail := w.expectListed(ctx, second, gone); fail != nil {
					return fail
				}
				want := selector{token: t}.event(w, nil)
				return w.expectEvents(ctx, sentRevoke{first, &want}, sentRevoke{second, nil})
			}},
		{ID: "revoke-by-id/unknown", Title: "An id naming no token is not found",
			Source: sourceOpenAPI, Documented: []string{docByID}, Profile: ProfileCore,
			Requirement: "DELETE /api/jwt/refresh/{an id no token has} answers 404 with an empty body and revokes nothing.",
			Run: refused(nil, func(ctx context.Context, e *Env, w *world) *exchange {
				return e.revokeByID(ctx, e.unknownID("unknown token id"))
			}, status(http.StatusNotFound))},
		{ID: "revoke-by-id/malformed", Title: "A malformed token id cannot be converted",
			Source: sourceContract, Documented: []string{docByIDErrors}, Profile: ProfileCore,
			Requirement: "DELETE /api/jwt/refresh/not-a-uuid answers 400 with exactly tokenId: [couldNotConvert]tokenId and revokes nothing.",
			Run: refused(nil, func(ctx context.Context, e *Env, w *world) *exchange {
				return e.raw(ctx, rawRequest{method: http.MethodDelete, target: revokePath + "/not-a-uuid"})
			}, errorCodes(fieldCode("tokenId", "[couldNotConvert]tokenId")))},
		{ID: "revoke-by-id/auth/missing-key", Title: "Revoking by id without an API key is unauthorized",
			Source: sourceOpenAPI, Documented: []string{docAuth}, Profile: ProfileCore,
			Requirement: "DELETE /api/jwt/refresh/{id of u1/a1/1} without an Authorization header answers 401 with an empty body, and the token remains.",
			Run: refused(nil, func(ctx context.Context, e *Env, w *world) *exchange {
				return e.raw(ctx, rawRequest{method: http.MethodDelete, target: revokePath + "/" + w.tok(1, 1, 1).id.String(), noKey: true})
			}, status(http.StatusUnauthorized))},
	}
}
