package impl

import (
	"context"
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"refreshd/impl/store"
)

// errInvalidAccessToken is any reason to refuse an access token as a credential.
var errInvalidAccessToken = errors.New("invalid access token")

// accessClaims are what an access token says about its holder, and all it says.
type accessClaims struct {
	userID, tenantID uuid.UUID
	all              map[string]any
}

// verifyAccessToken checks an access token this server issued, or one signed by
// a key imported into the Key Master: its header names (kid) one of our keys and
// the algorithm of that key, the signature verifies, it has not expired, its
// issuer is ours, and its tenant (tid) is the key's (any tenant for a global
// key). errInvalidAccessToken when any of that fails; other errors are the
// server's own.
func (s *Server) verifyAccessToken(ctx context.Context, raw string) (accessClaims, error) {
	var keyTenant *uuid.UUID
	var lookupErr error
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		v, err := s.keys.verifier(ctx, kid)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errInvalidAccessToken
		}
		if err != nil {
			lookupErr = err
			return nil, err
		}
		if t.Method.Alg() != v.method.Alg() { // never let the token choose how it is verified
			return nil, errInvalidAccessToken
		}
		keyTenant = v.tenantID
		return v.key, nil
	}, jwt.WithValidMethods(keyAlgorithms), jwt.WithIssuer(s.issuer), jwt.WithExpirationRequired())
	if lookupErr != nil {
		return accessClaims{}, fmt.Errorf("access token key: %w", lookupErr)
	}
	if err != nil {
		return accessClaims{}, errInvalidAccessToken
	}
	tid, _ := claims["tid"].(string)
	sub, _ := claims["sub"].(string)
	tenantID, okTenant := parseUUID(tid)
	userID, okUser := parseUUID(sub)
	if !okTenant || !okUser || (keyTenant != nil && tenantID != *keyTenant) {
		return accessClaims{}, errInvalidAccessToken
	}
	return accessClaims{userID: userID, tenantID: tenantID, all: claims}, nil
}
