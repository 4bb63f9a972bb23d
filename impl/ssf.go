package impl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	gen "refreshd/generated"
	"refreshd/impl/store"
)

// This server as an OpenID Shared Signals Framework 1.0 transmitter: every
// revocation becomes a CAEP session-revoked Security Event Token (RFC 8417)
// pushed (RFC 8935) to the streams of its tenant. Streams are webhooks of their
// own kind, so the outbox delivers them with the same guarantees.
const (
	ssfSpecVersion         = "1_0"
	ssfPushMethod          = "urn:ietf:rfc:8935"
	caepSessionRevoked     = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	ssfVerificationEvent   = "https://schemas.openid.net/secevent/ssf/event-type/verification"
	ssfStreamsPath         = "/ssf/streams"
	ssfVerifyPath          = "/ssf/verify"
	setContentType         = "application/secevent+jwt"
	ssfDefaultSigningAlg   = "RS256"
	ssfMaxAudiences        = 16
	ssfAuthorizationHeader = "Authorization"
)

// GetSSFConfiguration implements GET /.well-known/ssf-configuration.
func (s *Server) GetSSFConfiguration(ctx context.Context, _ gen.GetSSFConfigurationRequestObject) (gen.GetSSFConfigurationResponseObject, error) {
	base := s.publicBase(requestFrom(ctx))
	verify := base + ssfVerifyPath
	subjects := "ALL"
	return gen.GetSSFConfiguration200JSONResponse{
		SpecVersion:              ssfSpecVersion,
		Issuer:                   s.issuer,
		JwksUri:                  base + jwksPath,
		DeliveryMethodsSupported: []string{ssfPushMethod},
		ConfigurationEndpoint:    base + ssfStreamsPath,
		VerificationEndpoint:     &verify,
		DefaultSubjects:          &subjects,
	}, nil
}

// CreateSSFStream implements POST /ssf/streams.
func (s *Server) CreateSSFStream(ctx context.Context, req gen.CreateSSFStreamRequestObject) (gen.CreateSSFStreamResponseObject, error) {
	if req.Body == nil {
		return nil, errInvalidJSON()
	}
	tenant, err := s.targetTenant(ctx, nil, "tenantId")
	if err != nil {
		return nil, err
	}
	now := store.NowMillis()
	w := store.Webhook{ID: uuid.New(), Kind: store.KindStream, TenantIDs: store.UUIDArray{tenant},
		ConnectTimeoutMs: 1000, ReadTimeoutMs: 5000, InsertInstant: now, LastUpdateInstant: now}
	if err := s.streamIn(ctx, &w, *req.Body, true); err != nil {
		return nil, err
	}
	if err := s.store.CreateStream(ctx, w); err != nil {
		return nil, err
	}
	return gen.CreateSSFStream201JSONResponse(s.streamOut(w)), nil
}

