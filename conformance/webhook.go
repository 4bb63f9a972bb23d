package conformance

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	gen "refreshd/generated"
)

// The webhook the suite registers in webhook mode (Config.WebhookListen).
const (
	revokeEvent     = "jwt.refresh-token.revoke"
	signatureHeader = "X-Refreshd-Signature"
	// signatureJWTHeader is FusionAuth's webhook signature (FusionAuth ≥ 1.48).
	signatureJWTHeader = "X-FusionAuth-Signature-JWT"
	// defaultWebhookWait bounds the wait for a case's events when Config.WebhookWait is zero.
	defaultWebhookWait = 5 * time.Second
	// maxDelivery bounds what is read of one delivery; an event is a few KiB.
	maxDelivery = 1 << 20
)

// receiver is the session's end of its webhook: an HTTP server that keeps every
// delivery, the id of the webhook registered for it on the server under test,
// and the key the server signs its deliveries with.
type receiver struct {
	srv    *http.Server
	url    string
	secret []byte
	id     uuid.UUID // the registered webhook; uuid.Nil before registration and once deleted
	keyID  uuid.UUID // the signing key the suite generated; uuid.Nil before and once deleted
	kid    string    // its kid
	jwk    *jwk      // its public half, as the JWKS lists it; nil when the JWKS did not

	mu      sync.Mutex
	got     []delivery
	arrived chan struct{} // closed and replaced whenever a delivery arrives
}

// delivery is one POST the receiver got, with the fields the cases match on.
type delivery struct {
	body      []byte
	signature string                     // the X-Refreshd-Signature header as sent
	jwt       string                     // the X-FusionAuth-Signature-JWT header as sent
	event     map[string]json.RawMessage // nil when the body is not {"event": {…}}
	id, typ   string
	user, app string // lower-case ids; "" when absent
}

// ServeHTTP records a delivery and answers 200 at once, so that the server never
// has a reason to retry.
func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxDelivery))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	d := delivery{body: body, signature: req.Header.Get(signatureHeader), jwt: req.Header.Get(signatureJWTHeader)}
	var envelope struct {
		Event map[string]json.RawMessage `json:"event"`
	}
	if json.Unmarshal(body, &envelope) == nil && envelope.Event != nil {
		d.event = envelope.Event
		d.id, _ = text(d.event, "id")
		d.typ, _ = text(d.event, "type")
		d.user, _ = text(d.event, "userId")
		d.app, _ = text(d.event, "applicationId")
		d.user, d.app = strings.ToLower(d.user), strings.ToLower(d.app)
	}
	r.mu.Lock()
	r.got = append(r.got, d)
	close(r.arrived)
	r.arrived = make(chan struct{})
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// text returns a string property of an event; null counts as absent, and a
// value of another JSON type is returned as its JSON text.
func text(obj map[string]json.RawMessage, field string) (string, bool) {
	raw, ok := obj[field]
	if !ok || string(bytes.TrimSpace(raw)) == "null" {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return string(raw), true
	}
	return s, true
}

