package conformance_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"refreshd"
	"refreshd/conformance"
	gen "refreshd/generated"
)

// Our own server passes the whole suite, both profiles, without skips, and the
// suite leaves nothing behind.
func TestRefreshdConforms(t *testing.T) {
	srv := newServer(t)
	for _, profile := range []conformance.Profile{conformance.ProfileCore, conformance.ProfileStrict} {
		t.Run(string(profile), func(t *testing.T) {
			rep := runSuite(t, conformance.Config{URL: srv.URL, APIKey: srv.Key}, profile)
			want := len(conformance.Select(conformance.Cases(), profile, nil))
			if passed, failed, skipped := rep.Counts(); passed != want || failed != 0 || skipped != 0 {
				t.Errorf("got %d passed, %d failed, %d skipped; want %d passed\n%s", passed, failed, skipped, want, text(t, rep))
			}
		})
	}
	expectNoFixtures(t, srv)
}

// In webhook mode the revoke cases also check the events their requests
// recorded, as our dispatcher delivers them; the suite still passes, and deletes
// its webhook at the end.
func TestRefreshdConformsWithWebhooks(t *testing.T) {
	srv := newServer(t)
	startDispatcher(t, srv)
	rep := runSuite(t, conformance.Config{URL: srv.URL, APIKey: srv.Key, WebhookListen: "127.0.0.1:0"}, conformance.ProfileStrict)
	want := len(conformance.Cases())
	if passed, failed, skipped := rep.Counts(); passed != want || failed != 0 || skipped != 0 {
		t.Errorf("got %d passed, %d failed, %d skipped; want %d passed\n%s", passed, failed, skipped, want, text(t, rep))
	}
	expectNoFixtures(t, srv)
}

