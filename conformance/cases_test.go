package conformance_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"refreshd/conformance"
)

// Case ids are unique, well formed and grouped by the API they cover, and every
// case says what it replays and requires.
func TestCasesAreWellDeclared(t *testing.T) {
	idRE := regexp.MustCompile(`^[a-z]+(-[a-z]+)*(/[a-z0-9]+(-[a-z0-9]+)*)+$`)
	seen := map[string]bool{}
	var apis []string
	for _, c := range conformance.Cases() {
		if seen[c.ID] {
			t.Errorf("id %s declared twice", c.ID)
		}
		seen[c.ID] = true
		if !idRE.MatchString(c.ID) {
			t.Errorf("id %q is not of the form api/what/…", c.ID)
		}
		if len(apis) == 0 || apis[len(apis)-1] != c.API() {
			for _, a := range apis {
				if a == c.API() {
					t.Errorf("case %s is not grouped with the other %s cases", c.ID, a)
				}
			}
			apis = append(apis, c.API())
		}
		if c.Title == "" || c.Requirement == "" || len(c.Documented) == 0 || c.Run == nil {
			t.Errorf("case %s lacks a title, requirement, documented text or Run", c.ID)
		}
		if _, ok := conformance.ParseProfile(string(c.Profile)); !ok {
			t.Errorf("case %s: profile %q", c.ID, c.Profile)
		}
	}
	want := []string{"revoke", "revoke-by-id", "retrieve", "retrieve-by-id", "import", "exchange", "logout", "delete",
		"oauth-revoke", "validate", "ssf"}
	if strings.Join(apis, " ") != strings.Join(want, " ") {
		t.Errorf("APIs in order %v, want %v", apis, want)
	}
}

// Every case cites a file of the repository, and each sentence it quotes is
// really in that file (line breaks aside), so the report never claims a sentence
// the contract does not say and a reader can always open the source.
func TestQuotesAreInTheirSources(t *testing.T) {
	files := map[string]string{}
	for _, c := range conformance.Cases() {
		text, ok := files[c.Source]
		if !ok {
			raw, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(c.Source)))
			if err != nil || c.Source == "" || filepath.IsAbs(c.Source) || strings.Contains(c.Source, "..") {
				t.Errorf("case %s cites %q, which is not a file of the repository: %v", c.ID, c.Source, err)
				continue
			}
			text = strings.Join(strings.Fields(string(raw)), " ")
			files[c.Source] = text
		}
		for _, q := range c.Documented {
			if !strings.Contains(text, strings.Join(strings.Fields(q), " ")) {
				t.Errorf("case %s quotes %q, which %s does not say", c.ID, q, c.Source)
			}
		}
	}
}

// Profiles and -run prefixes select as documented: core never runs a strict case,
// strict runs everything, prefixes narrow either.
func TestSelect(t *testing.T) {
	all := conformance.Cases()
	core := conformance.Select(all, conformance.ProfileCore, nil)
	strict := conformance.Select(all, conformance.ProfileStrict, nil)
	if len(strict) != len(all) {
		t.Errorf("strict selects %d of %d cases", len(strict), len(all))
	}
	for _, c := range core {
		if c.Profile != conformance.ProfileCore {
			t.Errorf("core selects strict case %s", c.ID)
		}
	}
	if len(core) == len(all) || len(core) == 0 {
		t.Errorf("core selects %d of %d cases", len(core), len(all))
	}
	got := conformance.Select(all, conformance.ProfileStrict, []string{"import/missing/", "revoke-by-id/path"})
	var ids []string
	for _, c := range got {
		ids = append(ids, c.ID)
	}
	want := "revoke-by-id/path import/missing/token import/missing/user-id import/missing/application-id import/missing/start-instant import/missing/list"
	if strings.Join(ids, " ") != want {
		t.Errorf("Select by prefix: got %v, want %v", ids, want)
	}
}
