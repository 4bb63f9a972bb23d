package impl

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/google/uuid"

	gen "refreshd/generated"
	"refreshd/impl/store"
)

// eventInfo is the info object of the event a request records: the request's
// eventInfo, with ipAddress defaulting to the caller's address.
func eventInfo(ctx context.Context, in *gen.EventInfo) ([]byte, error) {
	var info gen.EventInfo
	if in != nil {
		info = *in
	}
	if info.IpAddress == nil || *info.IpAddress == "" {
		if ip := clientIP(ctx); ip != "" {
			info.IpAddress = &ip
		}
	}
	return json.Marshal(info)
}

// hashToken is how refresh tokens are stored and looked up: the SHA-256 of the value.
func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// selection is what a revoke request names, after query and body are merged.
type selection struct {
	token                 *string
	userID, appID, except *uuid.UUID
}

// RevokeRefreshTokens implements DELETE /api/jwt/refresh in the contract's order of
// decision: malformed ids, nothing selected, unknown user or application, then the
// single-token path or one of the bulk forms.
func (s *Server) RevokeRefreshTokens(ctx context.Context, req gen.RevokeRefreshTokensRequestObject) (gen.RevokeRefreshTokensResponseObject, error) {
	sel, err := mergeSelection(req)
	if err != nil {
		return nil, err
	}
	if sel.token == nil && sel.userID == nil && sel.appID == nil && sel.except == nil {
		return nil, generalError("[invalid]", "Give a token, a userId or an applicationId to revoke refresh tokens.")
	}
	p := principalFrom(ctx)
	if p.user != nil {
		// A user's own access token revokes one of the user's own tokens, or
		// (ours) all of them but one; nothing more.
		if (sel.token == nil && sel.except == nil) || (sel.userID != nil && *sel.userID != *p.user) {
			return gen.RevokeRefreshTokens401Response{}, nil
		}
		sel.userID = p.user
	}
	if sel.except != nil && (sel.token != nil || sel.userID == nil) {
		return nil, fieldError("exceptTokenId", "[invalid]exceptTokenId",
			"exceptTokenId spares one token of a userId, and cannot go with a token.")
	}
	var bodyInfo *gen.EventInfo
	if req.JSONBody != nil {
		bodyInfo = req.JSONBody.EventInfo
	}
	info, err := eventInfo(ctx, bodyInfo)
	if err != nil {
		return nil, err
	}
	receipt := wantsReceipt(req.Params.Prefer)
	var res store.RevokeResult
	if sel.token != nil {
		res, err = s.store.RevokeByToken(ctx, p.scope, hashToken(*sel.token), sel.userID, sel.appID, info)
	} else {
		res, err = s.store.RevokeBulk(ctx, p.scope,
			store.Bulk{UserID: sel.userID, ApplicationID: sel.appID, Except: sel.except, Receipt: receipt}, info)
	}
	if err != nil {
		return nil, err
	}
	if p.user != nil && !res.UserFound {
		return gen.RevokeRefreshTokens404Response{}, nil // the token's owner is gone, and so is the token
	}
	if errs := unknownOwners(res); errs != nil {
		return nil, errs
	}
	s.metrics.revoked(sel.form(), res.Revoked, sel.token == nil || res.Revoked > 0)
	if sel.token != nil && res.Revoked == 0 {
		return gen.RevokeRefreshTokens404Response{}, nil
	}
	if receipt {
		return gen.RevokeRefreshTokens200JSONResponse(receiptOf(res)), nil
	}
	return revokedEmpty{}, nil
}

// wantsReceipt reads RFC 7240's Prefer header: return=representation asks for
// the receipt of a revocation.
func wantsReceipt(prefer *string) bool {
	if prefer == nil {
		return false
	}
	for _, p := range strings.Split(*prefer, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(name), "return") && strings.EqualFold(strings.Trim(strings.TrimSpace(value), `"`), "representation") {
			return true
		}
	}
	return false
}

// receiptOf says what a revocation revoked.
func receiptOf(res store.RevokeResult) gen.RevocationReceipt {
	ids := res.IDs
	if ids == nil {
		ids = []uuid.UUID{}
	}
	return gen.RevocationReceipt{RevokedRefreshTokenIds: ids, Count: res.Revoked, Truncated: res.Revoked > int64(len(ids))}
}

// revokedEmpty is FusionAuth's answer to a revocation: 200 with an empty body
// (the contract's 200 carries a body only for a receipt).
type revokedEmpty struct{}

