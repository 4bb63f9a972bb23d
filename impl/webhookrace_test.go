package impl_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// TestRevocationsWhileWebhooksComeAndGo: a revocation records its event with a
// delivery for every webhook that wants it; a webhook deleted meanwhile must not
// make the revocation fail (its delivery's foreign key used to: a 500, later a
// 400). Found by the conformance suite running in parallel with its own
// webhook's deletion.
func TestRevocationsWhileWebhooksComeAndGo(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 1, 0)
	user, app := w.users[0], w.apps[0]
	var stop atomic.Bool
	var churn sync.WaitGroup
	churn.Add(1)
	go func() {
		defer churn.Done()
		for !stop.Load() {
			id := s.registerWebhook("https://example.com/hook", "a-signing-secret-of-some-length", "jwt.refresh-token.revoke")
			s.do(req{method: "DELETE", path: "/api/webhook/" + id})
		}
	}()
	var wg sync.WaitGroup
	failures := make(chan string, 400)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				resp := s.do(req{method: "DELETE", path: fmt.Sprintf("/api/jwt/refresh?userId=%s&applicationId=%s", user, app)})
				if resp.Status != 200 {
					failures <- fmt.Sprintf("status %d: %s", resp.Status, resp.Body)
				}
			}
		}()
	}
	wg.Wait()
	stop.Store(true)
	churn.Wait()
	close(failures)
	n := 0
	for f := range failures {
		if n++; n <= 5 {
			t.Error(f)
		}
	}
	if n > 0 {
		t.Fatalf("%d of 400 revocations failed", n)
	}
}
