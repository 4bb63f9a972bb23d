package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	gen "refreshd/generated"
)

// Config says where the implementation under test is and how to talk to it.
type Config struct {
	// URL is the server's base URL, e.g. https://auth.example.com.
	URL string
	// APIKey is sent raw in the Authorization header. It needs permission to
	// create and delete users and applications and to import, list and revoke
	// refresh tokens.
	APIKey string
	// TenantID, when set, is sent as X-FusionAuth-TenantId on every request, so
	// fixtures are made in that tenant (needed on servers with several tenants).
	TenantID string
	// Parallel is how many cases run at once; 0 means 4. Output order does not
	// depend on it.
	Parallel int
	// HTTPClient sends the requests; nil means a client with a 30-second timeout.
	HTTPClient *http.Client

	// WebhookListen, when set, is the address (host:port) on which the session
	// receives webhook deliveries: Run registers a global webhook for
	// jwt.refresh-token.revoke events there, and the revoke cases then also check
	// the events their requests recorded. Cleanup deletes the webhook. Without
	// it those checks are left out and the cases run as they otherwise do.
	WebhookListen string
	// WebhookURL is the URL registered for the webhook when the server reaches
	// the receiver by another address than http://WebhookListen/…
	WebhookURL string
	// WebhookWait bounds how long a case waits for its events; 0 means 5 s.
	WebhookWait time.Duration

	// Spec is the OpenAPI document (YAML or JSON) every answer is checked
	// against; nil means refreshd's own openapi.yaml. An answer with a status the
	// operation does not declare, or a body its schema does not allow, fails the
	// case with a failure of kind "schema".
	Spec []byte
}

// Session runs cases against one server and remembers every fixture it made
// until Cleanup has removed it. It is safe for concurrent use by its cases.
type Session struct {
	cfg   Config
	base  *url.URL
	hc    *http.Client
	api   *gen.ClientWithResponses
	runID string
	fx    *registry
	// hooks is the webhook receiver in webhook mode, nil otherwise.
	hooks *receiver
	// profile is the profile of the run: checks of our own choices inside core
	// cases (a delivery's signature) are made only in the strict profile.
	profile Profile
	// contract is what every answer is checked against.
	contract *contract
}

