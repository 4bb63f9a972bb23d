package impl

import (
	"context"
	"errors"
	"strings"

	"github.com/google/uuid"

	gen "refreshd/generated"
	"refreshd/impl/store"
)

// CreateTenant implements POST /api/tenant.
func (s *Server) CreateTenant(ctx context.Context, req gen.CreateTenantRequestObject) (gen.CreateTenantResponseObject, error) {
	if !principalFrom(ctx).key.Unrestricted() {
		return gen.CreateTenant401Response{}, nil
	}
	t, err := s.createTenant(ctx, uuid.New(), req.Body)
	if err != nil {
		return nil, err
	}
	return gen.CreateTenant200JSONResponse{Tenant: t}, nil
}

// CreateTenantWithId implements POST /api/tenant/{tenantId}.
func (s *Server) CreateTenantWithId(ctx context.Context, req gen.CreateTenantWithIdRequestObject) (gen.CreateTenantWithIdResponseObject, error) {
	if !principalFrom(ctx).key.Unrestricted() {
		return gen.CreateTenantWithId401Response{}, nil
	}
	t, err := s.createTenant(ctx, req.TenantId, req.Body)
	if err != nil {
		return nil, err
	}
	return gen.CreateTenantWithId200JSONResponse{Tenant: t}, nil
}

func (s *Server) createTenant(ctx context.Context, id uuid.UUID, body *gen.TenantRequest) (gen.Tenant, error) {
	if body == nil {
		return gen.Tenant{}, errInvalidJSON()
	}
	errs := new(apiError)
	name := ""
	if body.Tenant.Name != nil {
		name = strings.TrimSpace(*body.Tenant.Name)
	}
	if name == "" {
		errs.field("tenant.name", "[missing]tenant.name", "The tenant needs a name.")
	}
	jwt := jwtConfigIn(errs, "tenant.jwtConfiguration", body.Tenant.JwtConfiguration)
	jwt.Enabled = true // a tenant's configuration is always in force
	if err := errs.orNil(); err != nil {
		return gen.Tenant{}, err
	}
	if err := s.checkAccessTokenKey(ctx, "tenant.jwtConfiguration.accessTokenKeyId", jwt, nil); err != nil {
		return gen.Tenant{}, err
	}
	t := store.Tenant{ID: id, Name: name, JWT: jwt, InsertInstant: store.NowMillis()}
	err := s.store.CreateTenant(ctx, t)
	var ce *store.ConstraintError
	switch {
	case errors.As(err, &ce) && ce.Constraint == "tenants_name_key":
		return gen.Tenant{}, fieldError("tenant.name", "[duplicate]tenant.name", "A tenant with this name exists.")
	case errors.As(err, &ce):
		return gen.Tenant{}, fieldError("tenantId", "[duplicate]tenantId", "A tenant with this id exists.")
	case err != nil:
		return gen.Tenant{}, err
	}
	for _, alg := range signingAlgorithms { // the tenant's keys exist from its first moment
		if _, err := s.keys.get(ctx, t.ID, alg); err != nil {
			return gen.Tenant{}, err
		}
	}
	return tenantOut(t), nil
}

// RetrieveTenant implements GET /api/tenant/{tenantId}; a tenant-scoped caller
// sees only its own tenant.
func (s *Server) RetrieveTenant(ctx context.Context, req gen.RetrieveTenantRequestObject) (gen.RetrieveTenantResponseObject, error) {
	scope := principalFrom(ctx).scope
	if scope.TenantID != nil && *scope.TenantID != req.TenantId {
		return gen.RetrieveTenant404Response{}, nil
	}
	t, err := s.store.Tenant(ctx, req.TenantId)
	if errors.Is(err, store.ErrNotFound) {
		return gen.RetrieveTenant404Response{}, nil
	}
	if err != nil {
		return nil, err
	}
	return gen.RetrieveTenant200JSONResponse{Tenant: tenantOut(t)}, nil
}

// DeleteTenant implements DELETE /api/tenant/{tenantId}: the tenant and
// everything in it, for a key that is not locked to a tenant.
func (s *Server) DeleteTenant(ctx context.Context, req gen.DeleteTenantRequestObject) (gen.DeleteTenantResponseObject, error) {
	if !principalFrom(ctx).key.Unrestricted() {
		return gen.DeleteTenant401Response{}, nil
	}
	err := s.store.DeleteTenant(ctx, req.TenantId)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return gen.DeleteTenant404Response{}, nil
	case errors.Is(err, store.ErrDefaultTenant):
		return nil, generalError("[invalid]tenantId", "The default tenant cannot be deleted.")
	case err != nil:
		return nil, err
	}
	s.keys.forgetTenant(req.TenantId)
	s.keyCache.forget()
	return gen.DeleteTenant200Response{}, nil
}

func tenantOut(t store.Tenant) gen.Tenant {
	return gen.Tenant{Id: &t.ID, Name: &t.Name, JwtConfiguration: jwtConfigOut(t.JWT), InsertInstant: &t.InsertInstant}
}
