package impl

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"

	"github.com/google/uuid"

	gen "refreshd/generated"
	"refreshd/impl/store"
)

// NewKeyValue returns a fresh random API key (256 bits, URL-safe base64).
func NewKeyValue() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// CreateAPIKey implements POST /api/api-key.
func (s *Server) CreateAPIKey(ctx context.Context, req gen.CreateAPIKeyRequestObject) (gen.CreateAPIKeyResponseObject, error) {
	if !principalFrom(ctx).key.Unrestricted() {
		return gen.CreateAPIKey401Response{}, nil
	}
	k, err := s.createAPIKey(ctx, uuid.New(), req.Body)
	if err != nil {
		return nil, err
	}
	return gen.CreateAPIKey200JSONResponse{ApiKey: k}, nil
}

// CreateAPIKeyWithId implements POST /api/api-key/{keyId}.
func (s *Server) CreateAPIKeyWithId(ctx context.Context, req gen.CreateAPIKeyWithIdRequestObject) (gen.CreateAPIKeyWithIdResponseObject, error) {
	if !principalFrom(ctx).key.Unrestricted() {
		return gen.CreateAPIKeyWithId401Response{}, nil
	}
	k, err := s.createAPIKey(ctx, req.KeyId, req.Body)
	if err != nil {
		return nil, err
	}
	return gen.CreateAPIKeyWithId200JSONResponse{ApiKey: k}, nil
}

// createAPIKey stores the hash of the key and returns the value once.
func (s *Server) createAPIKey(ctx context.Context, id uuid.UUID, body *gen.APIKeyRequest) (gen.APIKey, error) {
	if body == nil {
		return gen.APIKey{}, errInvalidJSON()
	}
	in := body.ApiKey
	value := deref(in.Key)
	if value == "" {
		value = NewKeyValue()
	}
	k := store.APIKey{ID: id, KeyHash: HashKey(value), TenantID: in.TenantId, Description: deref(in.Description),
		InsertInstant: store.NowMillis()}
	if in.Permissions != nil && in.Permissions.Endpoints != nil {
		k.Permissions.Endpoints = map[string][]string{}
		for endpoint, methods := range *in.Permissions.Endpoints {
			for _, m := range methods {
				k.Permissions.Endpoints[endpoint] = append(k.Permissions.Endpoints[endpoint], string(m))
			}
		}
	}
	err := s.store.CreateAPIKey(ctx, k)
	var ce *store.ConstraintError
	switch {
	case errors.As(err, &ce) && ce.Constraint == "api_keys_key_hash_key":
		return gen.APIKey{}, fieldError("apiKey.key", "[duplicate]apiKey.key", "This key value is in use.")
	case errors.As(err, &ce) && ce.Duplicate:
		return gen.APIKey{}, fieldError("keyId", "[duplicate]keyId", "A key with this id exists.")
	case errors.As(err, &ce):
		return gen.APIKey{}, fieldError("apiKey.tenantId", "[invalid]apiKey.tenantId", "No tenant has this id.")
	case err != nil:
		return gen.APIKey{}, err
	}
	out := apiKeyOut(k)
	out.Key = &value
	return out, nil
}

// RetrieveAPIKey implements GET /api/api-key/{keyId}; the value is never returned.
func (s *Server) RetrieveAPIKey(ctx context.Context, req gen.RetrieveAPIKeyRequestObject) (gen.RetrieveAPIKeyResponseObject, error) {
	if !principalFrom(ctx).key.Unrestricted() {
		return gen.RetrieveAPIKey401Response{}, nil
	}
	k, err := s.store.APIKeyByID(ctx, req.KeyId)
	if errors.Is(err, store.ErrNotFound) {
		return gen.RetrieveAPIKey404Response{}, nil
	}
	if err != nil {
		return nil, err
	}
	return gen.RetrieveAPIKey200JSONResponse{ApiKey: apiKeyOut(k)}, nil
}

// DeleteAPIKey implements DELETE /api/api-key/{keyId}. A key cannot delete itself,
// so the last administrative key cannot be lost by accident.
func (s *Server) DeleteAPIKey(ctx context.Context, req gen.DeleteAPIKeyRequestObject) (gen.DeleteAPIKeyResponseObject, error) {
	p := principalFrom(ctx)
	if !p.key.Unrestricted() {
		return gen.DeleteAPIKey401Response{}, nil
	}
	if p.key.ID == req.KeyId {
		return nil, fieldError("keyId", "[invalid]keyId", "A key cannot delete itself.")
	}
	err := s.store.DeleteAPIKey(ctx, req.KeyId)
	s.keyCache.forget()
	if errors.Is(err, store.ErrNotFound) {
		return gen.DeleteAPIKey404Response{}, nil
	}
	if err != nil {
		return nil, err
	}
	return gen.DeleteAPIKey200Response{}, nil
}

func apiKeyOut(k store.APIKey) gen.APIKey {
	out := gen.APIKey{Id: &k.ID, TenantId: k.TenantID, Description: &k.Description, InsertInstant: &k.InsertInstant}
	if len(k.Permissions.Endpoints) > 0 {
		endpoints := map[string][]gen.APIKeyPermissionsEndpoints{}
		for endpoint, methods := range k.Permissions.Endpoints {
			for _, m := range methods {
				endpoints[endpoint] = append(endpoints[endpoint], gen.APIKeyPermissionsEndpoints(m))
			}
		}
		out.Permissions = &gen.APIKeyPermissions{Endpoints: &endpoints}
	}
	return out
}

// EnsureBootstrapKey makes sure the server can be administered. A configured key
// is stored (as its hash) unless it already is. With none configured and none
// stored, a new key is made and returned, so that the caller can show it once.
func EnsureBootstrapKey(ctx context.Context, st *store.Store, configured string) (created string, err error) {
	k := store.APIKey{ID: uuid.New(), Description: "bootstrap key", InsertInstant: store.NowMillis()}
	if configured != "" {
		k.KeyHash = HashKey(configured)
		return "", st.EnsureAPIKey(ctx, k)
	}
	n, err := st.CountAPIKeys(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	created = NewKeyValue()
	k.KeyHash = HashKey(created)
	return created, st.CreateAPIKey(ctx, k)
}