// NewSession checks cfg and prepares the clients; it sends nothing.
func NewSession(cfg Config) (*Session, error) {
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("the URL %q is not an http(s) URL", cfg.URL)
	}
	if cfg.APIKey == "" {
		return nil, errors.New("an API key is needed")
	}
	if cfg.TenantID != "" {
		if _, err := uuid.Parse(cfg.TenantID); err != nil {
			return nil, fmt.Errorf("the tenant id %q is not a UUID", cfg.TenantID)
		}
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.WebhookURL != "" {
		if u, err := url.Parse(cfg.WebhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("the webhook URL %q is not an http(s) URL", cfg.WebhookURL)
		}
		if cfg.WebhookListen == "" {
			return nil, errors.New("a webhook URL needs an address to listen on")
		}
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	s := &Session{cfg: cfg, base: u, hc: hc, runID: randomHex(4), fx: newRegistry()}
	if s.contract, err = loadContract(cfg.Spec); err != nil {
		return nil, err
	}
	s.api, err = gen.NewClientWithResponses(u.String(),
		gen.WithHTTPClient(recordingDoer{hc: hc, s: s}),
		gen.WithRequestEditorFn(s.editRequest))
	if err != nil {
		return nil, err
	}
	return s, nil
}

// editRequest adds the key and tenant to every request the generated client
// makes, leaving alone a tenant header the case set itself, and drops the empty
// Content-Type the client sets on bodiless requests.
func (s *Session) editRequest(ctx context.Context, r *http.Request) error {
	r.Header.Set("Authorization", s.cfg.APIKey)
	if t := tenantOf(ctx); t != "" && r.Header.Get(tenantHeader) == "" {
		r.Header.Set(tenantHeader, t)
	}
	if s.cfg.TenantID != "" && r.Header.Get(tenantHeader) == "" {
		r.Header.Set(tenantHeader, s.cfg.TenantID)
	}
	if r.Header.Get("Content-Type") == "" {
		r.Header.Del("Content-Type")
	}
	return nil
}

const tenantHeader = "X-FusionAuth-TenantId"

type tenantKey struct{}

// inTenant makes every request sent with the context carry X-FusionAuth-TenantId:
// id, for a case that works in a tenant of its own.
func inTenant(ctx context.Context, id uuid.UUID) context.Context {
	return context.WithValue(ctx, tenantKey{}, id.String())
}

// tenantOf is the tenant inTenant put in ctx, or "".
func tenantOf(ctx context.Context) string {
	t, _ := ctx.Value(tenantKey{}).(string)
	return t
}

// withoutKey drops the API key editRequest added, for the operations that need
// none (the exchange, the JWKS): sent without one, they show that none is needed.
func withoutKey(_ context.Context, r *http.Request) error {
	r.Header.Del("Authorization")
	return nil
}

// maxResponseBody bounds what is read of an answer; no answer of this API is larger.
const maxResponseBody = 4 << 20

// exchange is one request and what came back, as it went over the wire.
type exchange struct {
	method, target string // target is the path and query as sent
	reqBody        []byte
	status         int
	header         http.Header
	body           []byte
	err            error // no answer
}

type slotKey struct{}

// recordingDoer sends requests for the generated client and keeps a copy of each
// answer in the exchange carried by the request's context, so a case sees exactly
// what came back even when the generated parser cannot decode it; and it checks
// each answer against the contract.
type recordingDoer struct {
	hc *http.Client
	s  *Session
}

// Do sends r and records it and its answer.
func (d recordingDoer) Do(r *http.Request) (*http.Response, error) {
	x, _ := r.Context().Value(slotKey{}).(*exchange)
	if x == nil {
		x = new(exchange)
	}
	x.method, x.target = r.Method, r.URL.RequestURI()
	if r.GetBody != nil {
		if b, err := r.GetBody(); err == nil {
			x.reqBody, _ = io.ReadAll(b)
		}
	}
	resp, err := d.hc.Do(r)
	if err != nil {
		x.err = err
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	resp.Body.Close()
	if err != nil {
		x.err = err
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	x.status, x.header, x.body = resp.StatusCode, resp.Header, body
	d.s.checkAnswer(envOf(r.Context()), x)
	return resp, nil
}

// call runs one request through the generated client and returns the exchange.
// The generated client's own result is not needed: the exchange holds the answer,
// and a parse error (a body that is not the documented shape) is judged by the case.
func call(ctx context.Context, do func(ctx context.Context) error) *exchange {
	x := new(exchange)
	_ = do(context.WithValue(ctx, slotKey{}, x))
	if x.method == "" && x.err == nil {
		x.err = errors.New("the request could not be built")
	}
	return x
}

// Env is what a case runs with: the session's clients and the labels of the
// fixtures the case made, so failures name {u1} rather than a UUID. Each case
// gets its own Env.
type Env struct {
	s       *Session
	labels  map[string]string // id or token value → label
	made    []fixture         // this case's users and applications, in creation order
	answers answers           // the answers that broke the contract
}

func (s *Session) newEnv() *Env { return &Env{s: s, labels: map[string]string{}} }

// label records that value is to be shown as {name} in reports.
func (e *Env) label(value, name string) { e.labels[value] = "{" + name + "}" }

// show replaces every labelled id and token value in s by its label.
func (e *Env) show(s string) string {
	if len(e.labels) == 0 {
		return s
	}
	keys := make([]string, 0, len(e.labels))
	for k := range e.labels {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return len(keys[i]) > len(keys[j]) || (len(keys[i]) == len(keys[j]) && keys[i] < keys[j])
	})
	pairs := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		pairs = append(pairs, k, e.labels[k])
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// step renders a request for a report: method, path and query, and the body.
func (e *Env) step(x *exchange) string {
	target := x.target
	if u, err := url.QueryUnescape(target); err == nil {
		target = u
	}
	// Show the path as the API names it, whatever prefix the base URL has.
	if p := strings.TrimRight(e.s.base.Path, "/"); p != "" {
		target = strings.TrimPrefix(target, p)
	}
	out := x.method + " " + e.show(target)
	if len(x.reqBody) > 0 {
		// Label first, then shorten: a token value cut in two would not be labelled.
		out += " " + shorten([]byte(e.show(string(x.reqBody))), 160)
	}
	return out
}

// rawRequest is a request the generated client cannot or will not make:
// malformed ids, broken JSON, missing keys, repeated parameters.
type rawRequest struct {
	method string
	target string // path and query, relative to the base URL
	body   []byte
	header map[string]string
	noKey  bool
	key    string // sent instead of the configured key when set
}

func (e *Env) raw(ctx context.Context, rr rawRequest) *exchange {
	x := &exchange{method: rr.method, target: rr.target, reqBody: rr.body}
	var body io.Reader
	if rr.body != nil {
		body = bytes.NewReader(rr.body)
	}
	req, err := http.NewRequestWithContext(ctx, rr.method, strings.TrimRight(e.s.base.String(), "/")+rr.target, body)
	if err != nil {
		x.err = err
		return x
	}
	x.target = req.URL.RequestURI()
	if rr.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case rr.noKey:
	case rr.key != "":
		req.Header.Set("Authorization", rr.key)
	default:
		req.Header.Set("Authorization", e.s.cfg.APIKey)
	}
	if t := tenantOf(ctx); t != "" {
		req.Header.Set(tenantHeader, t)
	} else if e.s.cfg.TenantID != "" {
		req.Header.Set(tenantHeader, e.s.cfg.TenantID)
	}
	for k, v := range rr.header {
		req.Header.Set(k, v)
	}
	resp, err := e.s.hc.Do(req)
	if err != nil {
		x.err = err
		return x
	}
	defer resp.Body.Close()
	x.body, x.err = io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	x.status, x.header = resp.StatusCode, resp.Header
	if x.err == nil {
		e.s.checkAnswer(e, x)
	}
	return x
}

// errorBody is FusionAuth's error format, decoded strictly enough to tell it
// from other JSON.
type errorBody struct {
	FieldErrors   map[string][]errorItem `json:"fieldErrors"`
	GeneralErrors []errorItem            `json:"generalErrors"`
}

type errorItem struct {
	Code    *string `json:"code"`
	Message *string `json:"message"`
}

// codes returns the error codes of a 400 body, sorted, as "field: code" for field
// errors and "general: code" for general ones; an error when the body is not
// FusionAuth's error format.
func codes(body []byte) ([]string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, errors.New("not JSON")
	}
	if _, ok := raw["fieldErrors"]; !ok {
		if _, ok := raw["generalErrors"]; !ok {
			return nil, errors.New("neither fieldErrors nor generalErrors")
		}
	}
	var b errorBody
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, errors.New("fieldErrors or generalErrors has the wrong shape")
	}
	var out []string
	check := func(prefix string, it errorItem) error {
		if it.Code == nil || *it.Code == "" {
			return errors.New("an error without a code")
		}
		if it.Message == nil {
			return fmt.Errorf("error %s without a message", *it.Code)
		}
		out = append(out, prefix+*it.Code)
		return nil
	}
	for field, list := range b.FieldErrors {
		for _, it := range list {
			if err := check(field+": ", it); err != nil {
				return nil, err
			}
		}
	}
	for _, it := range b.GeneralErrors {
		if err := check("general: ", it); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no error in it")
	}
	sort.Strings(out)
	return out, nil
}