// VisitRevokeRefreshTokensResponse writes the empty 200.
func (revokedEmpty) VisitRevokeRefreshTokensResponse(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusOK)
	return nil
}

// VisitRevokeRefreshTokenByIdResponse writes the empty 200.
func (revokedEmpty) VisitRevokeRefreshTokenByIdResponse(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusOK)
	return nil
}

// form names the revocation form the selection takes, for the metrics.
func (sel selection) form() string {
	switch {
	case sel.token != nil:
		return formToken
	case sel.except != nil:
		return formUserExcept
	case sel.userID != nil && sel.appID != nil:
		return formUserAndApp
	case sel.userID != nil:
		return formUser
	}
	return formApplication
}

// mergeSelection reads the query parameters, then lets each field present in the
// body (JSON or form) override its parameter. Empty values, and the query and
// form texts "null" and "undefined", are absent.
func mergeSelection(req gen.RevokeRefreshTokensRequestObject) (selection, error) {
	errs := new(apiError)
	sel := selection{
		token:  queryText(req.Params.Token),
		userID: optionalID(errs, "userId", queryText(req.Params.UserId)),
		appID:  optionalID(errs, "applicationId", queryText(req.Params.ApplicationId)),
		except: optionalID(errs, "exceptTokenId", queryText(req.Params.ExceptTokenId)),
	}
	override := func(token, userID, appID, except *string) {
		if token != nil {
			sel.token = token
		}
		if userID != nil {
			sel.userID = optionalID(errs, "userId", userID)
		}
		if appID != nil {
			sel.appID = optionalID(errs, "applicationId", appID)
		}
		if except != nil {
			sel.except = optionalID(errs, "exceptTokenId", except)
		}
	}
	if b := req.JSONBody; b != nil {
		override(bodyText(b.Token), bodyText(b.UserId), bodyText(b.ApplicationId), bodyText(b.ExceptTokenId))
	}
	if f := req.FormdataBody; f != nil {
		override(queryText(f.Token), queryText(f.UserId), queryText(f.ApplicationId), queryText(f.ExceptTokenId))
	}
	return sel, errs.orNil()
}

// queryText treats an empty value and the literal texts "null" and "undefined"
// (what JavaScript clients send for a null argument) as absent.
func queryText(v *string) *string {
	if v == nil || *v == "" || *v == "null" || *v == "undefined" {
		return nil
	}
	return v
}

func bodyText(v *string) *string {
	if v == nil || *v == "" {
		return nil
	}
	return v
}

// optionalID parses an id that may be absent; a malformed one is recorded as
// [couldNotConvert]name.
func optionalID(errs *apiError, name string, v *string) *uuid.UUID {
	if v == nil {
		return nil
	}
	id, ok := parseUUID(*v)
	if !ok {
		errs.field(name, "[couldNotConvert]"+name, "The value of ["+name+"] is not a valid UUID.")
		return nil
	}
	return &id
}

func unknownOwners(res store.RevokeResult) error {
	errs := new(apiError)
	if !res.UserFound {
		errs.field("userId", "[invalid]userId", "No user has this id.")
	}
	if !res.ApplicationFound {
		errs.field("applicationId", "[invalid]applicationId", "No application has this id.")
	}
	return errs.orNil()
}

// RevokeRefreshTokenById implements DELETE /api/jwt/refresh/{tokenId}. With a
// user's access token, only that user's tokens can be found.
func (s *Server) RevokeRefreshTokenById(ctx context.Context, req gen.RevokeRefreshTokenByIdRequestObject) (gen.RevokeRefreshTokenByIdResponseObject, error) {
	info, err := eventInfo(ctx, nil)
	if err != nil {
		return nil, err
	}
	p := principalFrom(ctx)
	err = s.store.RevokeByID(ctx, p.scope, req.TokenId, p.user, info)
	if errors.Is(err, store.ErrNotFound) {
		s.metrics.revoked(formID, 0, false)
		return gen.RevokeRefreshTokenById404Response{}, nil
	}
	if err != nil {
		return nil, err
	}
	s.metrics.revoked(formID, 1, true)
	if wantsReceipt(req.Params.Prefer) {
		return gen.RevokeRefreshTokenById200JSONResponse(receiptOf(store.RevokeResult{Revoked: 1,
			IDs: []uuid.UUID{req.TokenId}})), nil
	}
	return revokedEmpty{}, nil
}
