package impl

import (
	"context"
	"errors"
	"strings"

	"github.com/google/uuid"

	gen "refreshd/generated"
	"refreshd/impl/store"
)

// CreateUser implements POST /api/user.
func (s *Server) CreateUser(ctx context.Context, req gen.CreateUserRequestObject) (gen.CreateUserResponseObject, error) {
	u, err := s.createUser(ctx, uuid.New(), req.Body)
	if err != nil {
		return nil, err
	}
	return gen.CreateUser200JSONResponse{User: u}, nil
}

// CreateUserWithId implements POST /api/user/{userId}.
func (s *Server) CreateUserWithId(ctx context.Context, req gen.CreateUserWithIdRequestObject) (gen.CreateUserWithIdResponseObject, error) {
	u, err := s.createUser(ctx, req.UserId, req.Body)
	if err != nil {
		return nil, err
	}
	return gen.CreateUserWithId200JSONResponse{User: u}, nil
}

func (s *Server) createUser(ctx context.Context, id uuid.UUID, body *gen.UserRequest) (gen.User, error) {
	if body == nil {
		return gen.User{}, errInvalidJSON()
	}
	in := body.User
	email, username := trimmed(in.Email), trimmed(in.Username)
	if email == nil && username == nil {
		const msg = "Give the user an email or a username."
		return gen.User{}, fieldError("user.email", "[missing]user.email", msg).
			field("user.username", "[missing]user.username", msg)
	}
	tenantID, err := s.targetTenant(ctx, in.TenantId, "user.tenantId")
	if err != nil {
		return gen.User{}, err
	}
	now := store.NowMillis()
	u := store.User{
		ID: id, TenantID: tenantID, Email: email, Username: username,
		FirstName: trimmed(in.FirstName), LastName: trimmed(in.LastName), FullName: trimmed(in.FullName),
		Active: true, InsertInstant: now, LastUpdateInstant: now,
	}
	if in.Data != nil {
		if u.Data, err = store.JSONObject(*in.Data).AsStored(); err != nil {
			return gen.User{}, err
		}
	}
	err = s.store.CreateUser(ctx, u)
	var ce *store.ConstraintError
	switch {
	case errors.As(err, &ce) && ce.Constraint == "users_email_key":
		return gen.User{}, fieldError("user.email", "[duplicate]user.email", "A user with this email exists in the tenant.")
	case errors.As(err, &ce) && ce.Constraint == "users_username_key":
		return gen.User{}, fieldError("user.username", "[duplicate]user.username", "A user with this username exists in the tenant.")
	case errors.As(err, &ce) && ce.Duplicate:
		return gen.User{}, fieldError("userId", "[duplicate]userId", "A user with this id exists.")
	case errors.As(err, &ce):
		return gen.User{}, fieldError("user.tenantId", "[invalid]user.tenantId", "No tenant has this id.")
	case err != nil:
		return gen.User{}, err
	}
	return userOut(u), nil
}

// RetrieveUser implements GET /api/user/{userId}.
func (s *Server) RetrieveUser(ctx context.Context, req gen.RetrieveUserRequestObject) (gen.RetrieveUserResponseObject, error) {
	u, err := s.store.User(ctx, principalFrom(ctx).scope, req.UserId)
	if errors.Is(err, store.ErrNotFound) {
		return gen.RetrieveUser404Response{}, nil
	}
	if err != nil {
		return nil, err
	}
	return gen.RetrieveUser200JSONResponse{User: userOut(u)}, nil
}

// DeleteUser implements DELETE /api/user/{userId}: a hard delete removes the user
// and their tokens, otherwise the user is deactivated.
func (s *Server) DeleteUser(ctx context.Context, req gen.DeleteUserRequestObject) (gen.DeleteUserResponseObject, error) {
	scope := principalFrom(ctx).scope
	var err error
	if req.Params.HardDelete != nil && *req.Params.HardDelete {
		var info []byte
		if info, err = eventInfo(ctx, nil); err != nil {
			return nil, err
		}
		err = s.store.DeleteUser(ctx, scope, req.UserId, info)
	} else {
		err = s.store.DeactivateUser(ctx, scope, req.UserId)
	}
	if errors.Is(err, store.ErrNotFound) {
		return gen.DeleteUser404Response{}, nil
	}
	if err != nil {
		return nil, err
	}
	return gen.DeleteUser200Response{}, nil
}

func userOut(u store.User) gen.User {
	out := gen.User{
		Id: &u.ID, TenantId: &u.TenantID, Email: u.Email, Username: u.Username,
		FirstName: u.FirstName, LastName: u.LastName, FullName: u.FullName,
		Active: &u.Active, InsertInstant: &u.InsertInstant, LastUpdateInstant: &u.LastUpdateInstant,
	}
	if u.Data != nil {
		data := map[string]any(u.Data)
		out.Data = &data
	}
	return out
}

// trimmed returns the trimmed text, or nil when there is none.
func trimmed(p *string) *string {
	if p == nil {
		return nil
	}
	v := strings.TrimSpace(*p)
	if v == "" {
		return nil
	}
	return &v
}
