// Package impl is the refresh-token server: it implements the strict server
// generated from openapi.yaml over the PostgreSQL store.
package impl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/labstack/echo/v4"
	echomw "github.com/labstack/echo/v4/middleware"
	oapimw "github.com/oapi-codegen/echo-middleware"

	gen "refreshd/generated"
	"refreshd/impl/store"
)

// Config holds what the server needs besides its store.
type Config struct {
	// Logger receives request failures and start-up messages; nil means slog.Default().
	Logger *slog.Logger
	// BodyLimit is the largest request body accepted, in bytes; 0 means 8 MiB.
	BodyLimit int64
	// Issuer is the iss claim of access tokens; empty means "refreshd".
	Issuer string
	// TrustedProxies are the networks whose X-Forwarded-For is believed when
	// events record the caller's address; none means the direct peer is the caller.
	TrustedProxies []*net.IPNet
	// RequestLogLevel is the level of the one line logged per request (default info).
	RequestLogLevel slog.Level
	// Metrics counts what the server does; nil makes a fresh set for this server.
	Metrics *Metrics
	// MetricsElsewhere leaves GET /metrics out, for a server whose metrics are
	// served on a listener of their own.
	MetricsElsewhere bool
	// BodyTimeout bounds the time to receive a request body, counted from the end
	// of its headers; 0 means DefaultBodyTimeout, negative no bound.
	BodyTimeout time.Duration
}

// DefaultBodyLimit bounds request bodies: a full import batch fits with room to spare.
const DefaultBodyLimit = 8 << 20

// DefaultBodyTimeout bounds the time a client may take to send a body: 8 MiB
// over a slow link fits; a client that trickles one byte a second is cut off.
const DefaultBodyTimeout = 20 * time.Second

// Server implements the generated strict-server interface.
type Server struct {
	store          *store.Store
	log            *slog.Logger
	keys           *keyring
	issuer         string
	trustedProxies []*net.IPNet

	metrics      *Metrics
	requestLevel slog.Level

	keyCache keyCache
}

var _ gen.StrictServerInterface = (*Server)(nil)

// uuidPattern accepts any 8-4-4-4-12 hex UUID, including versions (v7) that
// kin-openapi's built-in RFC 4122 check would reject.
const uuidPattern = `^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`

var uuidRE = regexp.MustCompile(uuidPattern)

// textFormat marks, in the contract, text stored as such (names, emails, webhook
// settings): PostgreSQL's text cannot hold U+0000, so such a field with one is
// refused as [invalid]F before anything is stored.
const textFormat = "text"

func init() {
	openapi3.DefineStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(uuidPattern))
	openapi3.DefineStringFormatValidator(textFormat, openapi3.NewCallbackValidator(func(v string) error {
		if strings.ContainsRune(v, 0) {
			return errors.New("holds U+0000")
		}
		return nil
	}))
}

// New wires the whole server — body limits, request validation against the
// embedded contract, API-key authentication, error mapping and the handlers — into
// an Echo instance. main and the tests share it.
func New(cfg Config, st *store.Store) (*echo.Echo, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	if cfg.BodyTimeout == 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	spec, err := gen.GetSwagger()
	if err != nil {
		return nil, fmt.Errorf("load embedded openapi.yaml: %w", err)
	}
	spec.Servers = nil // validate paths only, whatever host the server is reached by

	if cfg.Issuer == "" {
		cfg.Issuer = "refreshd"
	}
	cfg.Logger = slog.New(WithRequestID(cfg.Logger.Handler()))
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(st, cfg.Logger)
	}
	s := &Server{store: st, log: cfg.Logger, keys: newKeyring(st), issuer: cfg.Issuer, trustedProxies: cfg.TrustedProxies,
		metrics: cfg.Metrics, requestLevel: cfg.RequestLogLevel}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Binder = jsonBinder{}
	e.IPExtractor = echo.ExtractIPDirect()
	if len(cfg.TrustedProxies) > 0 {
		opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
		for _, n := range cfg.TrustedProxies {
			opts = append(opts, echo.TrustIPRange(n))
		}
		e.IPExtractor = echo.ExtractIPFromXFFHeader(opts...)
	}

	// observe is outermost, so that it sees the final status of every request,
	// a recovered panic's included.
	e.Use(s.observe)
	e.Use(echomw.RecoverWithConfig(echomw.RecoverConfig{DisableStackAll: true, LogErrorFunc: s.logPanic}))
	e.Use(s.readBody(cfg.BodyLimit, cfg.BodyTimeout, bodyMediaTypes(spec), apiKeyOnlyRoutes(spec)))
	operational := s.registerOperational(e, !cfg.MetricsElsewhere)
	e.Use(oapimw.OapiRequestValidatorWithOptions(spec, &oapimw.Options{
		// The operational routes are not part of the API contract.
		Skipper: func(c echo.Context) bool { return operational[c.Path()] },
		Options: openapi3filter.Options{
			AuthenticationFunc: s.authenticate,
			MultiError:         true,
		},
		MultiErrorHandler: func(me openapi3.MultiError) *echo.HTTPError {
			return &echo.HTTPError{Code: http.StatusBadRequest, Message: "invalid request", Internal: me}
		},
		SilenceServersWarning: true,
	}))
	gen.RegisterHandlers(e, gen.NewStrictHandler(s, []gen.StrictMiddlewareFunc{s.withRequestContext, s.countExchanges}))
	return e, nil
}

