package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	gen "refreshd/generated"
)

// fixture is a user, an application or a tenant the suite made.
type fixture struct {
	kind   string // "user", "application" or "tenant"
	id     uuid.UUID
	tenant string // the tenant it was made in, when the case chose one
}

// registry holds every fixture a session made and has not yet removed, so that
// Cleanup can remove what a failed or interrupted case left behind.
type registry struct {
	mu  sync.Mutex
	all map[fixture]int // fixture → creation order
	n   int
}

func newRegistry() *registry { return &registry{all: map[fixture]int{}} }

func (r *registry) add(f fixture) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	r.all[f] = r.n
}

func (r *registry) remove(f fixture) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.all, f)
}

// snapshot lists the fixtures still registered: users first (deleting a user
// deletes their tokens), then applications, then tenants, each in creation order.
func (r *registry) snapshot() []fixture {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]fixture, 0, len(r.all))
	for f := range r.all {
		out = append(out, f)
	}
	sortFixtures(out, r.all)
	return out
}

var kindOrder = map[string]int{"stream": 0, "user": 1, "application": 2, "tenant": 3}

func sortFixtures(fs []fixture, order map[fixture]int) {
	sort.Slice(fs, func(i, j int) bool {
		if fs[i].kind != fs[j].kind {
			return kindOrder[fs[i].kind] < kindOrder[fs[j].kind]
		}
		return order[fs[i]] < order[fs[j]]
	})
}

