package main_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"refreshd/internal/dbtest"
)

// readmeMarker precedes each README block the tour test runs. In such a block a
// line starting with "$ " is a command, the indented lines after it continue it,
// and the other lines up to the next command are what it must print, line for
// line, with "…" standing for any text. Unmarked blocks are not run.
const readmeMarker = "<!-- readme-test: run -->"

// readmeAddr is the address the README's commands use, that of `make run`; the
// test puts its own server's address in its place.
const readmeAddr = "127.0.0.1:9011"

type readmeCommand struct {
	line int    // in README.md, for messages
	text string // what the shell runs
	want []string
}

// readmeCommands returns the commands of the marked blocks, in order.
func readmeCommands(t *testing.T, path string) []readmeCommand {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []readmeCommand
	sc := bufio.NewScanner(f)
	n, marked, inBlock := 0, false, false
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case !inBlock && strings.TrimSpace(line) == readmeMarker:
			marked = true
		case !inBlock && marked && strings.HasPrefix(line, "```"):
			inBlock, marked = true, false
		case !inBlock && marked && strings.TrimSpace(line) != "":
			t.Fatalf("README.md:%d: %s is not followed by a fenced block", n, readmeMarker)
		case inBlock && strings.HasPrefix(line, "```"):
			inBlock = false
		case inBlock && strings.HasPrefix(line, "$ "):
			out = append(out, readmeCommand{line: n, text: strings.TrimPrefix(line, "$ ")})
		case inBlock && len(out) == 0:
			t.Fatalf("README.md:%d: a marked block must start with a command (\"$ …\")", n)
		case inBlock && (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) && len(out[len(out)-1].want) == 0:
			out[len(out)-1].text += "\n" + line
		case inBlock:
			out[len(out)-1].want = append(out[len(out)-1].want, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// matches reports whether got is want, where "…" in want stands for any text.
func matches(want, got string) bool {
	parts := strings.Split(want, "…")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$").MatchString(got)
}

// TestReadmeTour runs the README's marked commands, in order and in one shell (so
// variables carry from one to the next), from a folder laid out like the
// repository after `make run` (.data/dev-api-key), against a fresh server of
// its own, and checks that each prints what the README says it prints.
func TestReadmeTour(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("the README's examples use curl, which is not installed: %v", err)
	}
	commands := readmeCommands(t, filepath.Join("..", "..", "README.md"))
	if len(commands) < 10 {
		t.Fatalf("found %d marked commands in README.md; the tour has more", len(commands))
	}
	key := "readme-key-" + uuid.NewString()
	p := start(t, dbtest.NewDSN(t), key)
	addr := strings.TrimPrefix(p.url, "http://")

	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, ".data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".data", "dev-api-key"), []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	var script strings.Builder
	for i, c := range commands {
		// A group command runs in the shell itself, so its assignments last.
		fmt.Fprintf(&script, "{ %s\n} > %s/%d.out 2> %s/%d.err\necho $? > %s/%d.rc\n",
			strings.ReplaceAll(c.text, readmeAddr, addr), outDir, i, outDir, i, outDir, i)
	}
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the tour's shell failed: %v\n%s", err, out)
	}
	for i, c := range commands {
		read := func(ext string) string {
			b, err := os.ReadFile(filepath.Join(outDir, strconv.Itoa(i)+ext))
			if err != nil {
				t.Fatalf("README.md:%d: %v", c.line, err)
			}
			return strings.TrimRight(string(b), "\n")
		}
		if rc := read(".rc"); rc != "0" {
			t.Errorf("README.md:%d: exit status %s\n$ %s\nstderr: %s", c.line, rc, c.text, read(".err"))
			continue
		}
		var got []string
		if out := read(".out"); out != "" {
			got = strings.Split(out, "\n")
		}
		ok := len(got) == len(c.want)
		for j := 0; ok && j < len(got); j++ {
			ok = matches(strings.ReplaceAll(c.want[j], readmeAddr, addr), got[j])
		}
		if !ok {
			t.Errorf("README.md:%d: the README says\n$ %s\nprints\n%s\nbut it printed\n%s\nstderr: %s", c.line, c.text,
				strings.Join(c.want, "\n"), strings.Join(got, "\n"), read(".err"))
		}
	}
}

// The matcher the tour relies on: "…" stands for any text, everything else is literal.
func TestReadmeMatcher(t *testing.T) {
	for _, tc := range []struct {
		want, got string
		ok        bool
	}{
		{`{"status":"ok"}`, `{"status":"ok"}`, true},
		{`{"status":"ok"}`, `{"status":"okay"}`, false},
		{`{"id":"…","a":1}`, `{"id":"x-y","a":1}`, true},
		{`{"id":"…","a":1}`, `{"id":"x-y","a":2}`, false},
		{`[{…},{…}]`, `[{"a":1}]`, false},
		{`a.c`, `abc`, false},
	} {
		if got := matches(tc.want, tc.got); got != tc.ok {
			t.Errorf("matches(%q, %q) = %v, want %v", tc.want, tc.got, got, tc.ok)
		}
	}
}
