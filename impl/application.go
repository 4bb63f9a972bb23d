package impl

import (
	"context"
	"errors"
	"strings"

	"github.com/google/uuid"

	gen "refreshd/generated"
	"refreshd/impl/store"
)

// CreateApplication implements POST /api/application.
func (s *Server) CreateApplication(ctx context.Context, req gen.CreateApplicationRequestObject) (gen.CreateApplicationResponseObject, error) {
	app, err := s.createApplication(ctx, uuid.New(), req.Body)
	if err != nil {
		return nil, err
	}
	return gen.CreateApplication200JSONResponse{Application: app}, nil
}

// CreateApplicationWithId implements POST /api/application/{applicationId}.
func (s *Server) CreateApplicationWithId(ctx context.Context, req gen.CreateApplicationWithIdRequestObject) (gen.CreateApplicationWithIdResponseObject, error) {
	app, err := s.createApplication(ctx, req.ApplicationId, req.Body)
	if err != nil {
		return nil, err
	}
	return gen.CreateApplicationWithId200JSONResponse{Application: app}, nil
}

func (s *Server) createApplication(ctx context.Context, id uuid.UUID, body *gen.ApplicationRequest) (gen.Application, error) {
	if body == nil {
		return gen.Application{}, errInvalidJSON()
	}
	in := body.Application
	errs := new(apiError)
	name := strings.TrimSpace(in.Name)
	if name == "" {
		errs.field("application.name", "[missing]application.name", "The application needs a name.")
	}
	jwt := jwtConfigIn(errs, "application.jwtConfiguration", in.JwtConfiguration)
	if err := errs.orNil(); err != nil {
		return gen.Application{}, err
	}
	tenantID, err := s.targetTenant(ctx, in.TenantId, "application.tenantId")
	if err != nil {
		return gen.Application{}, err
	}
	if err := s.checkAccessTokenKey(ctx, "application.jwtConfiguration.accessTokenKeyId", jwt, &tenantID); err != nil {
		return gen.Application{}, err
	}
	now := store.NowMillis()
	app := store.Application{ID: id, TenantID: tenantID, Name: name, Active: true, JWT: jwt,
		InsertInstant: now, LastUpdateInstant: now, ClientID: clientIDFor(id), ClientAuthenticationPolicy: clientAuthRequired}
	secret := NewKeyValue()
	if o := in.OauthConfiguration; o != nil {
		if v := trimmed(o.ClientId); v != nil {
			app.ClientID = *v
		}
		if v := deref(o.ClientSecret); v != "" {
			secret = v
		}
		if o.ClientAuthenticationPolicy != nil {
			app.ClientAuthenticationPolicy = string(*o.ClientAuthenticationPolicy)
		}
	}
	app.ClientSecretHash = hashClientSecret(secret)
	err = s.store.CreateApplication(ctx, app)
	var ce *store.ConstraintError
	switch {
	case errors.As(err, &ce) && ce.Constraint == "applications_client_id_key":
		return gen.Application{}, fieldError("application.oauthConfiguration.clientId",
			"[duplicate]application.oauthConfiguration.clientId", "Another application has this client id.")
	case errors.As(err, &ce) && ce.Duplicate:
		return gen.Application{}, fieldError("applicationId", "[duplicate]applicationId", "An application with this id exists.")
	case errors.As(err, &ce):
		return gen.Application{}, fieldError("application.tenantId", "[invalid]application.tenantId", "No tenant has this id.")
	case err != nil:
		return gen.Application{}, err
	}
	out := applicationOut(app)
	out.OauthConfiguration.ClientSecret = &secret // shown once: only its hash is stored
	return out, nil
}

// targetTenant decides where a new object goes: the request's tenant scope (header
// or tenant-locked key), else the tenant named in the body, else the default
// tenant. A body tenant that contradicts the scope is an error.
func (s *Server) targetTenant(ctx context.Context, bodyTenant *uuid.UUID, field string) (uuid.UUID, error) {
	scope := principalFrom(ctx).scope
	switch {
	case scope.TenantID != nil:
		if bodyTenant != nil && *bodyTenant != *scope.TenantID {
			return uuid.Nil, fieldError(field, "[invalid]"+field, "The tenantId differs from the tenant of the request.")
		}
		return *scope.TenantID, nil
	case bodyTenant != nil:
		return *bodyTenant, nil
	}
	t, err := s.store.DefaultTenant(ctx)
	return t.ID, err
}