func (s *Server) logPanic(c echo.Context, err error, stack []byte) error {
	s.log.ErrorContext(c.Request().Context(), "panic", "method", c.Request().Method, "route", c.Path(), "error", err, "stack", string(stack))
	return err
}

// echoRoute is a contract path in Echo's route syntax: /api/jwt/refresh/{tokenId}
// is /api/jwt/refresh/:tokenId, as c.Path() names it.
func echoRoute(path string) string {
	return strings.NewReplacer("{", ":", "}", "").Replace(path)
}

// bodyMediaTypes lists, per "METHOD route" (Echo's route syntax), the body media
// types the contract accepts besides JSON.
func bodyMediaTypes(spec *openapi3.T) map[string][]string {
	out := map[string][]string{}
	for path, item := range spec.Paths.Map() {
		route := echoRoute(path)
		for method, op := range item.Operations() {
			if op.RequestBody == nil || op.RequestBody.Value == nil {
				continue
			}
			for mt := range op.RequestBody.Value.Content {
				if mt != echo.MIMEApplicationJSON {
					out[method+" "+route] = append(out[method+" "+route], mt)
				}
			}
		}
	}
	return out
}

// readBody reads the whole body up front, bounded by limit and by timeout, and
// checks what the contract cannot express: an oversized body, a content type the
// operation does not take (JSON, and where the contract says so a form), a form
// field or a query parameter given more than once (FusionAuth answers 500 there;
// we answer 400). For an operation that only an API key may call, the key is
// checked first: a caller without one cannot make the server read (and hold) a
// body at all. Operations open to anyone or to an access token are authenticated
// by the validator after the body is read.
func (s *Server) readBody(limit int64, timeout time.Duration, otherTypes map[string][]string, keyOnly map[string]bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			rc := http.NewResponseController(c.Response())
			if timeout > 0 {
				// Also bounds discarding an unread body after an early answer.
				_ = rc.SetReadDeadline(time.Now().Add(timeout))
			}
			// Answering without reading the body: net/http would read up to 256 KiB
			// of it first, to keep the connection, at the client's pace. Closing the
			// connection instead lets the answer go out at once.
			early := func(err error) error {
				if req.ContentLength != 0 {
					c.Response().Header().Set(echo.HeaderConnection, "close")
				}
				return err
			}
			if keyOnly[req.Method+" "+c.Path()] {
				if err := s.checkKey(c); err != nil {
					return early(err)
				}
			}
			if errs := repeatedParams(c); errs != nil {
				return early(errs)
			}
			if req.ContentLength > limit {
				return early(tooLarge())
			}
			body, err := readAll(req.Body, req.ContentLength, limit)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					return echo.NewHTTPError(http.StatusRequestTimeout)
				}
				return generalError("[invalid]", "The request body could not be read.")
			}
			if int64(len(body)) > limit {
				return tooLarge()
			}
			if timeout > 0 {
				// Lifted once the body is in: net/http keeps reading the
				// connection in the background, and a deadline passing then
				// would cancel a slow handler's context.
				_ = rc.SetReadDeadline(time.Time{})
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
			req.ContentLength = int64(len(body))
			// The binder decodes these bytes rather than reading a copy of them
			// again after the validator (request bodies declare no defaults, so
			// the validator never rewrites them: TestRequestBodiesDeclareNoDefaults).
			c.Set(bodyEchoKey, body)
			if len(bytes.TrimSpace(body)) == 0 {
				// An empty body is an absent body, whatever its declared type.
				req.Body = http.NoBody
				req.ContentLength = 0
				req.Header.Del(echo.HeaderContentType)
				return next(c)
			}
			mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
			switch {
			case err != nil:
				return invalidContentType()
			case mt == echo.MIMEApplicationJSON:
				return next(c)
			case mt == echo.MIMEApplicationForm && slices.Contains(otherTypes[req.Method+" "+c.Path()], mt):
				form, err := url.ParseQuery(string(body))
				if err != nil {
					return generalError("[invalid]", "The form body could not be parsed.")
				}
				if errs := repeated(form); errs != nil {
					return errs
				}
				// net/http parses form bodies of POST, PUT and PATCH only; hand the
				// parsed body to the binder for this DELETE too, without the query.
				req.PostForm, req.Form = form, form
				return next(c)
			}
			return invalidContentType()
		}
	}
}