// waitFor waits until a delivery matches, at most for d; it says whether one did.
func (r *receiver) waitFor(ctx context.Context, d time.Duration, match func(delivery) bool) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	seen := 0
	for {
		r.mu.Lock()
		for _, got := range r.got[seen:] {
			if match(got) {
				r.mu.Unlock()
				return true
			}
		}
		seen = len(r.got)
		arrived := r.arrived
		r.mu.Unlock()
		select {
		case <-arrived:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// matching returns the deliveries so far that match, in the order they arrived.
func (r *receiver) matching(match func(delivery) bool) []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []delivery
	for _, d := range r.got {
		if match(d) {
			out = append(out, d)
		}
	}
	return out
}

// signedRight reports whether a delivery carries sha256=<hex HMAC-SHA256 of its body>.
func (r *receiver) signedRight(d delivery) bool {
	hexSum, ok := strings.CutPrefix(d.signature, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, r.secret)
	mac.Write(d.body)
	return hmac.Equal(got, mac.Sum(nil))
}

// fusionAuthSigned reports, the way a receiver written from FusionAuth's
// documentation checks it, whether a delivery carries X-FusionAuth-Signature-JWT:
// a JWT signed RS256 by the key the suite generated (its kid, verified with the
// key the JWKS lists for that kid) whose only claim, request_body_sha256, is the
// standard base64 (padded) SHA-256 of the body. It says what is wrong, or "".
func (r *receiver) fusionAuthSigned(d delivery) string {
	if d.jwt == "" {
		return "no " + signatureJWTHeader + " header"
	}
	t, err := parseJWS(d.jwt)
	if err != nil {
		return err.Error()
	}
	if alg, kid := claim(t.header, "alg"), claim(t.header, "kid"); alg != "RS256" || kid != r.kid {
		return fmt.Sprintf("header alg %q, kid %q; the suite's key is RS256 with kid %q", alg, kid, r.kid)
	}
	if r.jwk == nil {
		return "GET /.well-known/jwks.json did not list the key with kid " + r.kid
	}
	if err := verifyRS256(*r.jwk, t); err != nil {
		return err.Error()
	}
	sum := sha256.Sum256(d.body)
	if want := base64.StdEncoding.EncodeToString(sum[:]); len(t.claims) != 1 || claim(t.claims, "request_body_sha256") != want {
		raw, _ := json.Marshal(t.claims)
		return fmt.Sprintf("claims %s, want exactly {\"request_body_sha256\": %q}", raw, want)
	}
	return ""
}

// withoutTenant keeps the tenant header off a request: the suite's signing key
// is global, as every FusionAuth key is, so that it may sign a global webhook.
func withoutTenant(_ context.Context, r *http.Request) error {
	r.Header.Del(tenantHeader)
	return nil
}

// startWebhook listens on Config.WebhookListen, generates an RS256 key to sign
// deliveries with, registers a global webhook for jwt.refresh-token.revoke there
// that is signed with it (and with a signing secret of the suite's choosing), and
// makes sure an event reaches it; Cleanup deletes the webhook and the key. Any
// failure is a *SetupError.
func (s *Session) startWebhook(ctx context.Context) error {
	if s.hooks != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.WebhookListen)
	if err != nil {
		return &SetupError{fmt.Sprintf("cannot receive webhooks on %s: %v", s.cfg.WebhookListen, err)}
	}
	r := &receiver{secret: []byte("conformance-" + randomHex(16)), arrived: make(chan struct{}), url: s.cfg.WebhookURL}
	if r.url == "" {
		r.url = "http://" + ln.Addr().String() + "/refreshd-conformance/" + s.runID
	}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	s.hooks = r
	if err := s.generateSigningKey(ctx); err != nil {
		return err
	}

	body := gen.WebhookRequest{Webhook: gen.Webhook{
		Url: r.url, Global: ptr(true), EventsEnabled: &map[string]bool{revokeEvent: true},
		SigningSecret: ptr(string(r.secret)), Description: ptr("refreshd conformance " + s.runID),
		SignatureConfiguration: &gen.WebhookSignatureConfiguration{Enabled: ptr(true),
			SigningKeyId: ptr(gen.OptionalBodyId(r.keyID.String()))},
	}}
	x := call(ctx, func(ctx context.Context) error {
		_, err := s.api.CreateWebhookWithResponse(ctx, body)
		return err
	})
	var created struct {
		Webhook struct {
			ID uuid.UUID `json:"id"`
		} `json:"webhook"`
	}
	if x.err != nil || x.status != http.StatusOK || json.Unmarshal(x.body, &created) != nil || created.Webhook.ID == uuid.Nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %v", ErrCutShort, context.Cause(ctx))
		}
		hint := ""
		if x.status == http.StatusUnauthorized {
			hint = " (the API key must be allowed to manage webhooks: not locked to a tenant, not limited to endpoints)"
		}
		return &SetupError{fmt.Sprintf("cannot register a webhook for %s at %s: POST /api/webhook answered %s, expected 200 with the webhook and its id%s",
			r.url, s.cfg.URL, describe(x), hint)}
	}
	r.id = created.Webhook.ID
	return s.probeWebhook(ctx)
}