// RetrieveApplication implements GET /api/application/{applicationId}.
func (s *Server) RetrieveApplication(ctx context.Context, req gen.RetrieveApplicationRequestObject) (gen.RetrieveApplicationResponseObject, error) {
	app, err := s.store.Application(ctx, principalFrom(ctx).scope, req.ApplicationId)
	if errors.Is(err, store.ErrNotFound) {
		return gen.RetrieveApplication404Response{}, nil
	}
	if err != nil {
		return nil, err
	}
	return gen.RetrieveApplication200JSONResponse{Application: applicationOut(app)}, nil
}

// DeleteApplication implements DELETE /api/application/{applicationId}: a hard
// delete removes the application and its tokens, otherwise it is deactivated.
func (s *Server) DeleteApplication(ctx context.Context, req gen.DeleteApplicationRequestObject) (gen.DeleteApplicationResponseObject, error) {
	scope := principalFrom(ctx).scope
	var err error
	if req.Params.HardDelete != nil && *req.Params.HardDelete {
		var info []byte
		if info, err = eventInfo(ctx, nil); err != nil {
			return nil, err
		}
		err = s.store.DeleteApplication(ctx, scope, req.ApplicationId, info)
	} else {
		err = s.store.DeactivateApplication(ctx, scope, req.ApplicationId)
	}
	if errors.Is(err, store.ErrNotFound) {
		return gen.DeleteApplication404Response{}, nil
	}
	if err != nil {
		return nil, err
	}
	return gen.DeleteApplication200Response{}, nil
}

// checkAccessTokenKey refuses a configuration whose accessTokenKeyId names no
// key that can sign for tenant (nil: for a tenant not made yet, which only a
// global key can).
func (s *Server) checkAccessTokenKey(ctx context.Context, field string, c store.JWTConfig, tenant *uuid.UUID) error {
	if c.AccessTokenKeyID == "" {
		return nil
	}
	ok, err := s.checkSigningKey(ctx, uuid.MustParse(c.AccessTokenKeyID), tenant)
	if err != nil {
		return err
	}
	if !ok {
		return errInvalidSigningKey(field)
	}
	return nil
}

func applicationOut(a store.Application) gen.Application {
	policy := gen.OAuthConfigurationClientAuthenticationPolicy(a.ClientAuthenticationPolicy)
	return gen.Application{
		Id:                 &a.ID,
		TenantId:           &a.TenantID,
		Name:               a.Name,
		Active:             &a.Active,
		JwtConfiguration:   jwtConfigOut(a.JWT),
		OauthConfiguration: &gen.OAuthConfiguration{ClientId: &a.ClientID, ClientAuthenticationPolicy: &policy},
		InsertInstant:      &a.InsertInstant,
		LastUpdateInstant:  &a.LastUpdateInstant,
	}
}

