package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"refreshd"
)

// Failure kinds: a case's own check failed, or an answer did not match the
// response the contract declares for its operation.
const (
	KindBehaviour = "behaviour"
	KindSchema    = "schema"
)

// contract is the OpenAPI document every answer is checked against.
type contract struct {
	doc    *openapi3.T
	router routers.Router
}

// loadContract parses an OpenAPI 3 document (YAML or JSON); nil means the
// contract this suite was built with, refreshd's openapi.yaml.
func loadContract(spec []byte) (*contract, error) {
	if spec == nil {
		spec = refreshd.OpenAPI
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("the contract does not load: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("the contract is not a valid OpenAPI document: %w", err)
	}
	// Match paths only: the server under test is wherever -url says.
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("the contract's paths: %w", err)
	}
	return &contract{doc: doc, router: router}, nil
}

// violation is an answer that does not match the contract.
type violation struct {
	x          *exchange
	schemaPath string // where in the contract: the response or schema that was not met
	problem    string // what did not match, in words
}

// check validates one answer against the response the contract declares for
// its operation and status; path is the request path as the API names it.
func (c *contract) check(x *exchange, path string) *violation {
	if x.err != nil || x.status == 0 {
		return nil // no answer to check; the case reports that
	}
	req, err := http.NewRequest(x.method, "http://server.invalid"+path, nil)
	if err != nil {
		return nil
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		return &violation{x: x, schemaPath: "#/paths", problem: fmt.Sprintf("the contract has no operation %s %s", x.method, routePath(path))}
	}
	// A response's content map lists the payloads it may carry, not one it must:
	// an answer with no body and no Content-Type (FusionAuth's empty 200, where the
	// contract also declares an optional receipt) has its status checked only.
	// Cases that need a body check for one themselves.
	empty := len(bytes.TrimSpace(x.body)) == 0 && x.header.Get("Content-Type") == ""
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 x.status,
		Header:                 x.header,
		Body:                   io.NopCloser(bytes.NewReader(x.body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, ExcludeResponseBody: empty},
	}
	err = openapi3filter.ValidateResponse(context.Background(), input)
	if err == nil {
		return nil
	}
	op := "#/paths/" + pointerEscape(route.Path) + "/" + strings.ToLower(x.method)
	var re *openapi3filter.ResponseError
	if !errors.As(err, &re) {
		return &violation{x: x, schemaPath: op + "/responses", problem: err.Error()}
	}
	status := strconv.Itoa(x.status)
	switch {
	case re.Reason == "status is not supported":
		return &violation{x: x, schemaPath: op + "/responses",
			problem: fmt.Sprintf("status %d is not one the contract declares for %s %s", x.status, x.method, route.Path)}
	case re.Err == nil:
		return &violation{x: x, schemaPath: op + "/responses/" + status + "/content", problem: re.Reason}
	}
	root := route.Operation.Responses.Status(x.status)
	var schema *openapi3.SchemaRef
	if root != nil && root.Value != nil {
		if mt := root.Value.Content.Get(x.header.Get("Content-Type")); mt != nil {
			schema = mt.Schema
		}
	}
	base := op + "/responses/" + status + "/content/" + pointerEscape(mediaType(x.header)) + "/schema"
	// The same rule broken by every item of a list is one problem, shown once.
	type problem struct {
		where, reason, at string
		more              int
	}
	var problems []*problem
	seen := map[string]*problem{}
	for _, se := range schemaErrors(re.Err) {
		at := se.JSONPointer()
		if se.SchemaField == "required" && len(at) > 0 {
			at = at[:len(at)-1] // the pointer names the missing property; the rule is its parent's
		}
		where := schemaPathOf(base, schema, at, se.SchemaField)
		if p := seen[where+se.Reason]; p != nil {
			p.more++
			continue
		}
		p := &problem{where: where, reason: se.Reason, at: "/" + strings.Join(at, "/")}
		seen[where+se.Reason] = p
		problems = append(problems, p)
	}
	if len(problems) == 0 {
		return &violation{x: x, schemaPath: base, problem: re.Error()}
	}
	texts := make([]string, len(problems))
	for i, p := range problems {
		more := ""
		if p.more > 0 {
			more = fmt.Sprintf(" and %d more like it", p.more)
		}
		texts[i] = fmt.Sprintf("at %s%s: %s (%s)", p.at, more, p.reason, p.where)
	}
	sort.Strings(texts)
	return &violation{x: x, schemaPath: problems[0].where,
		problem: "the body does not match the contract's schema: " + strings.Join(texts, "; ")}
}

