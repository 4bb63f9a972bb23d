package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"refreshd/impl/store"
	"refreshd/internal/dbtest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "refreshd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "refreshd")
	// -buildvcs=auto, as `make build` builds it, so that -version can be checked.
	if out, err := exec.Command("go", "build", "-buildvcs=auto", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build refreshd: %v\n%s", err, out)
		os.Exit(1)
	}
	dbtest.Main(m, store.MigrateDSN)
	os.RemoveAll(dir)
}

// process is the server binary running against a database.
type process struct {
	cmd  *exec.Cmd
	url  string
	logs *syncBuffer
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs the server binary on a free port with env added to its environment,
// and waits until it answers.
func start(t *testing.T, dsn, key string, env ...string) *process {
	t.Helper()
	addr := freeAddr(t)
	p := &process{url: "http://" + addr, logs: &syncBuffer{}}
	p.cmd = exec.Command(binary)
	p.cmd.Env = append(os.Environ(), "DATABASE_URL="+dsn, "REFRESHD_API_KEY="+key, "REFRESHD_ADDR="+addr,
		"REFRESHD_LOG_LEVEL=debug")
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.url + "/api/status")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server did not come up:\n%s", p.logs)
	return nil
}

// freeAddr returns a loopback address nothing listens on at the moment.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func call(t *testing.T, p *process, key, method, path string, body any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		r = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, p.url+path, r)
	req.Header.Set("Authorization", key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	return resp.StatusCode
}

// TestEventSurvivesSIGKILL: a revocation answered 200 by a server that is killed
// at once (SIGKILL, no shutdown) is still delivered, by the next server started
// on the same database. The receiver refuses everything until the first server
// is dead, so the first server cannot have delivered it.
func TestEventSurvivesSIGKILL(t *testing.T) {
	dsn := dbtest.NewDSN(t)
	key := "a-test-key-" + uuid.NewString()
	var down atomic.Bool
	down.Store(true)
	got := make(chan map[string]any, 10)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var env struct {
			Event map[string]any `json:"event"`
		}
		_ = json.NewDecoder(r.Body).Decode(&env)
		got <- env.Event
	}))
	defer rcv.Close()

	first := start(t, dsn, key)
	user, app := uuid.NewString(), uuid.NewString()
	const secretToken = "sigkill-refresh-token-value"
	steps := []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/webhook", map[string]any{"webhook": map[string]any{"url": rcv.URL, "global": true,
			"eventsEnabled": map[string]bool{"jwt.refresh-token.revoke": true}}}},
		{"POST", "/api/application/" + app, map[string]any{"application": map[string]any{"name": "a"}}},
		{"POST", "/api/user/" + user, map[string]any{"user": map[string]any{"email": "k@example.com"}}},
		{"POST", "/api/user/refresh-token/import", map[string]any{"refreshTokens": []map[string]any{{"token": secretToken,
			"userId": user, "applicationId": app, "startInstant": time.Now().Add(-time.Minute).UnixMilli()}}}},
		{"DELETE", "/api/jwt/refresh?token=" + secretToken + "&userId=" + user, nil},
	}
	for _, st := range steps {
		if status := call(t, first, key, st.method, st.path, st.body); status != 200 {
			t.Fatalf("%s %s: status %d", st.method, st.path, status)
		}
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.cmd.Wait()
	down.Store(false)

	second := start(t, dsn, key)
	select {
	case e := <-got:
		if e["type"] != "jwt.refresh-token.revoke" || e["userId"] != user {
			t.Fatalf("event: %v", e)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the revocation's event was not delivered after the restart:\n%s", second.logs)
	}
	for _, p := range []*process{first, second} {
		if strings.Contains(p.logs.String(), secretToken) {
			t.Fatalf("a token value was logged:\n%s", p.logs)
		}
	}
}
