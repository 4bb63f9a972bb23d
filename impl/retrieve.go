package impl

import (
	"context"
	"errors"

	gen "refreshd/generated"
	"refreshd/impl/store"
)

// maxListedTokens bounds GET /api/jwt/refresh?userId=.
const maxListedTokens = 1000

// RetrieveRefreshTokens implements GET /api/jwt/refresh?userId=: the user's live
// tokens, newest first.
func (s *Server) RetrieveRefreshTokens(ctx context.Context, req gen.RetrieveRefreshTokensRequestObject) (gen.RetrieveRefreshTokensResponseObject, error) {
	errs := new(apiError)
	userID := optionalID(errs, "userId", queryText(req.Params.UserId))
	if err := errs.orNil(); err != nil {
		return nil, err
	}
	if userID == nil {
		return nil, fieldError("userId", "[missing]userId", "The parameter [userId] is required.")
	}
	tokens, err := s.store.RefreshTokensByUser(ctx, principalFrom(ctx).scope, *userID, maxListedTokens)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fieldError("userId", "[invalid]userId", "No user has this id.")
	}
	if err != nil {
		return nil, err
	}
	out := gen.RetrieveRefreshTokens200JSONResponse{RefreshTokens: make([]gen.RefreshToken, len(tokens))}
	for i, t := range tokens {
		out.RefreshTokens[i] = refreshTokenOut(t)
	}
	return out, nil
}

// RetrieveRefreshTokenById implements GET /api/jwt/refresh/{tokenId}.
func (s *Server) RetrieveRefreshTokenById(ctx context.Context, req gen.RetrieveRefreshTokenByIdRequestObject) (gen.RetrieveRefreshTokenByIdResponseObject, error) {
	t, err := s.store.RefreshToken(ctx, principalFrom(ctx).scope, req.TokenId)
	if errors.Is(err, store.ErrNotFound) {
		return gen.RetrieveRefreshTokenById404Response{}, nil
	}
	if err != nil {
		return nil, err
	}
	return gen.RetrieveRefreshTokenById200JSONResponse{RefreshToken: refreshTokenOut(t)}, nil
}

// refreshTokenOut renders a stored token. The value is never returned: only its
// hash is known.
func refreshTokenOut(t store.RefreshToken) gen.RefreshToken {
	return gen.RefreshToken{
		Id:            t.ID,
		ApplicationId: t.ApplicationID,
		UserId:        t.UserID,
		TenantId:      t.TenantID,
		InsertInstant: t.InsertInstant,
		StartInstant:  t.StartInstant,
		MetaData:      metaDataOut(t.MetaData),
	}
}