// ReadSSFStreams implements GET /ssf/streams: one stream, or the tenant's list.
func (s *Server) ReadSSFStreams(ctx context.Context, req gen.ReadSSFStreamsRequestObject) (gen.ReadSSFStreamsResponseObject, error) {
	list, err := s.store.Streams(ctx, principalFrom(ctx).scope, req.Params.StreamId)
	if err != nil {
		return nil, err
	}
	var out gen.ReadSSFStreams200JSONResponse
	if req.Params.StreamId != nil {
		if len(list) == 0 {
			return gen.ReadSSFStreams404Response{}, nil
		}
		err = out.FromSSFStream(s.streamOut(list[0]))
	} else {
		all := make([]gen.SSFStream, len(list))
		for i, w := range list {
			all[i] = s.streamOut(w)
		}
		err = out.FromReadSSFStreams200JSONResponseBody1(all)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateSSFStream implements PATCH /ssf/streams: the fields given replace the
// stream's.
func (s *Server) UpdateSSFStream(ctx context.Context, req gen.UpdateSSFStreamRequestObject) (gen.UpdateSSFStreamResponseObject, error) {
	w, found, err := s.changeStream(ctx, req.Body, false)
	if err != nil || !found {
		if err == nil {
			return gen.UpdateSSFStream404Response{}, nil
		}
		return nil, err
	}
	return gen.UpdateSSFStream200JSONResponse(s.streamOut(w)), nil
}

// ReplaceSSFStream implements PUT /ssf/streams: every setting is the body's.
func (s *Server) ReplaceSSFStream(ctx context.Context, req gen.ReplaceSSFStreamRequestObject) (gen.ReplaceSSFStreamResponseObject, error) {
	w, found, err := s.changeStream(ctx, req.Body, true)
	if err != nil || !found {
		if err == nil {
			return gen.ReplaceSSFStream404Response{}, nil
		}
		return nil, err
	}
	return gen.ReplaceSSFStream200JSONResponse(s.streamOut(w)), nil
}

// changeStream applies a PATCH (replace false) or PUT (replace true) body to the
// stream it names; found is false when the tenant has no such stream.
func (s *Server) changeStream(ctx context.Context, body *gen.SSFStream, replace bool) (store.Webhook, bool, error) {
	if body == nil {
		return store.Webhook{}, false, errInvalidJSON()
	}
	if body.StreamId == nil {
		return store.Webhook{}, false, fieldError("stream_id", "[missing]stream_id", "Name the stream to change.")
	}
	list, err := s.store.Streams(ctx, principalFrom(ctx).scope, body.StreamId)
	if err != nil || len(list) == 0 {
		return store.Webhook{}, false, err
	}
	w := list[0]
	if replace {
		w.URL, w.Description, w.Headers, w.SigningKeyID = "", "", store.Headers{}, nil
		w.SSFAudience, w.SSFEventsRequested, w.EventsEnabled = nil, nil, nil
	}
	if err := s.streamIn(ctx, &w, *body, replace); err != nil {
		return w, true, err
	}
	w.LastUpdateInstant = store.NowMillis()
	err = s.store.UpdateStream(ctx, w)
	if errors.Is(err, store.ErrNotFound) {
		return w, false, nil
	}
	return w, err == nil, err
}

// DeleteSSFStream implements DELETE /ssf/streams.
func (s *Server) DeleteSSFStream(ctx context.Context, req gen.DeleteSSFStreamRequestObject) (gen.DeleteSSFStreamResponseObject, error) {
	err := s.store.DeleteStream(ctx, principalFrom(ctx).scope, req.Params.StreamId)
	if errors.Is(err, store.ErrNotFound) {
		return gen.DeleteSSFStream404Response{}, nil
	}
	if err != nil {
		return nil, err
	}
	return gen.DeleteSSFStream204Response{}, nil
}

// VerifySSFStream implements POST /ssf/verify.
func (s *Server) VerifySSFStream(ctx context.Context, req gen.VerifySSFStreamRequestObject) (gen.VerifySSFStreamResponseObject, error) {
	if req.Body == nil {
		return nil, errInvalidJSON()
	}
	err := s.store.RecordVerification(ctx, principalFrom(ctx).scope, req.Body.StreamId, req.Body.State, store.NowMillis())
	if errors.Is(err, store.ErrNotFound) {
		return gen.VerifySSFStream404Response{}, nil
	}
	if err != nil {
		return nil, err
	}
	return gen.VerifySSFStream204Response{}, nil
}

// streamIn checks a stream configuration and sets what it gives on w; with all,
// a push endpoint is required.
func (s *Server) streamIn(ctx context.Context, w *store.Webhook, in gen.SSFStream, all bool) error {
	errs := new(apiError)
	if d := in.Delivery; d != nil {
		if d.Method != ssfPushMethod {
			errs.field("delivery.method", "[invalid]delivery.method", "The only delivery method is push ("+ssfPushMethod+").")
		}
		u, err := url.Parse(deref(d.EndpointUrl))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			errs.field("delivery.endpoint_url", "[invalid]delivery.endpoint_url",
				"The endpoint must be an absolute http or https URL without credentials.")
		}
		w.URL = deref(d.EndpointUrl)
		w.Headers = store.Headers{}
		if h := deref(d.AuthorizationHeader); h != "" {
			if !validHeaderValue(h) {
				errs.field("delivery.authorization_header", "[invalid]delivery.authorization_header",
					"The header value has characters a header cannot carry.")
			}
			w.Headers[ssfAuthorizationHeader] = h
		}
	} else if all {
		errs.field("delivery", "[missing]delivery", "Give the push endpoint.")
	}
	if in.Description != nil {
		w.Description = *in.Description
	}
	if in.EventsRequested != nil {
		w.SSFEventsRequested = append([]string(nil), *in.EventsRequested...)
	}
	w.EventsEnabled = nil
	if slices.Contains([]string(w.SSFEventsRequested), caepSessionRevoked) {
		w.EventsEnabled = []string{eventRefreshTokenRevoke}
	}
	if in.Aud != nil {
		aud, err := audiences(*in.Aud)
		if err != nil {
			errs.field("aud", "[invalid]aud", "The audience is a string or a list of at most 16 strings.")
		}
		w.SSFAudience = aud
	}
	if in.SigningKeyId != nil {
		k, err := s.store.Key(ctx, store.Scope{}, *in.SigningKeyId)
		switch {
		case errors.Is(err, store.ErrNotFound), err == nil && (k.TenantID != nil && *k.TenantID != w.TenantIDs[0]):
			errs.field("signing_key_id", "[invalid]signing_key_id", "No key with this id can sign for this tenant.")
		case err != nil:
			return err
		case k.Type == "HMAC" || k.Secret == nil:
			errs.field("signing_key_id", "[invalid]signing_key_id",
				"Security Event Tokens are signed with an RSA or EC key whose private half is known.")
		}
		w.SigningKeyID = in.SigningKeyId
	}
	if w.SSFAudience == nil {
		w.SSFAudience = []string{}
	}
	if w.SSFEventsRequested == nil {
		w.SSFEventsRequested = []string{}
	}
	if w.EventsEnabled == nil {
		w.EventsEnabled = []string{}
	}
	return errs.orNil()
}

// audiences reads aud: a string or a list of strings.
func audiences(aud gen.SSFStream_Aud) ([]string, error) {
	if one, err := aud.AsSSFStreamAud0(); err == nil {
		return []string{one}, nil
	}
	list, err := aud.AsSSFStreamAud1()
	if err != nil || len(list) > ssfMaxAudiences {
		return nil, fmt.Errorf("aud: %v", err)
	}
	return list, nil
}

// validHeaderValue reports whether v can be sent as a header value.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// streamOut renders a stream; the authorization header is never returned.
func (s *Server) streamOut(w store.Webhook) gen.SSFStream {
	id := w.ID
	iss := s.issuer
	endpoint := w.URL
	requested := append([]string{}, w.SSFEventsRequested...)
	supported := []string{caepSessionRevoked}
	delivered := []string{}
	if slices.Contains(requested, caepSessionRevoked) {
		delivered = append(delivered, caepSessionRevoked)
	}
	var aud gen.SSFStream_Aud
	_ = aud.FromSSFStreamAud1(streamAudience(w))
	out := gen.SSFStream{StreamId: &id, Iss: &iss, Aud: &aud, EventsSupported: &supported, EventsRequested: &requested,
		EventsDelivered: &delivered, Delivery: &gen.SSFDelivery{Method: ssfPushMethod, EndpointUrl: &endpoint},
		SigningKeyId: w.SigningKeyID}
	if w.Description != "" {
		out.Description = &w.Description
	}
	return out
}

// streamAudience is the aud of a stream's tokens: as configured, else its endpoint.
func streamAudience(w store.Webhook) []string {
	if len(w.SSFAudience) > 0 {
		return w.SSFAudience
	}
	return []string{w.URL}
}

// securityEventToken builds the SET that an event becomes on a stream: a CAEP
// session-revoked for a revocation (the subject names the session and user, or
// the user, or the application the revocation named), a verification for a
// verification event.
func securityEventToken(issuer string, w store.Webhook, eventID uuid.UUID, body []byte) (jwt.MapClaims, error) {
	var ev struct {
		Type          string               `json:"type"`
		CreateInstant int64                `json:"createInstant"`
		TenantID      string               `json:"tenantId"`
		UserID        *string              `json:"userId"`
		ApplicationID *string              `json:"applicationId"`
		State         *string              `json:"state"`
		RefreshToken  *struct{ ID string } `json:"refreshToken"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&ev); err != nil {
		return nil, fmt.Errorf("event %s: %w", eventID, err)
	}
	opaque := func(id string) map[string]any { return map[string]any{"format": "opaque", "id": id} }
	claims := jwt.MapClaims{"iss": issuer, "jti": eventID.String(), "iat": ev.CreateInstant / 1000,
		"aud": streamAudience(w), "txn": eventID.String()}
	switch ev.Type {
	case store.EventSSFVerification:
		event := map[string]any{}
		if ev.State != nil {
			event["state"] = *ev.State
		}
		claims["sub_id"] = opaque(w.ID.String())
		claims["events"] = map[string]any{ssfVerificationEvent: event}
	case eventRefreshTokenRevoke:
		subject := map[string]any{"format": "complex", "tenant": opaque(ev.TenantID)}
		if ev.RefreshToken != nil {
			subject["session"] = opaque(ev.RefreshToken.ID)
		}
		if ev.UserID != nil {
			subject["user"] = opaque(*ev.UserID)
		}
		if ev.ApplicationID != nil {
			subject["application"] = opaque(*ev.ApplicationID)
		}
		claims["sub_id"] = subject
		claims["events"] = map[string]any{caepSessionRevoked: map[string]any{"event_timestamp": ev.CreateInstant / 1000}}
	default:
		return nil, fmt.Errorf("event %s: a %s event has no Security Event Token", eventID, ev.Type)
	}
	return claims, nil
}

// sendSET pushes an event to a stream as a signed Security Event Token
// (RFC 8935): any 2xx (202 Accepted, as the RFC asks) is delivered.
func (d *dispatcher) sendSET(ctx context.Context, w store.Webhook, p store.Delivery) error {
	claims, err := securityEventToken(d.issuer, w, p.EventID, p.Body)
	if err != nil {
		return err
	}
	var key *signingKey
	if w.SigningKeyID != nil {
		key, err = d.keys.masterKey(ctx, *w.SigningKeyID)
	} else if len(w.TenantIDs) == 1 {
		key, err = d.keys.get(ctx, w.TenantIDs[0], ssfDefaultSigningAlg)
	} else {
		err = errors.New("a stream without a tenant")
	}
	if err != nil {
		return fmt.Errorf("stream %s: signing key: %w", w.ID, err)
	}
	tok := jwt.NewWithClaims(key.method, claims)
	tok.Header["kid"] = key.kid
	tok.Header["typ"] = "secevent+jwt"
	set, err := tok.SignedString(key.key)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader([]byte(set)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", setContentType)
	req.Header.Set("Accept", "application/json")
	if auth := w.Headers[ssfAuthorizationHeader]; auth != "" {
		req.Header.Set(ssfAuthorizationHeader, auth)
	}
	return d.post(w, req)
}