// generateSigningKey makes the RS256 key the webhook is signed with, and reads
// its public half from the JWKS.
func (s *Session) generateSigningKey(ctx context.Context) error {
	r := s.hooks
	x := call(ctx, func(ctx context.Context) error {
		_, err := s.api.GenerateKeyWithResponse(ctx, nil, gen.KeyRequest{Key: gen.Key{
			Algorithm: ptr(gen.KeyAlgorithmRS256), Name: ptr("refreshd conformance " + s.runID), Length: ptr(int32(2048))}},
			withoutTenant)
		return err
	})
	var made struct {
		Key struct {
			ID  uuid.UUID `json:"id"`
			Kid string    `json:"kid"`
		} `json:"key"`
	}
	if x.err != nil || x.status != http.StatusOK || json.Unmarshal(x.body, &made) != nil || made.Key.ID == uuid.Nil || made.Key.Kid == "" {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %v", ErrCutShort, context.Cause(ctx))
		}
		hint := ""
		if x.status == http.StatusUnauthorized {
			hint = " (the API key must be allowed to generate and delete keys: POST /api/key/generate, DELETE /api/key)"
		}
		return &SetupError{fmt.Sprintf("cannot generate the key that signs the webhook at %s: POST /api/key/generate answered %s, expected 200 with the key, its id and kid%s",
			s.cfg.URL, describe(x), hint)}
	}
	r.keyID, r.kid = made.Key.ID, made.Key.Kid
	y := call(ctx, func(ctx context.Context) error {
		_, err := s.api.GetJWKSWithResponse(ctx, withoutKey)
		return err
	})
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if y.err == nil && y.status == http.StatusOK && json.Unmarshal(y.body, &set) == nil {
		for _, k := range set.Keys {
			if k.Kid == r.kid {
				r.jwk = &k
			}
		}
	}
	return nil
}

// probeWebhook revokes the tokens of a fresh application, which always records
// an event, and waits for it, so that a receiver the server cannot reach is said
// in one line instead of as a failure of every revoke case.
func (s *Session) probeWebhook(ctx context.Context) error {
	e := s.newEnv()
	defer e.cleanup(ctx)
	app, f := e.createApp(ctx, "probe", nil)
	if f != nil {
		return &SetupError{fmt.Sprintf("cannot make the application that tests the webhook at %s: it answered %s", s.cfg.URL, f.Actual)}
	}
	x := e.revokeQuery(ctx, gen.RevokeRefreshTokensParams{ApplicationId: ptr(app.String())})
	if x.err != nil || x.status != http.StatusOK {
		return &SetupError{fmt.Sprintf("cannot test the webhook: DELETE /api/jwt/refresh?applicationId=… answered %s, expected 200", describe(x))}
	}
	id := app.String()
	if !s.hooks.waitFor(ctx, s.webhookWait(), func(d delivery) bool { return d.app == id }) {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %v", ErrCutShort, context.Cause(ctx))
		}
		return &SetupError{fmt.Sprintf("no webhook delivery reached %s within %s of revoking an application's tokens: can %s reach that URL? (-webhook-url)",
			s.hooks.url, s.webhookWait(), s.cfg.URL)}
	}
	return nil
}

func (s *Session) webhookWait() time.Duration {
	if s.cfg.WebhookWait > 0 {
		return s.cfg.WebhookWait
	}
	return defaultWebhookWait
}

// stopWebhook deletes the registered webhook, then its signing key (a 404 means
// it is gone already), and stops the receiver.
func (s *Session) stopWebhook(ctx context.Context) error {
	r := s.hooks
	if r == nil {
		return nil
	}
	var errs []error
	if r.id != uuid.Nil {
		x := call(ctx, func(ctx context.Context) error {
			_, err := s.api.DeleteWebhookWithResponse(ctx, r.id)
			return err
		})
		if x.err == nil && (x.status == http.StatusOK || x.status == http.StatusNotFound) {
			r.id = uuid.Nil
		} else {
			errs = append(errs, fmt.Errorf("webhook %s: DELETE answered %s", r.id, describe(x)))
		}
	}
	if r.keyID != uuid.Nil && r.id == uuid.Nil {
		x := call(ctx, func(ctx context.Context) error {
			_, err := s.api.DeleteKeyWithResponse(ctx, r.keyID, nil, withoutTenant)
			return err
		})
		if x.err == nil && (x.status == http.StatusOK || x.status == http.StatusNotFound) {
			r.keyID = uuid.Nil
		} else {
			errs = append(errs, fmt.Errorf("signing key %s: DELETE answered %s", r.keyID, describe(x)))
		}
	}
	_ = r.srv.Close()
	return errors.Join(errs...)
}

// wantEvent is the jwt.refresh-token.revoke event one revoke request must record.
type wantEvent struct {
	user, app uuid.UUID      // uuid.Nil: the field must be absent
	token     *token         // the token a single-token revocation revoked
	ttlApps   []uuid.UUID    // the keys of applicationTimeToLiveInSeconds
	info      *gen.EventInfo // the eventInfo the request carried, if any
}

