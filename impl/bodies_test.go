package impl_test

import (
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	gen "refreshd/generated"
)

// TestRequestBodiesDeclareNoDefaults: the validator rewrites a request body when
// its schema sets defaults, and the handlers decode the body as it was read
// (readBody), not the validator's rewrite. A default in a request body schema
// would be silently ignored; this test says so first.
func TestRequestBodiesDeclareNoDefaults(t *testing.T) {
	spec, err := gen.GetSwagger()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[*openapi3.Schema]bool{}
	var walk func(where string, ref *openapi3.SchemaRef)
	walk = func(where string, ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if s.Default != nil {
			t.Errorf("%s declares a default (%v): the handler would not see it", where, s.Default)
		}
		for name, p := range s.Properties {
			walk(where+"."+name, p)
		}
		walk(where+"[]", s.Items)
		if s.AdditionalProperties.Schema != nil {
			walk(where+"{}", s.AdditionalProperties.Schema)
		}
		for _, list := range [][]*openapi3.SchemaRef{s.AllOf, s.AnyOf, s.OneOf} {
			for _, sub := range list {
				walk(where, sub)
			}
		}
		walk(where+"(not)", s.Not)
	}
	bodies := 0
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			if op.RequestBody == nil || op.RequestBody.Value == nil {
				continue
			}
			for mt, content := range op.RequestBody.Value.Content {
				bodies++
				walk(method+" "+path+" "+mt, content.Schema)
			}
		}
	}
	if bodies == 0 {
		t.Fatal("the contract has no request bodies: the walk is broken")
	}
}