// apiKeyOnlyRoutes lists, as "METHOD /echo/route", the operations whose every
// security alternative is the API key alone.
func apiKeyOnlyRoutes(spec *openapi3.T) map[string]bool {
	out := map[string]bool{}
	for path, item := range spec.Paths.Map() {
		route := echoRoute(path)
		for method, op := range item.Operations() {
			security := &spec.Security
			if op.Security != nil {
				security = op.Security
			}
			keyOnly := len(*security) > 0
			for _, alternative := range *security {
				if _, ok := alternative["ApiKey"]; !ok || len(alternative) != 1 {
					keyOnly = false
				}
			}
			out[method+" "+route] = keyOnly
		}
	}
	return out
}

// checkKey is the early API-key check: a missing or unknown key, or one not
// allowed this endpoint, is a 401. The tenant header and the rest are left to
// authenticate, which runs in the validator.
func (s *Server) checkKey(c echo.Context) error {
	req := c.Request()
	raw := req.Header.Get(echo.HeaderAuthorization)
	if raw == "" {
		return errUnauthorized
	}
	key, _, err := s.keyCache.authenticate(req.Context(), s.store, HashKey(raw), nil)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errUnauthorized
	case err != nil:
		return err
	case !key.Allows(endpointOf(c.Path()), req.Method):
		return errUnauthorized
	}
	return nil
}

func repeatedParams(c echo.Context) error { return repeated(c.QueryParams()) }

// repeated names each field given more than once: [invalid]name.
func repeated(fields url.Values) error {
	var names []string
	for name, values := range fields {
		if len(values) > 1 {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	errs := new(apiError)
	for _, name := range names {
		errs.field(name, "[invalid]"+name, "The parameter ["+name+"] may be given only once.")
	}
	return errs
}

// bodyEchoKey holds the request body as readBody read it.
const bodyEchoKey = "refreshd.body"

// readAll reads a body of at most limit bytes (one more, when it is longer, so
// that the caller can tell), in one allocation when its length is declared.
func readAll(r io.Reader, declared, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	if declared > 0 && declared <= limit {
		// ReadFrom wants MinRead bytes free before each read, the last (EOF) one too.
		buf.Grow(int(declared) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	return buf.Bytes(), err
}

// jsonBinder decodes the request body, already checked against the contract. An
// absent body is io.EOF, which the generated strict handler turns into a nil body.
// Numbers in free-form objects stay json.Number, exactly as sent, and must fit
// what the store can hold (checkNumbers).
type jsonBinder struct{}

func (jsonBinder) Bind(v any, c echo.Context) error {
	body, ok := c.Get(bodyEchoKey).([]byte)
	if !ok {
		var err error
		if body, err = io.ReadAll(c.Request().Body); err != nil {
			return generalError("[invalid]", "The request body could not be read.")
		}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return io.EOF
	}
	if err := decodeStrict(body, v); err != nil {
		return errInvalidJSON()
	}
	return checkNumbers(v)
}

// GetStatus answers whether the server and its database work.
func (s *Server) GetStatus(ctx context.Context, _ gen.GetStatusRequestObject) (gen.GetStatusResponseObject, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if !s.store.Available() {
		return gen.GetStatus503JSONResponse{Status: "unavailable"}, nil
	}
	if err := s.store.Ping(ctx); err != nil {
		s.log.WarnContext(ctx, "status: database does not answer", "error", err)
		return gen.GetStatus503JSONResponse{Status: "unavailable"}, nil
	}
	return gen.GetStatus200JSONResponse{Status: "ok"}, nil
}
