package conformance_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"refreshd/conformance"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// syntheticReport is a fixed run with every outcome and kind of failure, so the
// golden files pin the report formats, not the server's behaviour.
func syntheticReport() *conformance.Report {
	docUser := "Delete all refresh tokens of a user: pass only the userId. `revokeRefreshToken(null, userId)`"
	docUserApp := "Delete all refresh tokens of a user for one application: pass the userId and the applicationId. `revokeRefreshToken(null, userId, applicationId)`"
	return &conformance.Report{
		Target:  "https://auth.example.test",
		Profile: conformance.ProfileStrict,
		Results: []conformance.Result{
			{ID: "revoke/by-user/query", Title: "Revoke all tokens of a user, query parameters", Profile: conformance.ProfileCore,
				Source: "openapi.yaml", Documented: []string{docUser}, Requirement: "Every token of that user is revoked.",
				Status: conformance.Passed, Duration: 42 * time.Millisecond},
			{ID: "revoke/by-user-and-app/query", Title: "Revoke a user's tokens for one application, query parameters", Profile: conformance.ProfileCore,
				Source: "openapi.yaml", Documented: []string{docUserApp, "A bulk form answers 200 also when it revoked nothing."},
				Requirement: "Exactly that user's tokens for that application are revoked; the user's tokens for other applications and other users' tokens for that application remain.",
				Status:      conformance.Failed, Duration: 57 * time.Millisecond,
				Failure: &conformance.Failure{
					Step:        "tokens after DELETE /api/jwt/refresh?userId={u2}&applicationId={a2}",
					Expected:    "gone: u2/a2/1, u2/a2/2; the other 16 remain",
					Actual:      "wrongly gone: u2/a1/1 (not listed, GET by id 404), u2/a1/2 (not listed, GET by id 404), u2/a3/1 (not listed, GET by id 404), u2/a3/2 (not listed, GET by id 404)",
					Note:        "Fixtures: users u1…u3 × applications a1…a3, 2 tokens each; u3/a3/1 is user u3's first token for application a3.",
					WronglyGone: []string{"u2/a1/1", "u2/a1/2", "u2/a3/1", "u2/a3/2"},
				}},
			{ID: "revoke/nothing-selected/bare", Title: "A request that selects nothing is refused", Profile: conformance.ProfileCore,
				Source: "openapi.yaml", Documented: []string{"nothing selected → 400 general `[invalid]`;"},
				Requirement: "DELETE /api/jwt/refresh without parameters or body answers 400 with the general error [invalid] and revokes nothing.",
				Status:      conformance.Failed, Duration: 31 * time.Millisecond,
				Failure: &conformance.Failure{
					Step:           "DELETE /api/jwt/refresh",
					Expected:       "400 with general: [invalid]",
					Actual:         `400, body {"message":"Bad Request"} (not FusionAuth's error format: neither fieldErrors nor generalErrors)`,
					ExpectedStatus: 400, ActualStatus: 400,
					ExpectedCodes: []string{"general: [invalid]"},
					ActualBody:    `{"message":"Bad Request"}`,
				}},
			{ID: "revoke/tenant/unknown", Title: "A tenant header naming no tenant is refused", Profile: conformance.ProfileStrict,
				Source: "openapi.yaml", Documented: []string{"A malformed or unknown tenant id is a 400 with the general error `[invalid]tenantId`."},
				Requirement: "?userId=u1 with X-FusionAuth-TenantId: <an id no tenant has> answers 400 with exactly the general error [invalid]tenantId and revokes nothing.",
				Status:      conformance.Skipped, SkipReason: "interrupted: context canceled", Duration: 3 * time.Millisecond},
			{ID: "import/duplicate/stored", Title: "A token value already stored is a duplicate", Profile: conformance.ProfileCore,
				Source: "docs/fusionauth-compatibility.md", Documented: []string{"A token value that is already stored, or that appears twice in the batch, makes it fail with `[duplicate]refreshTokens.token`."},
				Requirement: "The value of a stored token at index 1 answers 400 with exactly refreshTokens[1].token: [duplicate]refreshTokens.token.",
				Status:      conformance.Failed, Duration: 25 * time.Millisecond,
				Failure: &conformance.Failure{
					Step:           `POST /api/user/refresh-token/import {"refreshTokens":[…]}`,
					Expected:       "400 with refreshTokens[1].token: [duplicate]refreshTokens.token",
					Actual:         "200, empty body",
					ExpectedStatus: 400, ActualStatus: 200,
					ExpectedCodes: []string{"refreshTokens[1].token: [duplicate]refreshTokens.token"},
				}},
			{ID: "import/round-trip", Title: "Imported tokens are stored and listed", Profile: conformance.ProfileCore,
				Source: "docs/fusionauth-compatibility.md", Documented: []string{"An import is stored whole or not at all, the server picks every token's id, and a successful import is answered 200 with an empty body."},
				Requirement: "A batch of 4 tokens answers 200 with an empty body.",
				Status:      conformance.Passed, Duration: 1234 * time.Millisecond},
			{ID: "retrieve-by-id/shape", Title: "A token is fetched by its id in the documented shape", Profile: conformance.ProfileCore,
				Source: "docs/fusionauth-compatibility.md", Documented: []string{"`GET /api/jwt/refresh/{tokenId}` answers `{\"refreshToken\": {…}}` for a live token, and 404 with an empty body for a token that is unknown or expired."},
				Requirement: "GET /api/jwt/refresh/{id of u1/a1/1} answers 200 with {\"refreshToken\": …} naming that token.",
				Status:      conformance.Failed, Duration: 19 * time.Millisecond,
				Failure: &conformance.Failure{
					Step:         "GET /api/jwt/refresh/{u1/a1/1}",
					Expected:     "an answer the contract declares for this operation and status, with a body that matches its schema",
					Actual:       `200, body {"refreshToken":{"id":"{u1/a1/1}","insertInstant":"1700000000000"}}: the body does not match the contract's schema: at /refreshToken/insertInstant: value must be an integer (#/components/schemas/RefreshToken/properties/insertInstant/type)`,
					Kind:         conformance.KindSchema,
					SchemaPath:   "#/components/schemas/RefreshToken/properties/insertInstant/type",
					ActualStatus: 200,
					ActualBody:   `{"refreshToken":{"id":"{u1/a1/1}","insertInstant":"1700000000000"}}`,
				}},
		},
	}
}