func mediaType(h http.Header) string {
	mt, _, _ := strings.Cut(h.Get("Content-Type"), ";")
	return strings.TrimSpace(mt)
}

func schemaErrors(err error) []*openapi3.SchemaError {
	switch e := err.(type) {
	case *openapi3.SchemaError:
		return []*openapi3.SchemaError{e}
	case openapi3.MultiError:
		var out []*openapi3.SchemaError
		for _, inner := range e {
			out = append(out, schemaErrors(inner)...)
		}
		return out
	}
	return nil
}

// schemaPathOf follows a failing value's position through the response schema
// and names the keyword that failed, in the contract's own terms: the component
// schema the value falls under when there is one ("#/components/schemas/
// RefreshToken/required"), else the path from the response.
func schemaPathOf(base string, ref *openapi3.SchemaRef, pointer []string, keyword string) string {
	path := base
	for _, seg := range pointer {
		if ref == nil || ref.Value == nil {
			break
		}
		if ref.Ref != "" && strings.HasPrefix(ref.Ref, "#/") {
			path = ref.Ref
		}
		s := ref.Value
		switch {
		case s.Items != nil && isIndex(seg):
			path += "/items"
			ref = s.Items
		case s.Properties[seg] != nil:
			path += "/properties/" + pointerEscape(seg)
			ref = s.Properties[seg]
		case s.AdditionalProperties.Schema != nil:
			path += "/additionalProperties"
			ref = s.AdditionalProperties.Schema
		default:
			ref = nil
		}
	}
	if ref != nil && ref.Ref != "" && strings.HasPrefix(ref.Ref, "#/") {
		path = ref.Ref
	}
	if keyword != "" {
		path += "/" + keyword
	}
	return path
}

func isIndex(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

func pointerEscape(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// routePath is the request path without its query, for messages.
func routePath(p string) string {
	path, _, _ := strings.Cut(p, "?")
	return path
}

// answers collects the contract violations of the answers one case received.
type answers struct {
	mu         sync.Mutex
	violations []*violation
}

func (a *answers) add(v *violation) {
	a.mu.Lock()
	a.violations = append(a.violations, v)
	a.mu.Unlock()
}

func (a *answers) first() *violation {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.violations) == 0 {
		return nil
	}
	return a.violations[0]
}

type envKey struct{}

// envOf returns the case whose context ctx is, or nil outside a case.
func envOf(ctx context.Context) *Env {
	e, _ := ctx.Value(envKey{}).(*Env)
	return e
}

// checkAnswer validates x against the contract and files a violation with the
// case e (nil: a request outside any case, which is not checked).
func (s *Session) checkAnswer(e *Env, x *exchange) {
	if e == nil || s.contract == nil {
		return
	}
	path := x.target
	if p := strings.TrimRight(s.base.Path, "/"); p != "" {
		path = strings.TrimPrefix(path, p)
	}
	if v := s.contract.check(x, path); v != nil {
		e.answers.add(v)
	}
}

// schemaFailure reports the first answer of a case that broke the contract.
func (e *Env) schemaFailure(v *violation) *Failure {
	f := e.failAt(v.x, "an answer the contract declares for this operation and status, with a body that matches its schema",
		0, nil)
	f.Kind = KindSchema
	f.SchemaPath = v.schemaPath
	f.Actual = e.show(fmt.Sprintf("%s: %s", describe(v.x), v.problem))
	f.ExpectedStatus = 0
	return f
}