// event is the event a revocation by s records the first time (tokens still
// there); with info when the request carried that eventInfo.
func (s selector) event(w *world, info *gen.EventInfo) wantEvent {
	switch {
	case s.token != nil:
		return wantEvent{user: s.token.userID, app: s.token.appID, token: s.token, ttlApps: []uuid.UUID{s.token.appID}, info: info}
	case s.app != uuid.Nil:
		return wantEvent{user: s.user, app: s.app, ttlApps: []uuid.UUID{s.app}, info: info}
	}
	want := wantEvent{user: s.user, info: info}
	had := map[uuid.UUID]bool{}
	for _, t := range w.tokens {
		if t.userID == s.user && !t.expired && !had[t.appID] {
			had[t.appID] = true
			want.ttlApps = append(want.ttlApps, t.appID)
		}
	}
	return want
}

// recordsWhenNothingRevoked says whether repeating the revocation records an
// event again: the forms naming an application always record one; a single
// token that is gone answers 404, and a user-only form revoking nothing records none.
func (s selector) recordsWhenNothingRevoked() bool { return s.token == nil && s.app != uuid.Nil }

// sentRevoke is a revoke request a case sent and the event it must have recorded
// (nil: none).
type sentRevoke struct {
	x    *exchange
	want *wantEvent
}

// expectEvents checks, when the session receives webhooks, the
// jwt.refresh-token.revoke events about the world: in order, each request of sent
// recorded exactly its expected event and nothing else recorded one. Without
// webhooks it checks nothing.
//
// To know that every event of the case has arrived it then revokes by the world's
// first application alone (a request cases that check events never send) and
// waits for that event: deliveries come in the order the events happened. Every
// delivery must carry FusionAuth's X-FusionAuth-Signature-JWT, and in the strict
// profile also the X-Refreshd-Signature the contract names.
func (w *world) expectEvents(ctx context.Context, sent ...sentRevoke) *Failure {
	e := w.e
	r := e.s.hooks
	if r == nil {
		return nil
	}
	marker := w.app(1)
	x := e.revokeQuery(ctx, gen.RevokeRefreshTokensParams{ApplicationId: ptr(marker.String())})
	if fail := e.expectEmpty(x, http.StatusOK); fail != nil {
		fail.Note = "The request after which every event of the case must have been delivered. " + w.layout()
		return fail
	}
	isMarker := func(d delivery) bool { return d.typ == revokeEvent && d.app == marker.String() && d.user == "" }
	if !r.waitFor(ctx, e.s.webhookWait(), isMarker) {
		return &Failure{Step: "webhook delivery of " + e.step(x),
			Expected: fmt.Sprintf("its %s event within %s", revokeEvent, e.s.webhookWait()),
			Actual:   "none arrived",
			Note:     "This request marks the end of the case's events: deliveries come in the order the events happened."}
	}
	ours := map[string]bool{}
	for _, id := range w.users {
		ours[id.String()] = true
	}
	for _, id := range w.apps {
		ours[id.String()] = true
	}
	deliveries := r.matching(func(d delivery) bool {
		return d.typ == revokeEvent && (ours[d.user] || ours[d.app]) && !isMarker(d)
	})
	// Delivery is at least once: a repeated event id is the same event.
	var events []delivery
	seen := map[string]bool{}
	for _, d := range deliveries {
		if d.id != "" && seen[d.id] {
			continue
		}
		seen[d.id] = true
		events = append(events, d)
	}

	var wants []*wantEvent
	var plan []string
	for i, s := range sent {
		step := e.step(s.x)
		if i > 0 && step == e.step(sent[i-1].x) {
			step = "the same call again"
		}
		what := "no event"
		if s.want != nil {
			what = "one event"
			wants = append(wants, s.want)
		}
		plan = append(plan, step+" → "+what)
	}
	first := "webhook events after " + e.step(sent[0].x)
	if len(events) != len(wants) {
		var got []string
		for _, d := range events {
			got = append(got, w.summary(d))
		}
		actual := count(len(events), "event")
		if len(got) > 0 {
			actual += ": " + strings.Join(got, "; ")
		}
		return &Failure{Step: first,
			Expected: fmt.Sprintf("%s, in order: %s", count(len(wants), revokeEvent+" event"), strings.Join(plan, "; ")),
			Actual:   actual, Note: w.layout()}
	}
	for i, d := range events {
		if problems := w.eventProblems(d, *wants[i]); len(problems) > 0 {
			return &Failure{Step: first, Expected: "event " + fmt.Sprint(i+1) + ": " + w.expected(*wants[i]),
				Actual: e.show(strings.Join(problems, "; ")), ActualBody: e.show(shorten(d.body, 500)), Note: w.layout()}
		}
	}
	all := append(deliveries, r.matching(isMarker)...)
	for _, d := range all {
		if problem := r.fusionAuthSigned(d); problem != "" {
			return &Failure{Step: signatureJWTHeader + " of the delivery of the event " + w.summary(d),
				Expected: signatureJWTHeader + ": a JWT signed RS256 with the key the suite generated (kid " + r.kid +
					", verified with the JWKS), whose only claim request_body_sha256 is the standard base64 SHA-256 of the body",
				Actual: problem, ActualBody: e.show(shorten(d.body, 300)),
				Note: "FusionAuth signs each delivery of a webhook whose signatureConfiguration is enabled (since 1.48)."}
		}
	}
	if e.s.profile == ProfileStrict {
		for _, d := range all {
			if r.signedRight(d) {
				continue
			}
			actual := "no " + signatureHeader + " header"
			if d.signature != "" {
				actual = signatureHeader + ": " + d.signature + ", which is not that HMAC"
			}
			return &Failure{Step: signatureHeader + " of the delivery of the event " + w.summary(d),
				Expected: signatureHeader + ": sha256=<hex HMAC-SHA256 of the body, keyed with the signingSecret the suite registered>",
				Actual:   actual}
		}
	}
	return nil
}