// jwtConfigIn checks a JWT configuration. A disabled one — the Go client sends a
// zero-valued one with every application — is kept but never consulted.
func jwtConfigIn(errs *apiError, field string, in *gen.JWTConfiguration) store.JWTConfig {
	var c store.JWTConfig
	if in == nil {
		return c
	}
	c.Enabled = in.Enabled != nil && *in.Enabled
	c.TimeToLiveInSeconds = deref(in.TimeToLiveInSeconds)
	if in.AccessTokenSigningAlgorithm != nil {
		c.AccessTokenSigningAlgorithm = string(*in.AccessTokenSigningAlgorithm)
	}
	if in.AccessTokenKeyId != nil {
		c.AccessTokenKeyID = in.AccessTokenKeyId.String()
	}
	c.RefreshTokenTimeToLiveInMinutes = deref(in.RefreshTokenTimeToLiveInMinutes)
	if in.RefreshTokenExpirationPolicy != nil {
		c.RefreshTokenExpirationPolicy = string(*in.RefreshTokenExpirationPolicy)
	}
	if in.RefreshTokenUsagePolicy != nil {
		c.RefreshTokenUsagePolicy = string(*in.RefreshTokenUsagePolicy)
	}
	if w := in.RefreshTokenSlidingWindowConfiguration; w != nil {
		c.MaximumTimeToLiveInMinutes = deref(w.MaximumTimeToLiveInMinutes)
	}
	if o := in.RefreshTokenOneTimeUseConfiguration; o != nil {
		c.GracePeriodInSeconds = deref(o.GracePeriodInSeconds)
	}
	if p := in.RefreshTokenRevocationPolicy; p != nil {
		c.RevocationPolicy = &store.RevocationPolicy{OnLoginPrevented: deref(p.OnLoginPrevented),
			OnMultiFactorEnable: deref(p.OnMultiFactorEnable), OnOneTimeTokenReuse: deref(p.OnOneTimeTokenReuse),
			OnPasswordChanged: deref(p.OnPasswordChanged)}
	}
	if !c.Enabled {
		return c
	}
	positive := func(name string, v int32) {
		if v < 0 {
			errs.field(field+"."+name, "[invalid]"+field+"."+name, "The value must not be negative.")
		}
	}
	positive("timeToLiveInSeconds", c.TimeToLiveInSeconds)
	positive("refreshTokenTimeToLiveInMinutes", c.RefreshTokenTimeToLiveInMinutes)
	positive("refreshTokenSlidingWindowConfiguration.maximumTimeToLiveInMinutes", c.MaximumTimeToLiveInMinutes)
	if c.GracePeriodInSeconds < 0 || c.GracePeriodInSeconds > 86400 {
		name := field + ".refreshTokenOneTimeUseConfiguration.gracePeriodInSeconds"
		errs.field(name, "[invalid]"+name, "The grace period must be between 0 and 86400 seconds.")
	}
	return c
}

func jwtConfigOut(c store.JWTConfig) *gen.JWTConfiguration {
	out := &gen.JWTConfiguration{Enabled: &c.Enabled}
	if c.AccessTokenSigningAlgorithm != "" {
		a := gen.JWTConfigurationAccessTokenSigningAlgorithm(c.AccessTokenSigningAlgorithm)
		out.AccessTokenSigningAlgorithm = &a
	}
	if id, err := uuid.Parse(c.AccessTokenKeyID); err == nil {
		out.AccessTokenKeyId = &id
	}
	if c.TimeToLiveInSeconds != 0 {
		out.TimeToLiveInSeconds = &c.TimeToLiveInSeconds
	}
	if c.RefreshTokenTimeToLiveInMinutes != 0 {
		out.RefreshTokenTimeToLiveInMinutes = &c.RefreshTokenTimeToLiveInMinutes
	}
	if c.RefreshTokenExpirationPolicy != "" {
		p := gen.JWTConfigurationRefreshTokenExpirationPolicy(c.RefreshTokenExpirationPolicy)
		out.RefreshTokenExpirationPolicy = &p
	}
	if c.RefreshTokenUsagePolicy != "" {
		p := gen.JWTConfigurationRefreshTokenUsagePolicy(c.RefreshTokenUsagePolicy)
		out.RefreshTokenUsagePolicy = &p
	}
	if c.MaximumTimeToLiveInMinutes != 0 {
		out.RefreshTokenSlidingWindowConfiguration = &struct {
			MaximumTimeToLiveInMinutes *int32 `json:"maximumTimeToLiveInMinutes,omitempty"`
		}{&c.MaximumTimeToLiveInMinutes}
	}
	if c.GracePeriodInSeconds != 0 {
		out.RefreshTokenOneTimeUseConfiguration = &struct {
			GracePeriodInSeconds *int32 `json:"gracePeriodInSeconds,omitempty"`
		}{&c.GracePeriodInSeconds}
	}
	if p := c.RevocationPolicy; p != nil {
		out.RefreshTokenRevocationPolicy = &gen.RefreshTokenRevocationPolicy{OnLoginPrevented: &p.OnLoginPrevented,
			OnMultiFactorEnable: &p.OnMultiFactorEnable, OnOneTimeTokenReuse: &p.OnOneTimeTokenReuse,
			OnPasswordChanged: &p.OnPasswordChanged}
	}
	return out
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