// With -tenant-id every request is scoped to that tenant, fixtures included, and
// the suite still passes.
func TestRefreshdConformsInATenant(t *testing.T) {
	srv := newServer(t)
	api, err := gen.NewClientWithResponses(srv.URL, gen.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", srv.Key)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	tenant := uuid.New()
	name := "conformance tenant"
	resp, err := api.CreateTenantWithIdWithResponse(context.Background(), tenant, gen.TenantRequest{Tenant: gen.Tenant{Name: &name}})
	if err != nil || resp.StatusCode() != 200 {
		t.Fatalf("create tenant: %v %v", err, resp)
	}
	rep := runSuite(t, conformance.Config{URL: srv.URL, APIKey: srv.Key, TenantID: tenant.String()}, conformance.ProfileStrict)
	if _, failed, skipped := rep.Counts(); failed != 0 || skipped != 0 {
		t.Errorf("got %d failed, %d skipped; want none\n%s", failed, skipped, text(t, rep))
	}
	if del, err := api.DeleteTenantWithResponse(context.Background(), tenant); err != nil || del.StatusCode() != 200 {
		t.Fatalf("delete tenant: %v %v", err, del)
	}
	expectNoFixtures(t, srv)
}

// An interrupted run skips what it did not finish, says it was cut short, and
// Cleanup with a fresh context still removes every fixture.
func TestInterruptedRunCleansUp(t *testing.T) {
	srv := newServerLogging(t, slog.New(slog.DiscardHandler)) // cancelled requests are logged as errors
	s, err := conformance.NewSession(conformance.Config{URL: srv.URL, APIKey: srv.Key, Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cases := conformance.Select(conformance.Cases(), conformance.ProfileStrict, nil)
	rep, err := s.Run(ctx, conformance.ProfileStrict, cases, func(conformance.Result) { cancel() })
	if !errors.Is(err, conformance.ErrCutShort) {
		t.Errorf("Run: got %v, want ErrCutShort", err)
	}
	if _, failed, skipped := rep.Counts(); failed != 0 || skipped == 0 {
		t.Errorf("got %d failed, %d skipped; want 0 failed and some skipped\n%s", failed, skipped, text(t, rep))
	}
	if err := s.Cleanup(context.Background()); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	expectNoFixtures(t, srv)
}

// newLimitedKey makes an API key allowed only the given endpoints and methods.
func newLimitedKey(t *testing.T, srv *server, endpoints map[string][]string) string {
	t.Helper()
	api, err := gen.NewClientWithResponses(srv.URL, gen.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", srv.Key)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	perms := map[string][]gen.APIKeyPermissionsEndpoints{}
	for endpoint, methods := range endpoints {
		for _, m := range methods {
			perms[endpoint] = append(perms[endpoint], gen.APIKeyPermissionsEndpoints(m))
		}
	}
	resp, err := api.CreateAPIKeyWithResponse(context.Background(), gen.APIKeyRequest{ApiKey: gen.APIKey{
		Permissions: &gen.APIKeyPermissions{Endpoints: &perms}}})
	if err != nil || resp.JSON200 == nil || resp.JSON200.ApiKey.Key == nil {
		t.Fatalf("create limited key: %v %v", err, resp)
	}
	return *resp.JSON200.ApiKey.Key
}

// A server that cannot be reached, a key it refuses, a webhook receiver that
// cannot listen or that no delivery reaches, or a key that may not make the
// webhook's signing key is a SetupError and no case runs.
func TestSetupErrors(t *testing.T) {
	srv := newServer(t) // no dispatcher: the server records events but delivers none
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	// A key that may make fixtures but not keys, so the webhook cannot be signed.
	limited := newLimitedKey(t, srv, map[string][]string{"/api/user": {"POST", "DELETE"}, "/api/application": {"POST", "DELETE"},
		"/api/user/refresh-token/import": {"POST"}, "/api/jwt/refresh": {"GET", "DELETE"}, "/api/webhook": {"POST", "DELETE"}})
	for _, tc := range []struct {
		name, url, key, listen, want string
	}{
		{"unreachable", closed.URL, srv.Key, "", "cannot reach"},
		{"wrong key", srv.URL, "not-the-key", "", "answered 401"},
		{"webhook address taken", srv.URL, srv.Key, taken.Addr().String(), "cannot receive webhooks"},
		{"webhook never delivered", srv.URL, srv.Key, "127.0.0.1:0", "no webhook delivery reached"},
		{"keys not allowed", srv.URL, limited, "127.0.0.1:0", "cannot generate the key that signs the webhook"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := conformance.NewSession(conformance.Config{URL: tc.url, APIKey: tc.key,
				WebhookListen: tc.listen, WebhookWait: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := s.Run(context.Background(), conformance.ProfileCore, conformance.Cases(), nil)
			var se *conformance.SetupError
			if !errors.As(err, &se) || !strings.Contains(se.Error(), tc.want) {
				t.Fatalf("Run: got %v, want a SetupError saying %q", err, tc.want)
			}
			if strings.Contains(se.Error(), "\n") {
				t.Errorf("SetupError %q is more than one line", se)
			}
			if passed, failed, _ := rep.Counts(); passed+failed != 0 {
				t.Errorf("cases ran: %d passed, %d failed", passed, failed)
			}
			// Unreachable, the user may or may not exist: Cleanup must say so.
			if err := s.Cleanup(context.Background()); (err != nil) != (tc.name == "unreachable") {
				t.Errorf("Cleanup: %v", err)
			}
		})
	}
	expectNoFixtures(t, srv)
}

// Answers are checked against the contract the session is given: against a copy
// of openapi.yaml that requires every listed token to carry its value, our
// server's listings break it, and the failure is of kind schema with the path of
// the broken rule. An unusable contract is refused before anything is sent.
func TestAnswersCheckedAgainstTheGivenContract(t *testing.T) {
	srv := newServer(t)
	stricter := strings.Replace(string(refreshd.OpenAPI),
		"required: [id, applicationId, userId, tenantId, insertInstant, startInstant, metaData]",
		"required: [id, applicationId, userId, tenantId, insertInstant, startInstant, metaData, token]", 1)
	if stricter == string(refreshd.OpenAPI) {
		t.Fatal("could not find RefreshToken's required list in openapi.yaml")
	}
	s, err := conformance.NewSession(conformance.Config{URL: srv.URL, APIKey: srv.Key, Spec: []byte(stricter)})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Run(context.Background(), conformance.ProfileCore,
		conformance.Select(conformance.Cases(), conformance.ProfileCore, []string{"retrieve/shape"}), nil)
	if cerr := s.Cleanup(context.Background()); cerr != nil {
		t.Errorf("Cleanup: %v", cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || rep.Results[0].Failure == nil {
		t.Fatalf("retrieve/shape against the stricter contract did not fail:\n%s", text(t, rep))
	}
	f := rep.Results[0].Failure
	if f.Kind != conformance.KindSchema || f.SchemaPath != "#/components/schemas/RefreshToken/required" || !strings.Contains(f.Actual, `property "token" is missing`) {
		t.Errorf("failure kind %q, schema path %q, actual %q; want a schema failure at #/components/schemas/RefreshToken/required\n%s",
			f.Kind, f.SchemaPath, f.Actual, text(t, rep))
	}
	expectNoFixtures(t, srv)

	if _, err := conformance.NewSession(conformance.Config{URL: srv.URL, APIKey: srv.Key, Spec: []byte("openapi: 3.0.3\npaths: 7\n")}); err == nil {
		t.Errorf("NewSession accepted a contract that is not an OpenAPI document")
	}
}
