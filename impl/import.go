package impl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	gen "refreshd/generated"
	"refreshd/impl/store"
)

// ImportRefreshTokens implements POST /api/user/refresh-token/import: all tokens
// or none. Validation that needs no database comes first, then everything the
// batch names is looked up in one transaction and the batch is inserted in one
// statement.
func (s *Server) ImportRefreshTokens(ctx context.Context, req gen.ImportRefreshTokensRequestObject) (gen.ImportRefreshTokensResponseObject, error) {
	if req.Body == nil {
		return nil, errInvalidJSON()
	}
	items := req.Body.RefreshTokens
	if len(items) == 0 {
		return nil, fieldError("refreshTokens", "[missing]refreshTokens", "Give at least one refresh token.")
	}
	now := store.NowMillis()
	errs := new(apiError)
	hashes := make([][]byte, len(items))
	seen := make(map[string]int, len(items))
	users, apps := map[uuid.UUID]bool{}, map[uuid.UUID]bool{}
	var userIDs, appIDs []uuid.UUID
	for i, it := range items {
		at := func(field string) string { return fmt.Sprintf("refreshTokens[%d].%s", i, field) }
		if it.Token == "" {
			errs.field(at("token"), "[missing]refreshTokens.token", "The token value is required.")
		} else {
			hashes[i] = hashToken(it.Token)
			if first, dup := seen[string(hashes[i])]; dup {
				errs.field(at("token"), "[duplicate]refreshTokens.token",
					fmt.Sprintf("This token value is also given at refreshTokens[%d].", first))
			} else {
				seen[string(hashes[i])] = i
			}
		}
		if it.UserId == uuid.Nil {
			errs.field(at("userId"), "[missing]refreshTokens.userId", "The userId is required.")
		} else if !users[it.UserId] {
			users[it.UserId] = true
			userIDs = append(userIDs, it.UserId)
		}
		if it.ApplicationId == uuid.Nil {
			errs.field(at("applicationId"), "[missing]refreshTokens.applicationId", "The applicationId is required.")
		} else if !apps[it.ApplicationId] {
			apps[it.ApplicationId] = true
			appIDs = append(appIDs, it.ApplicationId)
		}
		switch {
		case it.StartInstant <= 0:
			errs.field(at("startInstant"), "[missing]refreshTokens.startInstant", "The startInstant is required.")
		case it.StartInstant > now:
			errs.field(at("startInstant"), "[invalid]refreshTokens.startInstant", "The startInstant is in the future.")
		}
	}
	if err := errs.orNil(); err != nil {
		return nil, err
	}

	build := func(look store.ImportLookup) ([]store.RefreshToken, error) {
		rows := make([]store.RefreshToken, len(items))
		for i, it := range items {
			at := func(field string) string { return fmt.Sprintf("refreshTokens[%d].%s", i, field) }
			app, appOK := look.Applications[it.ApplicationId]
			userTenant, userOK := look.UserTenants[it.UserId]
			if look.UserTenants == nil { // the optimistic first pass: the foreign keys check users
				userTenant, userOK = app.TenantID, true
			}
			if !userOK {
				errs.field(at("userId"), "[invalid]refreshTokens.userId", "No user has this id.")
			}
			if !appOK {
				errs.field(at("applicationId"), "[invalid]refreshTokens.applicationId", "No application has this id.")
			}
			if userOK && appOK && userTenant != app.TenantID {
				errs.field(at("applicationId"), "[invalid]refreshTokens.applicationId",
					"The application belongs to another tenant than the user.")
			}
			if look.Taken[string(hashes[i])] {
				errs.field(at("token"), "[duplicate]refreshTokens.token", "This token value is already stored.")
			}
			if !errs.empty() {
				continue
			}
			insert := now // FusionAuth stamps an import without insertInstant with the time of import
			if it.InsertInstant != nil && *it.InsertInstant > 0 {
				insert = *it.InsertInstant
			}
			meta, err := metaDataIn(it.MetaData)
			if err != nil {
				return nil, err
			}
			rows[i] = store.RefreshToken{
				ID:            uuid.New(),
				TenantID:      app.TenantID,
				UserID:        it.UserId,
				ApplicationID: it.ApplicationId,
				TokenHash:     hashes[i],
				StartInstant:  it.StartInstant,
				InsertInstant: insert,
				ExpiresAt:     effectivePolicy(app.JWT, look.Tenants[app.TenantID].JWT).expiresAt(it.StartInstant, insert),
				MetaData:      meta,
			}
		}
		return rows, errs.orNil()
	}

	err := s.store.ImportRefreshTokens(ctx, principalFrom(ctx).scope, userIDs, appIDs, hashes, build)
	var ce *store.ConstraintError
	switch {
	case errors.As(err, &ce) && ce.Duplicate:
		// Another request stored one of these values between our check and insert.
		return nil, fieldError("refreshTokens", "[duplicate]refreshTokens.token", "A token value is already stored.")
	case errors.As(err, &ce):
		return nil, fieldError("refreshTokens", "[invalid]refreshTokens.userId",
			"A user or application was deleted while the tokens were imported.")
	case err != nil:
		return nil, err
	}
	return gen.ImportRefreshTokens200Response{}, nil
}

// metaDataIn and metaDataOut convert between the contract's metadata and the
// stored object without a float64 detour: numbers in data stay json.Number, so
// 9223372036854775807 comes back as itself.
func metaDataIn(m *gen.RefreshTokenMetaData) (store.JSONObject, error) {
	if m == nil {
		return nil, nil
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out store.JSONObject
	return out, decodeStrict(raw, &out)
}

func metaDataOut(m store.JSONObject) gen.RefreshTokenMetaData {
	var out gen.RefreshTokenMetaData
	if len(m) == 0 {
		return out
	}
	raw, err := json.Marshal(m)
	if err == nil {
		_ = decodeStrict(raw, &out) // stored from this same shape; cannot fail in practice
	}
	return out
}
