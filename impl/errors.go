package impl

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/labstack/echo/v4"

	gen "refreshd/generated"
	"refreshd/impl/store"
)

// apiError is a 400 in FusionAuth's error format. Handlers, the validator and the
// binder all end up here, so every 400 has the same body.
type apiError struct {
	fields  map[string][]gen.Error
	general []gen.Error
}

func (e *apiError) Error() string {
	var codes []string
	for _, g := range e.general {
		codes = append(codes, g.Code)
	}
	for _, list := range e.fields {
		for _, f := range list {
			codes = append(codes, f.Code)
		}
	}
	sort.Strings(codes)
	return "bad request: " + strings.Join(codes, ", ")
}

// field adds an error on one field; code is the full code, e.g. "[invalid]userId".
func (e *apiError) field(name, code, message string) *apiError {
	if e.fields == nil {
		e.fields = map[string][]gen.Error{}
	}
	for _, have := range e.fields[name] {
		if have.Code == code {
			return e
		}
	}
	e.fields[name] = append(e.fields[name], gen.Error{Code: code, Message: message})
	return e
}

// generalError adds an error about the request as a whole.
func (e *apiError) generalError(code, message string) *apiError {
	for _, have := range e.general {
		if have.Code == code {
			return e
		}
	}
	e.general = append(e.general, gen.Error{Code: code, Message: message})
	return e
}

// has reports whether e holds code on field name.
func (e *apiError) has(name, code string) bool {
	for _, f := range e.fields[name] {
		if f.Code == code {
			return true
		}
	}
	return false
}

func (e *apiError) empty() bool { return len(e.fields) == 0 && len(e.general) == 0 }

// orNil returns e when it holds an error, so that `return x, errs.orNil()` works.
func (e *apiError) orNil() error {
	if e.empty() {
		return nil
	}
	return e
}

func (e *apiError) body() gen.Errors {
	var out gen.Errors
	if len(e.fields) > 0 {
		out.FieldErrors = &e.fields
	}
	if len(e.general) > 0 {
		out.GeneralErrors = &e.general
	}
	return out
}

func fieldError(name, code, message string) *apiError {
	return new(apiError).field(name, code, message)
}

func generalError(code, message string) *apiError {
	return new(apiError).generalError(code, message)
}

var (
	errInvalidJSON = func() *apiError {
		return generalError("[invalidJSON]", "The request body is not valid JSON for this request.")
	}
	// errUnauthorized makes the answer a 401 with an empty body.
	errUnauthorized = echo.NewHTTPError(http.StatusUnauthorized)
)

// handleError is Echo's HTTPErrorHandler: the one place where errors become
// responses. 400s get FusionAuth's error body; 401, 404 and 500 get empty bodies;
// internal errors are logged and never echoed.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, body := s.classify(err, c)
	if c.Request().Method == http.MethodHead || body == nil {
		_ = c.NoContent(status)
		return
	}
	if c.Path() == revocationPath {
		// RFC 7009's endpoint answers in OAuth's error format, not FusionAuth's.
		_ = c.JSON(status, oauthError(gen.InvalidRequest, strings.Join(codesOf(body), ", ")))
		return
	}
	_ = c.JSON(status, body)
}

func (s *Server) classify(err error, c echo.Context) (int, *gen.Errors) {
	var ae *apiError
	if errors.As(err, &ae) {
		b := ae.body()
		return http.StatusBadRequest, &b
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		if he.Internal != nil {
			status, body, internal, ok := translateValidation(he.Internal)
			switch {
			case ok && internal == nil:
				return status, body
			case ok: // authentication failed inside the validator: classify why
				return s.classifyStore(internal, c)
			}
		}
		switch he.Code {
		case http.StatusUnauthorized, http.StatusNotFound, http.StatusMethodNotAllowed:
			return he.Code, nil
		case http.StatusRequestTimeout:
			// The rest of the body may still be on its way: the connection cannot
			// carry another request.
			c.Response().Header().Set(echo.HeaderConnection, "close")
			return he.Code, nil
		case http.StatusRequestEntityTooLarge:
			b := tooLarge().body()
			return http.StatusBadRequest, &b
		case http.StatusUnsupportedMediaType:
			b := invalidContentType().body()
			return http.StatusBadRequest, &b
		}
		if he.Code >= 400 && he.Code < 500 {
			b := generalError("[invalid]", "The request is invalid.").body()
			return http.StatusBadRequest, &b
		}
	}
	return s.classifyStore(err, c)
}

