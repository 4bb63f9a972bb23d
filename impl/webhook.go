package impl

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/google/uuid"

	gen "refreshd/generated"
	"refreshd/impl/store"
)

// Event types this server records.
const (
	eventRefreshTokenRevoke = "jwt.refresh-token.revoke"
	eventJWTRefresh         = "jwt.refresh"
	eventBacklogDrop        = "webhook.backlog.drop" // ours
)

// eventTypes are the types a webhook may enable.
var eventTypes = []string{eventRefreshTokenRevoke, eventJWTRefresh, eventBacklogDrop}

// CreateWebhook implements POST /api/webhook.
func (s *Server) CreateWebhook(ctx context.Context, req gen.CreateWebhookRequestObject) (gen.CreateWebhookResponseObject, error) {
	if !principalFrom(ctx).key.Unrestricted() {
		return gen.CreateWebhook401Response{}, nil
	}
	w, err := s.createWebhook(ctx, uuid.New(), req.Body)
	if err != nil {
		return nil, err
	}
	return gen.CreateWebhook200JSONResponse{Webhook: w}, nil
}

// CreateWebhookWithId implements POST /api/webhook/{webhookId}.
func (s *Server) CreateWebhookWithId(ctx context.Context, req gen.CreateWebhookWithIdRequestObject) (gen.CreateWebhookWithIdResponseObject, error) {
	if !principalFrom(ctx).key.Unrestricted() {
		return gen.CreateWebhookWithId401Response{}, nil
	}
	w, err := s.createWebhook(ctx, req.WebhookId, req.Body)
	if err != nil {
		return nil, err
	}
	return gen.CreateWebhookWithId200JSONResponse{Webhook: w}, nil
}

func (s *Server) createWebhook(ctx context.Context, id uuid.UUID, body *gen.WebhookRequest) (gen.Webhook, error) {
	if body == nil {
		return gen.Webhook{}, errInvalidJSON()
	}
	w, err := s.webhookIn(ctx, id, body.Webhook)
	if err != nil {
		return gen.Webhook{}, err
	}
	err = s.store.CreateWebhook(ctx, w)
	var ce *store.ConstraintError
	switch {
	case errors.As(err, &ce) && ce.Duplicate:
		return gen.Webhook{}, fieldError("webhookId", "[duplicate]webhookId", "A webhook with this id exists.")
	case errors.As(err, &ce): // the signing key was deleted since it was checked
		return gen.Webhook{}, errInvalidSigningKey("webhook.signatureConfiguration.signingKeyId")
	case err != nil:
		return gen.Webhook{}, err
	}
	out := webhookOut(w, nil)
	out.SigningSecret = body.Webhook.SigningSecret
	return out, nil
}

// UpdateWebhook implements PUT /api/webhook/{webhookId}.
func (s *Server) UpdateWebhook(ctx context.Context, req gen.UpdateWebhookRequestObject) (gen.UpdateWebhookResponseObject, error) {
	if !principalFrom(ctx).key.Unrestricted() {
		return gen.UpdateWebhook401Response{}, nil
	}
	if req.Body == nil {
		return nil, errInvalidJSON()
	}
	w, err := s.webhookIn(ctx, req.WebhookId, req.Body.Webhook)
	if err != nil {
		return nil, err
	}
	err = s.store.UpdateWebhook(ctx, w)
	var ce *store.ConstraintError
	switch {
	case errors.Is(err, store.ErrNotFound):
		return gen.UpdateWebhook404Response{}, nil
	case errors.As(err, &ce):
		return nil, errInvalidSigningKey("webhook.signatureConfiguration.signingKeyId")
	case err != nil:
		return nil, err
	}
	stored, err := s.store.Webhook(ctx, w.ID)
	if err != nil {
		return nil, err
	}
	return gen.UpdateWebhook200JSONResponse{Webhook: webhookOut(stored, nil)}, nil
}

// RetrieveWebhook implements GET /api/webhook/{webhookId}.
func (s *Server) RetrieveWebhook(ctx context.Context, req gen.RetrieveWebhookRequestObject) (gen.RetrieveWebhookResponseObject, error) {
	if !principalFrom(ctx).key.Unrestricted() {
		return gen.RetrieveWebhook401Response{}, nil
	}
	w, err := s.store.Webhook(ctx, req.WebhookId)
	if errors.Is(err, store.ErrNotFound) {
		return gen.RetrieveWebhook404Response{}, nil
	}
	if err != nil {
		return nil, err
	}
	backlogs, err := s.store.Backlogs(ctx, &w.ID)
	if err != nil {
		return nil, err
	}
	var b *store.Backlog
	if len(backlogs) == 1 { // else deleted meanwhile
		b = &backlogs[0]
	}
	return gen.RetrieveWebhook200JSONResponse{Webhook: webhookOut(w, b)}, nil
}

