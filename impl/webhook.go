package impl

import (
	"context"
	"errors"
	"net/url"
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
)

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
	w, err := webhookIn(id, body.Webhook)
	if err != nil {
		return gen.Webhook{}, err
	}
	secret := deref(body.Webhook.SigningSecret)
	if secret == "" {
		secret = NewKeyValue()
	}
	w.SigningSecret = []byte(secret)
	err = s.store.CreateWebhook(ctx, w)
	var ce *store.ConstraintError
	if errors.As(err, &ce) {
		return gen.Webhook{}, fieldError("webhookId", "[duplicate]webhookId", "A webhook with this id exists.")
	}
	if err != nil {
		return gen.Webhook{}, err
	}
	out := webhookOut(w)
	out.SigningSecret = &secret
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
	w, err := webhookIn(req.WebhookId, req.Body.Webhook)
	if err != nil {
		return nil, err
	}
	if v := deref(req.Body.Webhook.SigningSecret); v != "" {
		w.SigningSecret = []byte(v)
	}
	err = s.store.UpdateWebhook(ctx, w)
	if errors.Is(err, store.ErrNotFound) {
		return gen.UpdateWebhook404Response{}, nil
	}
	if err != nil {
		return nil, err
	}
	stored, err := s.store.Webhook(ctx, w.ID)
	if err != nil {
		return nil, err
	}
	return gen.UpdateWebhook200JSONResponse{Webhook: webhookOut(stored)}, nil
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
	return gen.RetrieveWebhook200JSONResponse{Webhook: webhookOut(w)}, nil
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
	out := gen.RetrieveWebhooks200JSONResponse{Webhooks: make([]gen.Webhook, len(list))}
	for i, w := range list {
		out.Webhooks[i] = webhookOut(w)
	}
	return out, nil
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
// types, bounded timeouts, and tenants when it is not global.
func webhookIn(id uuid.UUID, in gen.Webhook) (store.Webhook, error) {
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
			if typ != eventRefreshTokenRevoke && typ != eventJWTRefresh {
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

func webhookOut(w store.Webhook) gen.Webhook {
	enabled := map[string]bool{eventRefreshTokenRevoke: false, eventJWTRefresh: false}
	for _, typ := range w.EventsEnabled {
		enabled[typ] = true
	}
	tenants := []uuid.UUID(w.TenantIDs)
	if tenants == nil {
		tenants = []uuid.UUID{}
	}
	headers := map[string]string(w.Headers)
	return gen.Webhook{
		Id: &w.ID, Url: w.URL, Description: &w.Description, EventsEnabled: &enabled, Global: &w.Global,
		TenantIds: &tenants, ConnectTimeout: &w.ConnectTimeoutMs, ReadTimeout: &w.ReadTimeoutMs, Headers: &headers,
		InsertInstant: &w.InsertInstant, LastUpdateInstant: &w.LastUpdateInstant,
	}
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
