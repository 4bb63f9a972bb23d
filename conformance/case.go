// Package conformance checks, over HTTP only, that an implementation of the
// FusionAuth refresh-token API behaves as documented: every documented usage of
// DELETE /api/jwt/refresh and its siblings is replayed against fixtures the suite
// makes through the public API, and each answer is compared with the contract.
//
// Cases are data (see Case): a stable id, a title, the documented text they
// replay, the requirement, a profile and a Run function. A Session runs them
// against one server and removes every fixture it made; the reporters turn the
// results into a human report, JUnit XML or JSON. Nothing here writes to a
// global or exits the process.
package conformance

import (
	"context"
	"strings"
	"time"
)

// Profile says how far a case reaches: core holds only what FusionAuth documents
// or is known to do, so any FusionAuth-compatible server should pass it; strict
// adds our own stricter choices (marked "ours" in the wire contract).
type Profile string

// The profiles. Running ProfileStrict runs the core cases too.
const (
	ProfileCore   Profile = "core"
	ProfileStrict Profile = "strict"
)

// ParseProfile accepts "core" and "strict".
func ParseProfile(s string) (Profile, bool) {
	switch Profile(s) {
	case ProfileCore, ProfileStrict:
		return Profile(s), true
	}
	return "", false
}

// includes reports whether running p runs a case of profile c.
func (p Profile) includes(c Profile) bool {
	return c == ProfileCore || p == ProfileStrict
}

// Case is one documented behaviour, declared as data so that it can be listed,
// selected by id and reported without running it.
type Case struct {
	// ID is stable and names what is checked, e.g. "revoke/by-user-and-app/query".
	// Its first segment is the API the case covers.
	ID string
	// Title says in a few words what is replayed.
	Title string
	// Source names the file of the repository Documented is quoted from, by its
	// path from the root: "openapi.yaml" or "docs/fusionauth-compatibility.md".
	Source string
	// Documented holds the documented sentences the case replays, verbatim.
	Documented []string
	// Requirement is what must hold for the case to pass.
	Requirement string
	// Profile is ProfileCore or ProfileStrict.
	Profile Profile
	// Run performs the case. It returns nil on success, a *Failure saying what
	// was expected and what came back, or Skip(reason).
	Run func(ctx context.Context, e *Env) *Failure
}

// API is the first segment of the id: the API the case covers.
func (c Case) API() string {
	api, _, _ := strings.Cut(c.ID, "/")
	return api
}

// Select returns the cases that running profile p includes and whose id starts
// with one of prefixes (all of them when prefixes is empty), in their order.
func Select(cases []Case, p Profile, prefixes []string) []Case {
	var out []Case
	for _, c := range cases {
		if !p.includes(c.Profile) {
			continue
		}
		if len(prefixes) > 0 && !hasAnyPrefix(c.ID, prefixes) {
			continue
		}
		out = append(out, c)
	}
	return out
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// Failure says how a case failed: the step that went wrong and what was expected
// and what came back, in words and, where it applies, as structured detail, so a
// reader can act on it without running the case again.
type Failure struct {
	// Step is the request or check that failed, with the fixtures' ids and token
	// values replaced by their labels: "DELETE /api/jwt/refresh?userId={u2}".
	Step     string `json:"step"`
	Expected string `json:"expected"`
	Actual   string `json:"actual"`
	// Note explains labels or context, e.g. how the fixtures were laid out.
	Note string `json:"note,omitempty"`
	// Kind is KindBehaviour when the case's own check failed, KindSchema when an
	// answer did not match the response the contract declares.
	Kind string `json:"kind"`
	// SchemaPath is, for KindSchema, where in the contract the answer failed: a
	// JSON pointer to the operation's responses or to the schema keyword.
	SchemaPath string `json:"schemaPath,omitempty"`

	ExpectedStatus int      `json:"expectedStatus,omitempty"`
	ActualStatus   int      `json:"actualStatus,omitempty"`
	ExpectedCodes  []string `json:"expectedCodes,omitempty"`
	ActualCodes    []string `json:"actualCodes,omitempty"`
	// ActualBody is the body that came back, shortened, when it matters.
	ActualBody string `json:"actualBody,omitempty"`
	// WronglyKept lists tokens that should be gone and are still there.
	WronglyKept []string `json:"wronglyKept,omitempty"`
	// WronglyGone lists tokens that should remain and are gone.
	WronglyGone []string `json:"wronglyGone,omitempty"`

	skip string
}

// Skip makes a case end as skipped, which is neither a pass nor a failure.
func Skip(reason string) *Failure { return &Failure{skip: reason} }

// Status is the outcome of one case.
type Status string

// The outcomes. A skipped case did not decide anything.
const (
	Passed  Status = "passed"
	Failed  Status = "failed"
	Skipped Status = "skipped"
)

// Result is what running one case gave.
type Result struct {
	ID          string
	Title       string
	Profile     Profile
	Source      string
	Documented  []string
	Requirement string
	Status      Status
	// Failure is set when Status is Failed.
	Failure *Failure
	// SkipReason is set when Status is Skipped.
	SkipReason string
	Duration   time.Duration
}

func resultOf(c Case) Result {
	return Result{ID: c.ID, Title: c.Title, Profile: c.Profile, Source: c.Source,
		Documented: c.Documented, Requirement: c.Requirement}
}

// Report is a whole run: where it ran, with which profile, and each case's result
// in the order the cases were declared.
type Report struct {
	Target  string
	Profile Profile
	Results []Result
}

// Counts returns how many cases passed, failed and were skipped.
func (r *Report) Counts() (passed, failed, skipped int) {
	for _, res := range r.Results {
		switch res.Status {
		case Passed:
			passed++
		case Failed:
			failed++
		case Skipped:
			skipped++
		}
	}
	return
}

// FailedIDs lists the ids of the failed cases, in order.
func (r *Report) FailedIDs() []string {
	var ids []string
	for _, res := range r.Results {
		if res.Status == Failed {
			ids = append(ids, res.ID)
		}
	}
	return ids
}