func TestReportGoldens(t *testing.T) {
	for _, tc := range []struct {
		file  string
		write func(*bytes.Buffer, *conformance.Report) error
	}{
		{"report.txt", func(b *bytes.Buffer, r *conformance.Report) error { return conformance.WriteText(b, r) }},
		{"report.junit.xml", func(b *bytes.Buffer, r *conformance.Report) error { return conformance.WriteJUnit(b, r) }},
		{"report.json", func(b *bytes.Buffer, r *conformance.Report) error { return conformance.WriteJSON(b, r) }},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.write(&b, syntheticReport()); err != nil {
				t.Fatalf("write: %v", err)
			}
			golden(t, tc.file, b.Bytes())
		})
	}
}

// The live report, written result by result as a run goes, is the same text as
// WriteText of the finished report.
func TestLiveReportIsTheReport(t *testing.T) {
	rep := syntheticReport()
	var live bytes.Buffer
	tr := conformance.NewTextReporter(&live)
	cases := make([]conformance.Case, len(rep.Results))
	for i, r := range rep.Results {
		cases[i] = conformance.Case{ID: r.ID, Title: r.Title}
	}
	tr.Start(rep.Target, rep.Profile, cases)
	for _, r := range rep.Results {
		tr.Case(r)
	}
	if err := tr.Finish(rep); err != nil {
		t.Fatal(err)
	}
	var after bytes.Buffer
	if err := conformance.WriteText(&after, rep); err != nil {
		t.Fatal(err)
	}
	if live.String() != after.String() {
		t.Errorf("live report differs from WriteText:\n%s\n---\n%s", live.String(), after.String())
	}
	last := strings.TrimSpace(live.String())
	if i := strings.LastIndexByte(last, '\n'); !strings.HasSuffix(last[i+1:], "2 passed, 4 failed, 1 skipped") {
		t.Errorf("last line %q, want %q", last[i+1:], "2 passed, 4 failed, 1 skipped")
	}
}

// golden compares got with testdata/name, or rewrites the file under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("..", "testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./conformance -run TestReportGoldens -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < max(len(gl), len(wl)); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s differs at line %d:\ngot  %q\nwant %q\n(run with -update if the change is intended)", path, i+1, g, w)
			}
		}
	}
}