// count spells n things: "no event", "one event", "3 events".
func count(n int, thing string) string {
	switch n {
	case 0:
		return "no " + thing
	case 1:
		return "one " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// expected says in words what an event must carry.
func (w *world) expected(want wantEvent) string {
	var parts []string
	if want.user != uuid.Nil {
		parts = append(parts, "userId, linkedObjectId and user.id "+want.user.String())
	} else {
		parts = append(parts, "no userId, linkedObjectId or user")
	}
	if want.app != uuid.Nil {
		parts = append(parts, "applicationId "+want.app.String())
	} else {
		parts = append(parts, "no applicationId")
	}
	if want.token != nil {
		parts = append(parts, "refreshToken "+want.token.id.String()+" without its value")
	}
	var ttl []string
	for _, a := range want.ttlApps {
		ttl = append(ttl, a.String())
	}
	parts = append(parts, "applicationTimeToLiveInSeconds for exactly "+strings.Join(ttl, ", "))
	if want.info != nil {
		parts = append(parts, "info with the eventInfo sent")
	}
	return w.e.show(strings.Join(parts, ", "))
}

// summary names an event by its ids and TTL keys.
func (w *world) summary(d delivery) string {
	if d.event == nil {
		return "a delivery that is not {\"event\": {…}}: " + w.e.show(shorten(d.body, 120))
	}
	user, app := d.user, d.app
	if user == "" {
		user = "none"
	}
	if app == "" {
		app = "none"
	}
	keys := "none"
	var ttl map[string]json.RawMessage
	if json.Unmarshal(d.event["applicationTimeToLiveInSeconds"], &ttl) == nil && len(ttl) > 0 {
		var ks []string
		for k := range ttl {
			ks = append(ks, strings.ToLower(k))
		}
		sort.Strings(ks)
		keys = strings.Join(ks, " ")
	}
	return w.e.show(fmt.Sprintf("(userId %s, applicationId %s, TTLs for %s)", user, app, keys))
}

// eventProblems lists what is wrong with one delivered event against want.
func (w *world) eventProblems(d delivery, want wantEvent) []string {
	ev := d.event
	if ev == nil {
		return []string{"the delivery is not {\"event\": {…}}"}
	}
	var ps []string
	if v, ok := text(ev, "id"); !ok || uuid.Validate(v) != nil {
		ps = append(ps, "id missing or not a UUID")
	}
	if v, ok := text(ev, "tenantId"); !ok || uuid.Validate(v) != nil {
		ps = append(ps, "tenantId missing or not a UUID")
	}
	var instant int64
	if json.Unmarshal(ev["createInstant"], &instant) != nil || instant <= 0 {
		ps = append(ps, "createInstant missing or not epoch milliseconds")
	}
	id := func(field string, want uuid.UUID) {
		got, present := text(ev, field)
		switch {
		case want == uuid.Nil && present:
			ps = append(ps, fmt.Sprintf("%s is %s, want none", field, got))
		case want != uuid.Nil && !present:
			ps = append(ps, field+" missing")
		case want != uuid.Nil && strings.ToLower(got) != want.String():
			ps = append(ps, fmt.Sprintf("%s is %s, want %s", field, got, want))
		}
	}
	id("userId", want.user)
	id("applicationId", want.app)
	id("linkedObjectId", want.user)
	var user map[string]json.RawMessage
	switch raw, present := ev["user"]; {
	case want.user == uuid.Nil && present && string(bytes.TrimSpace(raw)) != "null":
		ps = append(ps, "user is present, want none")
	case want.user == uuid.Nil:
	case !present || json.Unmarshal(raw, &user) != nil || user == nil:
		ps = append(ps, "user missing or not an object")
	default:
		if got, _ := text(user, "id"); strings.ToLower(got) != want.user.String() {
			ps = append(ps, fmt.Sprintf("user.id is %q, want %s", got, want.user))
		}
	}
	if t := want.token; t != nil {
		raw, ok := ev["refreshToken"]
		var obj map[string]json.RawMessage
		switch {
		case !ok || string(bytes.TrimSpace(raw)) == "null":
			ps = append(ps, "refreshToken missing")
		case json.Unmarshal(raw, &obj) != nil:
			ps = append(ps, "refreshToken is not an object")
		default:
			for field, want := range map[string]uuid.UUID{"id": t.id, "userId": t.userID, "applicationId": t.appID} {
				if got, _ := text(obj, field); strings.ToLower(got) != want.String() {
					ps = append(ps, fmt.Sprintf("refreshToken.%s is %q, want %s", field, got, want))
				}
			}
		}
	}
	for _, t := range w.tokens {
		if bytes.Contains(d.body, []byte(t.value)) {
			ps = append(ps, "the event carries the value of "+t.name)
		}
	}
	ps = append(ps, ttlProblems(ev["applicationTimeToLiveInSeconds"], want.ttlApps)...)
	if want.info != nil {
		ps = append(ps, infoProblems(ev["info"], want.info)...)
	}
	sort.Strings(ps)
	return ps
}

// ttlProblems checks applicationTimeToLiveInSeconds: exactly the given
// applications, each with a positive whole number of seconds.
func ttlProblems(raw json.RawMessage, apps []uuid.UUID) []string {
	var ttl map[string]json.RawMessage
	if raw == nil || json.Unmarshal(raw, &ttl) != nil || ttl == nil {
		return []string{"applicationTimeToLiveInSeconds missing or not an object"}
	}
	var ps []string
	want := map[string]bool{}
	for _, a := range apps {
		want[a.String()] = true
	}
	got := map[string]bool{}
	for k, v := range ttl {
		k = strings.ToLower(k)
		got[k] = true
		if !want[k] {
			ps = append(ps, "applicationTimeToLiveInSeconds names "+k+", which it should not")
		}
		var n int64
		if json.Unmarshal(v, &n) != nil || n <= 0 {
			ps = append(ps, fmt.Sprintf("applicationTimeToLiveInSeconds[%s] is %s, not a positive number of seconds", k, v))
		}
	}
	for _, a := range apps {
		if !got[a.String()] {
			ps = append(ps, "applicationTimeToLiveInSeconds lacks "+a.String())
		}
	}
	return ps
}

// infoProblems checks that the event's info carries the eventInfo sent.
func infoProblems(raw json.RawMessage, sent *gen.EventInfo) []string {
	var info map[string]json.RawMessage
	if raw == nil || json.Unmarshal(raw, &info) != nil || info == nil {
		return []string{"info missing or not an object"}
	}
	var ps []string
	for field, want := range map[string]*string{"ipAddress": sent.IpAddress, "deviceName": sent.DeviceName,
		"deviceType": sent.DeviceType, "userAgent": sent.UserAgent} {
		if want == nil {
			continue
		}
		if got, _ := text(info, field); got != *want {
			ps = append(ps, fmt.Sprintf("info.%s is %q, want %q (sent in eventInfo)", field, got, *want))
		}
	}
	return ps
}