// RetrieveWebhooks implements GET /api/webhook.
func (s *Server) RetrieveWebhooks(ctx context.Context, _ gen.RetrieveWebhooksRequestObject) (gen.RetrieveWebhooksResponseObject, error) {
	if !principalFrom(ctx).key.Unrestricted() {
		return gen.RetrieveWebhooks401Response{}, nil
	}
	list, err := s.store.Webhooks(ctx)
	if err != nil {
		return nil, err
	}
	backlogs, err := s.store.Backlogs(ctx, nil)
	if err != nil {
		return nil, err
	}
	byID := map[uuid.UUID]*store.Backlog{}
	for i := range backlogs {
		byID[backlogs[i].WebhookID] = &backlogs[i]
	}
	out := gen.RetrieveWebhooks200JSONResponse{Webhooks: make([]gen.Webhook, len(list))}
	for i, w := range list {
		out.Webhooks[i] = webhookOut(w, byID[w.ID])
	}
	return out, nil
}

// DropWebhookBacklog implements DELETE /api/webhook/{webhookId}/backlog: it gives
// up delivering the webhook's oldest undelivered events, on purpose, and records so.
func (s *Server) DropWebhookBacklog(ctx context.Context, req gen.DropWebhookBacklogRequestObject) (gen.DropWebhookBacklogResponseObject, error) {
	if !principalFrom(ctx).key.Unrestricted() {
		return gen.DropWebhookBacklog401Response{}, nil
	}
	info, err := eventInfo(ctx, nil)
	if err != nil {
		return nil, err
	}
	dropped, err := s.store.DropBacklog(ctx, req.WebhookId, req.Params.Limit, info, store.NowMillis())
	if errors.Is(err, store.ErrNotFound) {
		return gen.DropWebhookBacklog404Response{}, nil
	}
	if err != nil {
		return nil, err
	}
	if dropped.Count > 0 {
		s.log.Warn("webhook backlog dropped", "webhook", req.WebhookId, "events", dropped.Count, "event", *dropped.EventID)
	}
	return gen.DropWebhookBacklog200JSONResponse{DroppedCount: dropped.Count, EventId: dropped.EventID}, nil
}

// DeleteWebhook implements DELETE /api/webhook/{webhookId}.
func (s *Server) DeleteWebhook(ctx context.Context, req gen.DeleteWebhookRequestObject) (gen.DeleteWebhookResponseObject, error) {
	if !principalFrom(ctx).key.Unrestricted() {
		return gen.DeleteWebhook401Response{}, nil
	}
	err := s.store.DeleteWebhook(ctx, req.WebhookId)
	if errors.Is(err, store.ErrNotFound) {
		return gen.DeleteWebhook404Response{}, nil
	}
	if err != nil {
		return nil, err
	}
	return gen.DeleteWebhook200Response{}, nil
}

// webhookIn checks a webhook's settings: an absolute http(s) URL, known event
// types, bounded timeouts, tenants when it is not global, a signing key that can
// sign for every tenant the webhook covers, and a Basic-auth username.
func (s *Server) webhookIn(ctx context.Context, id uuid.UUID, in gen.Webhook) (store.Webhook, error) {
	errs := new(apiError)
	u, err := url.Parse(in.Url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		errs.field("webhook.url", "[invalid]webhook.url", "The URL must be an absolute http or https URL without credentials.")
	}
	w := store.Webhook{ID: id, URL: in.Url, Description: deref(in.Description), Global: deref(in.Global),
		ConnectTimeoutMs: 1000, ReadTimeoutMs: 2000, EventsEnabled: []string{}, TenantIDs: store.UUIDArray{},
		Headers: store.Headers{}}
	if in.EventsEnabled != nil {
		for typ, on := range *in.EventsEnabled {
			if !slices.Contains(eventTypes, typ) {
				errs.field("webhook.eventsEnabled", "[invalid]webhook.eventsEnabled", "Unknown event type "+strconv.Quote(typ)+".")
				continue
			}
			if on {
				w.EventsEnabled = append(w.EventsEnabled, typ)
			}
		}
		sort.Strings(w.EventsEnabled)
	}
	if in.TenantIds != nil {
		w.TenantIDs = *in.TenantIds
	}
	if v := deref(in.ConnectTimeout); v != 0 {
		w.ConnectTimeoutMs = v
	}
	if v := deref(in.ReadTimeout); v != 0 {
		w.ReadTimeoutMs = v
	}
	if w.ConnectTimeoutMs < 1 || w.ConnectTimeoutMs > 10_000 {
		errs.field("webhook.connectTimeout", "[invalid]webhook.connectTimeout", "Between 1 and 10,000 milliseconds.")
	}
	if w.ReadTimeoutMs < 1 || w.ReadTimeoutMs > 60_000 {
		errs.field("webhook.readTimeout", "[invalid]webhook.readTimeout", "Between 1 and 60,000 milliseconds.")
	}
	if in.Headers != nil {
		w.Headers = *in.Headers
		for name, value := range w.Headers {
			if !validHeader(name, value) {
				errs.field("webhook.headers", "[invalid]webhook.headers",
					"A header name must be an HTTP token and a value must hold no control characters.")
				break
			}
		}
	}
	if v := deref(in.SigningSecret); v != "" {
		w.SigningSecret = []byte(v)
	}
	if user := deref(in.HttpAuthenticationUsername); user != "" {
		if strings.Contains(user, ":") {
			errs.field("webhook.httpAuthenticationUsername", "[invalid]webhook.httpAuthenticationUsername",
				"HTTP Basic authentication cannot carry a username with a colon.")
		}
		w.HTTPAuthUsername = &user
	}
	w.HTTPAuthPassword = in.HttpAuthenticationPassword
	if sc := in.SignatureConfiguration; sc != nil && deref(sc.Enabled) {
		const field = "webhook.signatureConfiguration.signingKeyId"
		keyID, ok := parseUUID(string(deref(sc.SigningKeyId)))
		if !ok {
			errs.field(field, "[missing]"+field, "A signed webhook needs the id of the key that signs it.")
		} else {
			// A key of one tenant signs only what stays in that tenant.
			var only *uuid.UUID
			if !w.Global && len(w.TenantIDs) == 1 {
				only = &w.TenantIDs[0]
			}
			can, err := s.checkSigningKey(ctx, keyID, only)
			if err != nil {
				return w, err
			}
			if !can {
				errs.field(field, "[invalid]"+field, "No key with this id can sign this webhook: it does not exist, is a public key only, or belongs to a tenant the webhook does not stay within.")
			}
			w.SigningKeyID = &keyID
		}
	}
	now := store.NowMillis()
	w.InsertInstant, w.LastUpdateInstant = now, now
	return w, errs.orNil()
}