// classifyStore answers what the database refused by its SQLSTATE class: a value
// it cannot hold is the request's fault (400), an outage or a conflict lost on
// every retry is a 503 with Retry-After, anything else a logged 500.
func (s *Server) classifyStore(err error, c echo.Context) (int, *gen.Errors) {
	err = store.Classify(err)
	var (
		de *store.DataError
		ue *store.UnavailableError
		ce *store.ConstraintError
	)
	switch {
	case errors.As(err, &de):
		// Requests are checked before they reach the database, so this is a
		// check missing somewhere: worth a line in the log.
		s.log.WarnContext(c.Request().Context(), "value refused by the database", "method", c.Request().Method,
			"route", c.Path(), "sqlstate", de.SQLState, "table", de.Table, "column", de.Column, "error", err)
		b := dataError(de).body()
		return http.StatusBadRequest, &b
	case errors.As(err, &ce):
		// A handler maps the constraints it expects; one it did not is a
		// conflict with data that changed meanwhile, still the request's.
		s.log.WarnContext(c.Request().Context(), "unexpected constraint violation", "method", c.Request().Method,
			"route", c.Path(), "constraint", ce.Constraint, "error", err)
		b := generalError("[invalid]", "The request conflicts with the stored data.").body()
		return http.StatusBadRequest, &b
	case errors.As(err, &ue) && c.Request().Context().Err() == nil:
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(ue.RetryAfter.Seconds())))
		s.log.DebugContext(c.Request().Context(), "database unavailable", "method", c.Request().Method, "route", c.Path(), "busy", ue.Busy,
			"sqlstate", store.SQLState(err), "error", err)
		return http.StatusServiceUnavailable, nil
	}
	s.logInternal(c, err)
	return http.StatusInternalServerError, nil
}

// dataErrorFields names, by table, where a column's values come from in a
// request; PostgreSQL names the column of a data exception only sometimes.
var dataErrorFields = map[string]string{
	"users": "user", "applications": "application", "tenants": "tenant", "webhooks": "webhook", "api_keys": "apiKey",
}

// dataError is the 400 for a value the database could not hold: on the field
// when PostgreSQL says which, else on the request as a whole.
func dataError(de *store.DataError) *apiError {
	if object, ok := dataErrorFields[de.Table]; ok && de.Column != "" {
		field := object + "." + lowerCamel(de.Column)
		return fieldError(field, "[invalid]"+field, "The field ["+field+"] holds a value that cannot be stored.")
	}
	return generalError("[invalid]", "The request holds a value that cannot be stored.")
}

