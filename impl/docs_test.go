package impl_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"refreshd"
)

// GET /openapi.yaml serves the contract byte for byte, without a key.
func TestOpenAPIServed(t *testing.T) {
	s := newServer(t)
	resp := s.expect(req{method: "GET", path: "/openapi.yaml", noKey: true}, 200)
	if !bytes.Equal(resp.Body, refreshd.OpenAPI) {
		t.Fatalf("GET /openapi.yaml: %d bytes that are not openapi.yaml", len(resp.Body))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/yaml" {
		t.Errorf("Content-Type %q, want application/yaml", ct)
	}
}

// The /docs page and its bundle come from this server alone, and a policy
// forbids the page anything from elsewhere.
func TestDocsPageServedLocally(t *testing.T) {
	s := newServer(t)
	page := s.expect(req{method: "GET", path: "/docs", noKey: true}, 200)
	if !strings.Contains(string(page.Body), `src="docs/redoc.standalone.js"`) {
		t.Fatalf("/docs does not load the bundle this server serves (was it built? run `make build`):\n%s", page.Body)
	}
	csp := page.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "img-src 'self' data:"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	bundle := s.expect(req{method: "GET", path: "/docs/redoc.standalone.js", noKey: true}, 200)
	if len(bundle.Body) < 100_000 {
		t.Errorf("the Redoc bundle is %d bytes", len(bundle.Body))
	}
}

// chromiumFlags are the flags the docs test runs Chromium with: headless, no
// sandbox (CI runs as root), nothing of its own on the network, a fresh profile.
var chromiumFlags = []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync"}

// browserService are the hosts Chromium itself calls (component updates, account
// and autofill services) whatever page it shows, even with the flags that turn
// most of that off; a web page has no business with them.
var browserService = map[string]bool{
	"update.googleapis.com": true, "accounts.google.com": true, "clients2.google.com": true,
	"content-autofill.googleapis.com": true, "optimizationguide-pa.googleapis.com": true,
}

// findChromium returns Debian's chromium (or a chromium-browser), or skips the
// test: the only reason it may skip.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("Chromium is not installed (Debian: apt-get install chromium; `make test` installs it where it can), " +
		"so the /docs page is not rendered in a browser")
	return ""
}

// The reference page renders the contract's operations in a real browser, and
// the page asks nothing of any other host: Chromium sends every request for
// another host to a recording proxy, which must see none.
func TestDocsPageRendersInChromium(t *testing.T) {
	chromium := findChromium(t)
	s := newServer(t)

	var mu sync.Mutex
	var outside []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := strings.Cut(r.Host, ":")
		if !browserService[host] {
			mu.Lock()
			outside = append(outside, r.Method+" "+r.Host+r.URL.Path)
			mu.Unlock()
		}
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer proxy.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append(append([]string{}, chromiumFlags...),
		"--user-data-dir="+t.TempDir(),
		"--proxy-server="+proxy.URL, // loopback (this server) is reached directly; all else goes here
		"--virtual-time-budget=20000",
		"--dump-dom", s.URL+"/docs")
	cmd := exec.CommandContext(ctx, chromium, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, tail(stderr.String(), 2000))
	}
	page := string(dom)
	for _, want := range []string{
		"Revoke refresh tokens by token value, by user, by user and application, or by application",
		"revokeRefreshTokens",
		"Exchange a refresh token for a signed access token (JWT)",
		"refreshd — FusionAuth-compatible refresh-token API",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the rendered /docs page does not show %q (DOM %d bytes):\n%s", want, len(page), tail(page, 1500))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(outside) > 0 {
		t.Errorf("the /docs page made requests outside the server: %q", outside)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