// Cleanup deletes the webhook the session registered and stops its receiver,
// then hard-deletes every user and application the session made and has not
// removed yet, with their refresh tokens. Call it once Run has returned, with a
// context of its own: after an interrupt the run's context is already cancelled.
// The error names what could not be removed.
func (s *Session) Cleanup(ctx context.Context) error {
	var errs []error
	if err := s.stopWebhook(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, f := range s.fx.snapshot() {
		if err := s.remove(ctx, f); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// remove hard-deletes one fixture; a 404 means it is already gone.
func (s *Session) remove(ctx context.Context, f fixture) error {
	hard := true
	if f.tenant != "" {
		ctx = context.WithValue(ctx, tenantKey{}, f.tenant)
	}
	var x *exchange
	switch f.kind {
	case "user":
		x = call(ctx, func(ctx context.Context) error {
			_, err := s.api.DeleteUserWithResponse(ctx, f.id, &gen.DeleteUserParams{HardDelete: &hard})
			return err
		})
	case "stream":
		x = call(ctx, func(ctx context.Context) error {
			_, err := s.api.DeleteSSFStreamWithResponse(ctx, &gen.DeleteSSFStreamParams{StreamId: f.id})
			return err
		})
	case "application":
		x = call(ctx, func(ctx context.Context) error {
			_, err := s.api.DeleteApplicationWithResponse(ctx, f.id, &gen.DeleteApplicationParams{HardDelete: &hard})
			return err
		})
	default:
		x = call(ctx, func(ctx context.Context) error {
			_, err := s.api.DeleteTenantWithResponse(ctx, f.id)
			return err
		})
	}
	if x.err == nil && (x.status == http.StatusOK || x.status == http.StatusNoContent || x.status == http.StatusNotFound) {
		s.fx.remove(f)
		return nil
	}
	return fmt.Errorf("%s %s: DELETE answered %s", f.kind, f.id, describe(x))
}

// cleanup removes the fixtures this case made; what it cannot remove stays in
// the session's registry for Cleanup.
func (e *Env) cleanup(ctx context.Context) {
	fs := append([]fixture(nil), e.made...)
	order := map[fixture]int{}
	for i, f := range fs {
		order[f] = i
	}
	sortFixtures(fs, order)
	for _, f := range fs {
		_ = e.s.remove(ctx, f)
	}
}

// forget drops a fixture the server refused to make: having answered, it made
// nothing. Without an answer the fixture may exist, so it stays registered.
func (e *Env) forget(f fixture, x *exchange) {
	if x.err != nil {
		return
	}
	e.s.fx.remove(f)
	e.made = e.made[:len(e.made)-1]
}

// setupFailure marks a failure to make fixtures, as opposed to a failed check.
func (e *Env) setupFailure(x *exchange) *Failure {
	f := e.failAt(x, "200", http.StatusOK, nil)
	f.Step = "setup: " + f.Step
	f.Note = "The fixtures this case needs could not be made through the public API."
	return f
}

// createUser makes a user with a fresh id, labelled name.
func (e *Env) createUser(ctx context.Context, name string) (uuid.UUID, *Failure) {
	id := uuid.New()
	e.label(id.String(), name)
	f := fixture{"user", id, tenantOf(ctx)}
	e.s.fx.add(f)
	e.made = append(e.made, f)
	body := gen.UserRequest{User: gen.User{
		Email:    ptr(fmt.Sprintf("conformance-%s@example.com", id)),
		Password: ptr("Conformance-" + e.s.runID + "-pw"),
	}}
	x := call(ctx, func(ctx context.Context) error {
		_, err := e.s.api.CreateUserWithIdWithResponse(ctx, id, nil, body)
		return err
	})
	if x.err != nil || x.status != http.StatusOK {
		e.forget(f, x)
		return id, e.setupFailure(x)
	}
	return id, nil
}

// createApp makes an application with a fresh id, labelled name, with the
// given jwtConfiguration (nil: none, so the tenant's settings apply).
func (e *Env) createApp(ctx context.Context, name string, jwt *gen.JWTConfiguration) (uuid.UUID, *Failure) {
	id, _, fail := e.createAppWith(ctx, name, gen.Application{JwtConfiguration: jwt})
	return id, fail
}

// createAppWith makes an application like createApp, with the settings of app,
// and returns the answer too.
func (e *Env) createAppWith(ctx context.Context, name string, app gen.Application) (uuid.UUID, *exchange, *Failure) {
	id := uuid.New()
	e.label(id.String(), name)
	f := fixture{"application", id, tenantOf(ctx)}
	e.s.fx.add(f)
	e.made = append(e.made, f)
	app.Name = fmt.Sprintf("conformance %s %s %s", e.s.runID, name, id.String()[:8])
	x := call(ctx, func(ctx context.Context) error {
		_, err := e.s.api.CreateApplicationWithIdWithResponse(ctx, id, nil, gen.ApplicationRequest{Application: app})
		return err
	})
	if x.err != nil || x.status != http.StatusOK {
		e.forget(f, x)
		return id, x, e.setupFailure(x)
	}
	return id, x, nil
}

// token is a refresh token of a world, with a known value. Its startInstant is
// unique within the world, which is how a listing, which never needs to show the
// value, tells the tokens apart.
type token struct {
	name   string // "u1/a2/1": user 1's first token for application 2
	value  string
	userID uuid.UUID
	appID  uuid.UUID
	start  int64
	id     uuid.UUID // learned from the listing once stored
	// expired tokens were imported with a startInstant long past: never listed,
	// never known by id.
	expired bool
}

// world is a set of users × applications, each pair holding a few tokens, made
// fresh for one case so that it can say exactly what must remain.
type world struct {
	e          *Env
	users      []uuid.UUID
	apps       []uuid.UUID
	tokens     []*token
	made       []*token // every token newToken made, stored or not
	base, next int64    // startInstant of the first token; how many were made
}

// newWorld makes nUsers users, nApps applications and perPair tokens for each
// pair, imports the tokens in one batch and learns their ids from the listing.
func (e *Env) newWorld(ctx context.Context, nUsers, nApps, perPair int) (*world, *Failure) {
	return e.newWorldWith(ctx, nUsers, nApps, perPair, nil)
}

// newWorldWith is newWorld with applications made with the given jwtConfiguration.
func (e *Env) newWorldWith(ctx context.Context, nUsers, nApps, perPair int, jwt *gen.JWTConfiguration) (*world, *Failure) {
	// A minute in the past, in whole seconds: a server whose clock is a little
	// behind must not see a startInstant in the future.
	w := &world{e: e, base: time.Now().Add(-time.Minute).Truncate(time.Second).UnixMilli()}
	for i := 1; i <= nUsers; i++ {
		id, f := e.createUser(ctx, fmt.Sprintf("u%d", i))
		if f != nil {
			return nil, f
		}
		w.users = append(w.users, id)
	}
	for i := 1; i <= nApps; i++ {
		id, f := e.createApp(ctx, fmt.Sprintf("a%d", i), jwt)
		if f != nil {
			return nil, f
		}
		w.apps = append(w.apps, id)
	}
	var batch []*token
	for u := 1; u <= nUsers; u++ {
		for a := 1; a <= nApps; a++ {
			for k := 1; k <= perPair; k++ {
				batch = append(batch, w.newToken(u, a, fmt.Sprintf("u%d/a%d/%d", u, a, k)))
			}
		}
	}
	if len(batch) > 0 {
		if f := w.store(ctx, batch...); f != nil {
			return nil, f
		}
	}
	return w, nil
}

func (w *world) user(i int) uuid.UUID { return w.users[i-1] }
func (w *world) app(i int) uuid.UUID  { return w.apps[i-1] }

// tok returns the k-th stored token of user u for application a.
func (w *world) tok(u, a, k int) *token {
	name := fmt.Sprintf("u%d/a%d/%d", u, a, k)
	for _, t := range w.tokens {
		if t.name == name {
			return t
		}
	}
	panic("conformance: no token " + name)
}

// newToken makes a token value for user u and application a, not yet stored.
func (w *world) newToken(u, a int, name string) *token {
	t := &token{
		name:   name,
		value:  fmt.Sprintf("conformance-%s-%s", w.e.s.runID, randomHex(16)),
		userID: w.user(u), appID: w.app(a),
		start: w.base - w.next*1000,
	}
	w.next++
	w.e.label(t.value, name)
	w.made = append(w.made, t)
	return t
}

// importItem is how a token is sent to the import API.
func (t *token) importItem() gen.ImportedRefreshToken {
	return gen.ImportedRefreshToken{
		Token: t.value, UserId: t.userID, ApplicationId: t.appID, StartInstant: t.start,
		MetaData: &gen.RefreshTokenMetaData{
			Device: &gen.DeviceInfo{Name: ptr("conformance " + t.name), Type: ptr("OTHER")},
			Scopes: &[]string{"offline_access"},
		},
	}
}

// store imports tokens as fixtures, adds them to the world and learns their ids.
func (w *world) store(ctx context.Context, ts ...*token) *Failure {
	e := w.e
	req := gen.RefreshTokenImportRequest{}
	for _, t := range ts {
		req.RefreshTokens = append(req.RefreshTokens, t.importItem())
	}
	x := call(ctx, func(ctx context.Context) error {
		_, err := e.s.api.ImportRefreshTokensWithResponse(ctx, nil, req)
		return err
	})
	if x.err != nil || x.status != http.StatusOK {
		return e.setupFailure(x)
	}
	w.tokens = append(w.tokens, ts...)
	if f := w.learnIDs(ctx); f != nil {
		f.Step = "setup: " + f.Step
		f.Note = "The fixtures this case needs could not be made through the public API."
		return f
	}
	return nil
}

// learnIDs finds each stored token without an id in its user's listing.
func (w *world) learnIDs(ctx context.Context) *Failure {
	e := w.e
	for _, u := range w.users {
		listed, x, f := w.list(ctx, u)
		if f != nil {
			return f
		}
		for _, l := range listed {
			if t := w.find(l); t != nil && t.id == uuid.Nil && !t.expired {
				if id, err := uuid.Parse(l.ID); err == nil {
					t.id = id
					e.label(id.String(), t.name+".id")
				}
			}
		}
		for _, t := range w.tokens {
			if t.userID == u && t.id == uuid.Nil && !t.expired {
				return &Failure{Step: e.step(x),
					Expected: fmt.Sprintf("the imported token {%s} listed, with its id", t.name),
					Actual:   "it is not listed (matched by userId, applicationId and startInstant)"}
			}
		}
	}
	return nil
}

// listed is one entry of GET /api/jwt/refresh?userId=, decoded loosely.
type listed struct {
	ID            string `json:"id"`
	ApplicationID string `json:"applicationId"`
	UserID        string `json:"userId"`
	StartInstant  int64  `json:"startInstant"`
}

// list returns a user's listing; the failure says when it is not a 200 with
// {"refreshTokens": […]}.
func (w *world) list(ctx context.Context, user uuid.UUID) ([]listed, *exchange, *Failure) {
	e := w.e
	x := call(ctx, func(ctx context.Context) error {
		_, err := e.s.api.RetrieveRefreshTokensWithResponse(ctx, &gen.RetrieveRefreshTokensParams{UserId: ptr(user.String())})
		return err
	})
	if x.err != nil || x.status != http.StatusOK {
		return nil, x, e.failAt(x, `200 with {"refreshTokens":[…]}`, http.StatusOK, nil)
	}
	var body struct {
		RefreshTokens []listed `json:"refreshTokens"`
	}
	if err := json.Unmarshal(x.body, &body); err != nil {
		f := e.failAt(x, `200 with {"refreshTokens":[…]}`, http.StatusOK, nil)
		f.Actual += fmt.Sprintf(" (cannot decode: %v)", err)
		return nil, x, f
	}
	return body.RefreshTokens, x, nil
}

// describe names a listed token that is not in the world: one the case sent
// that should not have been stored, or one the suite knows nothing of.
func (w *world) describe(l listed) string {
	for _, t := range w.made {
		if t.userID.String() == strings.ToLower(l.UserID) && t.appID.String() == strings.ToLower(l.ApplicationID) && t.start == l.StartInstant {
			return t.name + " (sent, should not be stored)"
		}
	}
	return w.e.show(fmt.Sprintf("a token of %s for %s with startInstant %d that the suite never sent",
		l.UserID, l.ApplicationID, l.StartInstant))
}

func (w *world) find(l listed) *token {
	for _, t := range w.tokens {
		if t.userID.String() == strings.ToLower(l.UserID) && t.appID.String() == strings.ToLower(l.ApplicationID) && t.start == l.StartInstant {
			return t
		}
	}
	return nil
}

// layout describes the world for a failure's note.
func (w *world) layout() string {
	per := 0
	if len(w.users) > 0 && len(w.apps) > 0 {
		per = len(w.tokens) / (len(w.users) * len(w.apps))
	}
	u, a := len(w.users), len(w.apps)
	switch per {
	case 0:
		return fmt.Sprintf("Fixtures: users u1…u%d × applications a1…a%d, no tokens.", u, a)
	case 1:
		return fmt.Sprintf("Fixtures: users u1…u%d × applications a1…a%d, one token each; "+
			"u%d/a%d/1 is user u%d's token for application a%d.", u, a, u, a, u, a)
	}
	return fmt.Sprintf("Fixtures: users u1…u%d × applications a1…a%d, %d tokens each; "+
		"u%d/a%d/1 is user u%d's first token for application a%d.", u, a, per, u, a, u, a)
}

// expectTokens checks, through GET /api/jwt/refresh?userId= for every user of the
// world and GET /api/jwt/refresh/{id} for every token, that exactly the tokens
// for which gone is true are gone and every other token remains. after names
// the request whose effect is checked.
func (w *world) expectTokens(ctx context.Context, after *exchange, gone func(*token) bool) *Failure {
	return w.check(ctx, after, gone, true)
}

// expectListed is expectTokens through the listings only, for a second look
// after a call that should have changed nothing more.
func (w *world) expectListed(ctx context.Context, after *exchange, gone func(*token) bool) *Failure {
	return w.check(ctx, after, gone, false)
}

func (w *world) check(ctx context.Context, after *exchange, gone func(*token) bool, byIDToo bool) *Failure {
	e := w.e
	inListing := map[*token]bool{}
	var unexpected []string
	for _, u := range w.users {
		entries, _, f := w.list(ctx, u)
		if f != nil {
			f.Note = "While checking which tokens remain after " + e.step(after)
			return f
		}
		for _, l := range entries {
			t := w.find(l)
			if t == nil {
				unexpected = append(unexpected, w.describe(l))
				continue
			}
			if t.expired {
				unexpected = append(unexpected, t.name+" (expired, still listed)")
				continue
			}
			inListing[t] = true
		}
	}
	byID := map[*token]int{}
	for _, t := range w.tokens {
		if t.id == uuid.Nil || !byIDToo {
			continue // never listed (expired on import), so never known by id
		}
		x := call(ctx, func(ctx context.Context) error {
			_, err := e.s.api.RetrieveRefreshTokenByIdWithResponse(ctx, t.id, nil)
			return err
		})
		if x.err != nil || (x.status != http.StatusOK && x.status != http.StatusNotFound) {
			f := e.failAt(x, "200 or 404", 0, nil)
			f.Note = "While checking which tokens remain after " + e.step(after)
			return f
		}
		byID[t] = x.status
	}
	var kept, lost, goneNames []string
	remain := 0
	for _, t := range w.tokens {
		listedNow, idStatus := inListing[t], byID[t]
		if t.id == uuid.Nil {
			continue
		}
		if gone(t) {
			goneNames = append(goneNames, t.name)
			var why []string
			if listedNow {
				why = append(why, "still listed")
			}
			if idStatus == http.StatusOK {
				why = append(why, "GET by id 200")
			}
			if len(why) > 0 {
				kept = append(kept, t.name+" ("+strings.Join(why, ", ")+")")
			}
			continue
		}
		remain++
		var why []string
		if !listedNow {
			why = append(why, "not listed")
		}
		if byIDToo && idStatus == http.StatusNotFound {
			why = append(why, "GET by id 404")
		}
		if len(why) > 0 {
			lost = append(lost, t.name+" ("+strings.Join(why, ", ")+")")
		}
	}
	if len(kept) == 0 && len(lost) == 0 && len(unexpected) == 0 {
		return nil
	}
	expected := fmt.Sprintf("all %d tokens remain, and no other is listed", remain)
	if len(goneNames) > 0 {
		expected = fmt.Sprintf("gone: %s; the other %d remain", strings.Join(goneNames, ", "), remain)
	}
	var actual []string
	if len(kept) > 0 {
		actual = append(actual, "still there: "+strings.Join(kept, ", "))
	}
	if len(lost) > 0 {
		actual = append(actual, "wrongly gone: "+strings.Join(lost, ", "))
	}
	if len(unexpected) > 0 {
		actual = append(actual, "unexpected: "+strings.Join(unexpected, ", "))
	}
	return &Failure{
		Step:        "tokens after " + e.step(after),
		Expected:    expected,
		Actual:      strings.Join(actual, "; "),
		Note:        w.layout(),
		WronglyKept: names(kept), WronglyGone: names(lost),
	}
}

// names strips the evidence from "u1/a1/1 (still listed)".
func names(list []string) []string {
	var out []string
	for _, s := range list {
		n, _, _ := strings.Cut(s, " ")
		out = append(out, n)
	}
	return out
}

func nothing(*token) bool { return false }
