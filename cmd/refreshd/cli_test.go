package main_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"refreshd/internal/dbtest"
)

// -version names the module version and the revision the binary was built
// from. Built in a plain git clone (as CI builds), the revision must be HEAD's;
// elsewhere (a git worktree, a tarball) the toolchain records none, and -version says so.
func TestVersion(t *testing.T) {
	out, err := exec.Command(binary, "-version").Output()
	if err != nil {
		t.Fatalf("-version: %v", err)
	}
	got := strings.TrimSpace(string(out))
	if !strings.HasPrefix(got, "refreshd ") || !strings.Contains(got, "go1.") {
		t.Fatalf("-version: %q", got)
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Logf("not in a git repository: %q", got)
		return
	}
	root, _ := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	plainClone := false
	if fi, err := os.Stat(filepath.Join(strings.TrimSpace(string(root)), ".git")); err == nil && fi.IsDir() {
		plainClone = true
	}
	switch {
	case strings.Contains(got, "revision "+strings.TrimSpace(string(head))):
	case !plainClone && strings.Contains(got, "revision unknown"):
		t.Logf("built in a git worktree, where the toolchain records no revision: %q", got)
	default:
		t.Errorf("-version: %q, want revision %s", got, strings.TrimSpace(string(head)))
	}
}

// With -log-format json every line is a JSON object, a request's line carries
// its X-Request-Id, and the last line says the server stopped.
func TestJSONLogsAndFinalLine(t *testing.T) {
	dsn := dbtest.NewDSN(t)
	key := "a-test-key-" + uuid.NewString()
	p := start(t, dsn, key, "REFRESHD_LOG_FORMAT=json")
	req, _ := http.NewRequest("GET", p.url+"/api/status", nil)
	req.Header.Set("X-Request-Id", "json-log-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit after SIGTERM:\n%s", p.logs)
	}
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		lines = append(lines, m)
	}
	found := false
	for _, m := range lines {
		if m["msg"] == "request" && m["request_id"] == "json-log-test" && m["route"] == "/api/status" {
			found = true
		}
	}
	if !found {
		t.Errorf("no request line with request_id json-log-test:\n%s", p.logs)
	}
	if last := lines[len(lines)-1]; last["msg"] != "stopped" || last["uptime"] == nil {
		t.Errorf("last line %v, want the one that says the server stopped", last)
	}
}

// -metrics-addr moves /metrics off the API's listener onto its own.
func TestMetricsOnTheirOwnAddress(t *testing.T) {
	dsn := dbtest.NewDSN(t)
	metricsAddr := freeAddr(t)
	p := start(t, dsn, "a-test-key-"+uuid.NewString(), "REFRESHD_METRICS_ADDR="+metricsAddr)
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if status, body := get("http://" + metricsAddr + "/metrics"); status != 200 || !strings.Contains(body, `refreshd_http_requests_total{method="GET",route="/api/status",status="200"}`) {
		t.Errorf("GET /metrics on -metrics-addr: %d\n%.500s", status, body)
	}
	if status, _ := get(p.url + "/metrics"); status != http.StatusNotFound {
		t.Errorf("GET /metrics on the API's address: %d, want 404", status)
	}
}