// validHeader reports whether a header can be sent at all (RFC 9110): a delivery
// with one that cannot would fail on every retry, forever.
func validHeader(name, value string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// webhookOut shows a webhook without its secrets, with its backlog when given.
func webhookOut(w store.Webhook, b *store.Backlog) gen.Webhook {
	enabled := map[string]bool{}
	for _, typ := range eventTypes {
		enabled[typ] = false
	}
	for _, typ := range w.EventsEnabled {
		enabled[typ] = true
	}
	tenants := []uuid.UUID(w.TenantIDs)
	if tenants == nil {
		tenants = []uuid.UUID{}
	}
	headers := map[string]string(w.Headers)
	signed := w.SigningKeyID != nil
	sc := &gen.WebhookSignatureConfiguration{Enabled: &signed}
	if signed {
		id := gen.OptionalBodyId(w.SigningKeyID.String())
		sc.SigningKeyId = &id
	}
	out := gen.Webhook{
		Id: &w.ID, Url: w.URL, Description: &w.Description, EventsEnabled: &enabled, Global: &w.Global,
		TenantIds: &tenants, ConnectTimeout: &w.ConnectTimeoutMs, ReadTimeout: &w.ReadTimeoutMs, Headers: &headers,
		SignatureConfiguration: sc, HttpAuthenticationUsername: w.HTTPAuthUsername,
		InsertInstant: &w.InsertInstant, LastUpdateInstant: &w.LastUpdateInstant,
	}
	if b != nil {
		out.DeliveryStatus = &gen.WebhookDeliveryStatus{PendingCount: b.Pending, OldestPendingInstant: b.OldestPendingInstant,
			NextAttemptInstant: b.NextAttemptAt, LastError: b.LastError}
		if b.HeadAttempts != nil && *b.HeadAttempts > 0 {
			out.DeliveryStatus.FailedAttempts = b.HeadAttempts
		}
	}
	return out
}

// SearchEvents implements GET /api/event: recorded events within the caller's
// tenant scope, oldest first, a page at a time.
func (s *Server) SearchEvents(ctx context.Context, req gen.SearchEventsRequestObject) (gen.SearchEventsResponseObject, error) {
	p := req.Params
	f := store.EventFilter{UserID: p.UserId, ApplicationID: p.ApplicationId, Start: p.Start, End: p.End, Limit: 100}
	if p.Type != nil {
		t := string(*p.Type)
		f.Type = &t
	}
	if p.Limit != nil {
		f.Limit = int(*p.Limit)
	}
	if c := deref(p.Cursor); c != "" {
		seq, err := strconv.ParseInt(c, 10, 64)
		if err != nil {
			return nil, fieldError("cursor", "[couldNotConvert]cursor", "The cursor is not one this server gave out.")
		}
		f.AfterSeq = seq
	}
	rows, err := s.store.Events(ctx, principalFrom(ctx).scope, f)
	if err != nil {
		return nil, err
	}
	// Each event is listed exactly as it is stored and delivered: never decoded
	// and encoded again, so whatever could be stored can be listed.
	out := gen.SearchEvents200JSONResponse{Events: make([]gen.Event, len(rows))}
	for i, r := range rows {
		out.Events[i] = r.Body
	}
	if len(rows) == f.Limit {
		next := strconv.FormatInt(rows[len(rows)-1].Seq, 10)
		out.NextCursor = &next
	}
	return out, nil
}