// lowerCamel turns a column name into a field name: first_name → firstName.
func lowerCamel(column string) string {
	parts := strings.Split(column, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

// logInternal logs a failure with its route and, for a database error, its
// SQLSTATE. A client that went away mid-request is not the server's failure:
// that is logged at debug level only.
func (s *Server) logInternal(c echo.Context, err error) {
	if c.Request().Context().Err() != nil &&
		(errors.Is(err, context.Canceled) || errors.Is(err, store.ErrUnavailable)) {
		s.log.DebugContext(c.Request().Context(), "request abandoned by the client", "method", c.Request().Method, "route", c.Path())
		return
	}
	s.log.ErrorContext(c.Request().Context(), "request failed", "method", c.Request().Method, "route", c.Path(),
		"sqlstate", store.SQLState(err), "error", err)
}

func tooLarge() *apiError {
	return generalError("[tooLarge]", "The request body is too large.")
}

func invalidContentType() *apiError {
	return generalError("[InvalidContentType]", "The request body must be JSON (Content-Type: application/json).")
}

// translateValidation turns what kin-openapi reports into FusionAuth codes. A
// failed security requirement wins over everything else: a request without a
// valid key learns nothing about its input. An authentication that failed for
// another reason (the database is down) comes back as internal, for the caller
// to classify. ok is false for errors it does not know.
func translateValidation(err error) (status int, body *gen.Errors, internal error, ok bool) {
	t := translator{errs: new(apiError)}
	t.walk(err)
	switch {
	case t.internal != nil:
		return 0, nil, t.internal, true
	case t.tenant != nil:
		// Only a valid key gets as far as the tenant check, so this wins over
		// the other schemes' failures.
		b := t.tenant.body()
		return http.StatusBadRequest, &b, nil, true
	case t.unauthorized:
		return http.StatusUnauthorized, nil, nil, true
	case !t.errs.empty():
		b := t.errs.body()
		return http.StatusBadRequest, &b, nil, true
	}
	return 0, nil, nil, false
}

type translator struct {
	errs         *apiError
	tenant       *apiError
	unauthorized bool
	internal     error
}

func (t *translator) walk(err error) {
	switch e := err.(type) {
	case openapi3.MultiError:
		for _, inner := range e {
			t.walk(inner)
		}
	case *openapi3filter.SecurityRequirementsError:
		for _, inner := range e.Errors {
			var ae *apiError
			switch {
			case errors.Is(inner, errUnauthorized):
				t.unauthorized = true
			case errors.As(inner, &ae):
				t.tenant = ae
			default:
				t.internal = inner
			}
		}
	case *openapi3filter.RequestError:
		switch {
		case e.Parameter != nil:
			t.parameter(e.Parameter, e.Err)
		case e.RequestBody != nil:
			t.body(e)
		default:
			t.errs.generalError("[invalid]", "The request is invalid.")
		}
	default:
		t.errs.generalError("[invalid]", "The request is invalid.")
	}
}

func (t *translator) parameter(p *openapi3.Parameter, err error) {
	name := p.Name
	if p.In == openapi3.ParameterInHeader && strings.EqualFold(name, tenantHeader) {
		t.tenant = errInvalidTenant()
		return
	}
	if errors.Is(err, openapi3filter.ErrInvalidRequired) {
		t.errs.field(name, "[missing]"+name, "The parameter ["+name+"] is required.")
		return
	}
	if se := firstSchemaError(err); se != nil && se.SchemaField == "maxLength" {
		t.errs.field(name, "[tooLong]"+name, "The parameter ["+name+"] is too long.")
		return
	}
	t.errs.field(name, "[couldNotConvert]"+name, "The parameter ["+name+"] has an invalid value.")
}

func (t *translator) body(e *openapi3filter.RequestError) {
	if e.Err == nil {
		// kin-openapi reports an unexpected Content-Type without an inner error.
		t.errs.generalError(invalidContentType().general[0].Code, invalidContentType().general[0].Message)
		return
	}
	if errors.Is(e.Err, openapi3filter.ErrInvalidRequired) {
		t.errs.generalError("[invalidJSON]", "A JSON request body is required.")
		return
	}
	schemaErrors := collectSchemaErrors(e.Err)
	if len(schemaErrors) == 0 {
		// Not a schema violation: the body did not parse.
		t.errs.generalError("[invalidJSON]", "The request body is not valid JSON.")
		return
	}
	for _, se := range schemaErrors {
		t.schema(se)
	}
}

// schema maps one JSON-schema violation to a field error keyed by the field's path
// ("refreshTokens[0].token") with a code on the path without indexes
// ("[missing]refreshTokens.token").
func (t *translator) schema(se *openapi3.SchemaError) {
	key, codePath := fieldPaths(se.JSONPointer())
	switch se.SchemaField {
	case "type", "nullable", "additionalProperties":
		t.errs.generalError("[invalidJSON]", "The field ["+key+"] has the wrong JSON type.")
		return
	}
	if key == "" {
		t.errs.generalError("[invalidJSON]", "The request body has the wrong shape.")
		return
	}
	var code, msg string
	switch se.SchemaField {
	case "required", "minLength", "minItems":
		code, msg = "[missing]", "The field ["+key+"] is required."
	case "maxLength":
		code, msg = "[tooLong]", "The field ["+key+"] is too long."
	case "maxItems":
		code, msg = "[tooMany]", "The field ["+key+"] has too many items."
	case "format", "pattern":
		code, msg = "[couldNotConvert]", "The field ["+key+"] is not a valid value (for an id: a UUID)."
		if se.Schema != nil && se.Schema.Format == textFormat {
			code, msg = "[invalid]", "The field ["+key+"] holds a character that cannot be stored (U+0000)."
		}
	default:
		code, msg = "[invalid]", "The field ["+key+"] has an invalid value."
	}
	t.errs.field(key, code+codePath, msg)
}

// fieldPaths renders a JSON pointer as a FusionAuth field key and as the path used
// in codes: ["refreshTokens","0","token"] → "refreshTokens[0].token", "refreshTokens.token".
func fieldPaths(pointer []string) (key, codePath string) {
	var k, c strings.Builder
	for _, seg := range pointer {
		if _, err := strconv.Atoi(seg); err == nil {
			k.WriteString("[" + seg + "]")
			continue
		}
		if k.Len() > 0 {
			k.WriteByte('.')
		}
		if c.Len() > 0 {
			c.WriteByte('.')
		}
		k.WriteString(seg)
		c.WriteString(seg)
	}
	return k.String(), c.String()
}

func collectSchemaErrors(err error) []*openapi3.SchemaError {
	switch e := err.(type) {
	case *openapi3.SchemaError:
		return []*openapi3.SchemaError{e}
	case openapi3.MultiError:
		var out []*openapi3.SchemaError
		for _, inner := range e {
			out = append(out, collectSchemaErrors(inner)...)
		}
		return out
	}
	return nil
}

func firstSchemaError(err error) *openapi3.SchemaError {
	if list := collectSchemaErrors(err); len(list) > 0 {
		return list[0]
	}
	return nil
}

// codesOf lists the codes of an error body, for an error in another format.
func codesOf(b *gen.Errors) []string {
	var out []string
	if b.GeneralErrors != nil {
		for _, e := range *b.GeneralErrors {
			out = append(out, e.Code)
		}
	}
	if b.FieldErrors != nil {
		for _, list := range *b.FieldErrors {
			for _, e := range list {
				out = append(out, e.Code)
			}
		}
	}
	sort.Strings(out)
	return out
}
