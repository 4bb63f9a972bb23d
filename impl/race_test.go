package impl_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// These tests hammer exchange against revocation over real HTTP and a real
// PostgreSQL. Run them many times: go test -race -run Race -count 50 ./impl/

// TestRaceOneTimeUseExactlyOneWins: of many concurrent exchanges of one
// one-time-use token (no grace period), exactly one succeeds.
func TestRaceOneTimeUseExactlyOneWins(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 0, 0)
	app := s.appWith(map[string]any{"refreshTokenUsagePolicy": "OneTimeUse"})
	s.importToken(w.users[0], app, "once", nowMillis()-60_000)
	const n = 16
	var wins, refusals atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp := s.do(req{method: "POST", path: "/api/jwt/refresh", noKey: true, body: map[string]any{"refreshToken": "once"}})
			switch resp.Status {
			case 200:
				wins.Add(1)
			case 400:
				refusals.Add(1)
			default:
				t.Errorf("exchange: status %d: %s", resp.Status, resp.Body)
			}
		}()
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 || refusals.Load() != n-1 {
		t.Fatalf("got %d successes and %d refusals, want 1 and %d", wins.Load(), refusals.Load(), n-1)
	}
	if ids := s.tokenIDs(w.users[0]); len(ids) != 1 {
		t.Fatalf("tokens after the race: got %d, want 1 (the successor)", len(ids))
	}
}

// TestRaceRevokeWinsOverExchange: for every revoke form, exchanges keep running
// while the revocation happens; none sent after its 200 succeeds with a revoked
// token, and (for rotating tokens) no successor survives a bulk revocation.
func TestRaceRevokeWinsOverExchange(t *testing.T) {
	forms := []struct {
		name  string
		usage string
		// single: the revocation kills chain 0 only.
		single bool
		// revoke returns the request that revokes the tokens of user u / app a
		// (or the single token with value v, whose id is id).
		revoke func(u, a uuid.UUID, v, id string) req
	}{
		{"by-token", "Reusable", true, func(_, _ uuid.UUID, v, _ string) req {
			return req{method: "DELETE", path: "/api/jwt/refresh", body: map[string]any{"token": v}}
		}},
		// The id learnt before the chain rotated kills the session however often it rotated since.
		{"by-id-rotating", "OneTimeUse", true, func(_, _ uuid.UUID, _, id string) req {
			return req{method: "DELETE", path: "/api/jwt/refresh/" + id}
		}},
		{"logout", "Reusable", true, func(_, _ uuid.UUID, v, _ string) req {
			return req{method: "POST", path: "/api/logout", noKey: true, body: map[string]any{"refreshToken": v}}
		}},
		{"by-user", "OneTimeUse", false, func(u, _ uuid.UUID, _, _ string) req {
			return req{method: "DELETE", path: "/api/jwt/refresh?userId=" + u.String()}
		}},
		{"by-user-and-app", "OneTimeUse", false, func(u, a uuid.UUID, _, _ string) req {
			return req{method: "DELETE", path: fmt.Sprintf("/api/jwt/refresh?userId=%s&applicationId=%s", u, a)}
		}},
		{"by-app", "OneTimeUse", false, func(_, a uuid.UUID, _, _ string) req {
			return req{method: "DELETE", path: "/api/jwt/refresh?applicationId=" + a.String()}
		}},
		{"by-user-reusable", "Reusable", false, func(u, _ uuid.UUID, _, _ string) req {
			return req{method: "DELETE", path: "/api/jwt/refresh?userId=" + u.String()}
		}},
	}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			s := newServer(t)
			w := s.seed(1, 0, 0)
			user := w.users[0]
			app := s.appWith(map[string]any{"refreshTokenUsagePolicy": f.usage})
			const chains = 6
			values := make([]string, chains)
			for i := range values {
				values[i] = fmt.Sprintf("chain-%d-%s", i, uuid.NewString())
				s.importToken(user, app, values[i], nowMillis()-60_000)
			}
			var firstID string
			if err := s.Store.DB().Get(&firstID, `SELECT id FROM refresh_tokens WHERE token_hash = sha256($1::bytea)`,
				[]byte(values[0])); err != nil {
				t.Fatal(err)
			}
			var revokeStarted, revokedAt atomic.Int64 // unix nanos; 0 before
			// dead reports whether chain i is one the revocation kills.
			dead := func(i int) bool { return !f.single || i == 0 }
			var wg sync.WaitGroup
			stop := make(chan struct{})
			var lateSuccesses atomic.Int32
			for i := 0; i < chains; i++ {
				wg.Add(1)
				go func(i int, value string) {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						sentAfter := revokedAt.Load() != 0
						resp := s.do(req{method: "POST", path: "/api/jwt/refresh", noKey: true, body: map[string]any{"refreshToken": value}})
						switch resp.Status {
						case 200:
							if sentAfter && dead(i) {
								lateSuccesses.Add(1)
							}
							var out exchanged
							if err := json.Unmarshal(resp.Body, &out); err != nil {
								t.Errorf("decode: %v", err)
								return
							}
							value = out.RefreshToken // follow the chain when tokens rotate
						case 400:
							if revokeStarted.Load() == 0 || !dead(i) {
								// Nothing but the revocation refuses a live chain.
								t.Errorf("chain %d refused without a revocation: %s", i, resp.Body)
							}
							if sentAfter {
								return
							}
						default:
							t.Errorf("exchange: status %d: %s", resp.Status, resp.Body)
							return
						}
					}
				}(i, values[i])
			}
			time.Sleep(150 * time.Millisecond) // let the chains run
			revokeStarted.Store(time.Now().UnixNano())
			resp := s.do(f.revoke(user, app, values[0], firstID))
			revokedAt.Store(time.Now().UnixNano())
			if resp.Status != 200 {
				t.Fatalf("revoke: status %d: %s", resp.Status, resp.Body)
			}
			time.Sleep(100 * time.Millisecond)
			close(stop)
			wg.Wait()
			if n := lateSuccesses.Load(); n != 0 {
				t.Fatalf("%d exchanges sent after the revocation answered succeeded", n)
			}
			if f.single {
				// Only the named session died: it must be gone, the others still exchange.
				if _, status := s.token(firstID); status != 404 {
					t.Fatalf("the revoked session: GET by id %d, want 404", status)
				}
				if n := len(s.tokenIDs(user)); n != chains-1 {
					t.Fatalf("sessions after the revocation: %d, want %d", n, chains-1)
				}
				return
			}
			if ids := s.tokenIDs(user); len(ids) != 0 {
				t.Fatalf("%d tokens survived the revocation", len(ids))
			}
		})
	}
}