// fieldCode and generalCode spell an expected error the way codes reports it.
func fieldCode(field, code string) string { return field + ": " + code }
func generalCode(code string) string      { return "general: " + code }

func isEmpty(body []byte) bool { return len(bytes.TrimSpace(body)) == 0 }

// describe says in a few words what came back.
func describe(x *exchange) string {
	switch {
	case x.err != nil:
		return "no answer: " + x.err.Error()
	case x.status == http.StatusBadRequest:
		if cs, err := codes(x.body); err == nil {
			return "400 with " + strings.Join(cs, ", ")
		} else if isEmpty(x.body) {
			return "400, empty body (not FusionAuth's error format)"
		} else {
			return fmt.Sprintf("400, body %s (not FusionAuth's error format: %v)", shorten(x.body, 200), err)
		}
	case isEmpty(x.body):
		return fmt.Sprintf("%d, empty body", x.status)
	}
	return fmt.Sprintf("%d, body %s", x.status, shorten(x.body, 200))
}

func shorten(b []byte, n int) string {
	s := string(bytes.TrimSpace(b))
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:n], len(b))
}

// failAt builds the failure of a request whose answer was not the expected one.
func (e *Env) failAt(x *exchange, expected string, wantStatus int, wantCodes []string) *Failure {
	f := &Failure{Step: e.step(x), Expected: expected, Actual: e.show(describe(x)),
		ExpectedStatus: wantStatus, ActualStatus: x.status, ExpectedCodes: wantCodes}
	if x.status == http.StatusBadRequest {
		f.ActualCodes, _ = codes(x.body)
	}
	if !isEmpty(x.body) {
		f.ActualBody = e.show(shorten(x.body, 500))
	}
	return f
}

// expectEmpty checks an answer that must be status with an empty body: the
// contract's 200, 401 and 404.
func (e *Env) expectEmpty(x *exchange, status int) *Failure {
	if x.err == nil && x.status == status && isEmpty(x.body) {
		return nil
	}
	return e.failAt(x, fmt.Sprintf("%d, empty body", status), status, nil)
}

// expect400 checks a 400 in FusionAuth's error format whose codes are exactly
// want (in any order).
func (e *Env) expect400(x *exchange, want ...string) *Failure {
	return e.expect400OneOf(x, want)
}

// expect400OneOf accepts any of several exact code sets, for behaviour the
// contract leaves open (which of two duplicates carries the error).
func (e *Env) expect400OneOf(x *exchange, alternatives ...[]string) *Failure {
	if x.err == nil && x.status == http.StatusBadRequest {
		if got, err := codes(x.body); err == nil {
			for _, want := range alternatives {
				if sameSet(got, want) {
					return nil
				}
			}
		}
	}
	var texts []string
	for _, want := range alternatives {
		w := append([]string(nil), want...)
		sort.Strings(w)
		texts = append(texts, strings.Join(w, ", "))
	}
	return e.failAt(x, "400 with "+strings.Join(texts, " — or — "), http.StatusBadRequest, alternatives[0])
}

func sameSet(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	w := append([]string(nil), want...)
	sort.Strings(w)
	for i := range got {
		if got[i] != w[i] {
			return false
		}
	}
	return true
}

// randomHex returns 2n random hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

func ptr[T any](v T) *T { return &v }
