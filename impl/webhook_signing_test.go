package impl_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/FusionAuth/go-client/pkg/fusionauth"
	"github.com/google/uuid"

	"refreshd/impl"
)

func goClient(t *testing.T, s *testServer) *fusionauth.FusionAuthClient {
	t.Helper()
	base, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	return fusionauth.NewClient(&http.Client{Timeout: 30 * time.Second}, base, s.Key)
}

// TestFusionAuthReceiverAcceptsEveryEvent: receivers written from FusionAuth's
// documentation, one per kind of key, accept every event of every kind, through
// webhooks and keys made with FusionAuth's Go client.
func TestFusionAuthReceiverAcceptsEveryEvent(t *testing.T) {
	s := newServer(t)
	c := goClient(t, s)
	startDispatcher(t, s)
	type hook struct {
		alg fusionauth.KeyAlgorithm
		rcv *faReceiver
	}
	var hooks []hook
	for _, alg := range []fusionauth.KeyAlgorithm{fusionauth.KeyAlgorithm_RS256, fusionauth.KeyAlgorithm_ES256, fusionauth.KeyAlgorithm_HS256} {
		kr, errs, err := c.GenerateKey("", fusionauth.KeyRequest{Key: fusionauth.Key{Algorithm: alg, Name: "webhooks " + string(alg)}})
		mustOK(t, "GenerateKey "+string(alg), kr.StatusCode, errs, err)
		user, pass := "hook-"+string(alg), "pass:word "+uuid.NewString()
		rcv := newFAReceiver(t, s.URL+"/.well-known/jwks.json", kr.Key.Secret, kr.Key.Kid, user, pass)
		wr, errs, err := c.CreateWebhook("", fusionauth.WebhookRequest{Webhook: fusionauth.Webhook{
			Url: rcv.srv.URL, Global: true,
			EventsEnabled: map[fusionauth.EventType]bool{fusionauth.EventType_JWTRefreshTokenRevoke: true, fusionauth.EventType_JWTRefresh: true},
			SignatureConfiguration: fusionauth.WebhookSignatureConfiguration{Enableable: fusionauth.Enableable{Enabled: true},
				SigningKeyId: kr.Key.Id},
			HttpAuthenticationUsername: user, HttpAuthenticationPassword: pass,
		}})
		mustOK(t, "CreateWebhook", wr.StatusCode, errs, err)
		got, err := c.RetrieveWebhook(wr.Webhook.Id)
		if err != nil || got.StatusCode != 200 {
			t.Fatalf("RetrieveWebhook: %d %v", got.StatusCode, err)
		}
		sc := got.Webhook.SignatureConfiguration
		if !sc.Enabled || sc.SigningKeyId != kr.Key.Id || got.Webhook.HttpAuthenticationUsername != user ||
			got.Webhook.HttpAuthenticationPassword != "" {
			t.Fatalf("RetrieveWebhook: signature %+v, username %q, password %q; want the key, the username and no password",
				sc, got.Webhook.HttpAuthenticationUsername, got.Webhook.HttpAuthenticationPassword)
		}
		hooks = append(hooks, hook{alg, rcv})
	}

	w := s.seed(2, 2, 1)
	s.mustExchange(w.tokens[pair{w.users[0], w.apps[0]}][0])                                     // jwt.refresh
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + w.users[0].String()}, 200) // by user
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?applicationId=" + w.apps[1].String()}, 200)
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh", body: map[string]any{
		"token": w.tokens[pair{w.users[1], w.apps[0]}][0], "eventInfo": map[string]any{"userAgent": "ua"}}}, 200)
	for _, h := range hooks {
		t.Run(string(h.alg), func(t *testing.T) {
			h.rcv.t = t
			events := h.rcv.waitFor(4)
			var types []string
			for _, e := range events {
				types = append(types, e["type"].(string))
			}
			if strings.Join(types, " ") != "jwt.refresh jwt.refresh-token.revoke jwt.refresh-token.revoke jwt.refresh-token.revoke" {
				t.Fatalf("events: %v", types)
			}
		})
	}
}

// TestFAReceiverRefusesForgeries shows the receiver of the test above can fail:
// a body changed after signing, a signature by another key, and no signature.
func TestFAReceiverRefusesForgeries(t *testing.T) {
	s := newServer(t)
	c := goClient(t, s)
	startDispatcher(t, s)
	rsaKey, errs, err := c.GenerateKey("", fusionauth.KeyRequest{Key: fusionauth.Key{Algorithm: fusionauth.KeyAlgorithm_RS256, Name: "signer"}})
	mustOK(t, "GenerateKey", rsaKey.StatusCode, errs, err)
	other, errs, err := c.GenerateKey("", fusionauth.KeyRequest{Key: fusionauth.Key{Algorithm: fusionauth.KeyAlgorithm_RS256, Name: "other"}})
	mustOK(t, "GenerateKey", other.StatusCode, errs, err)

	// A relay keeps what the server sent, so the checks below replay real deliveries.
	var mu sync.Mutex
	var sent []http.Header
	var bodies [][]byte
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		sent, bodies = append(sent, r.Header.Clone()), append(bodies, b)
		mu.Unlock()
	}))
	defer relay.Close()
	for _, key := range []string{rsaKey.Key.Id, other.Key.Id} {
		wr, errs, err := c.CreateWebhook("", fusionauth.WebhookRequest{Webhook: fusionauth.Webhook{Url: relay.URL, Global: true,
			EventsEnabled:          map[fusionauth.EventType]bool{fusionauth.EventType_JWTRefreshTokenRevoke: true},
			SignatureConfiguration: fusionauth.WebhookSignatureConfiguration{Enableable: fusionauth.Enableable{Enabled: true}, SigningKeyId: key}}})
		mustOK(t, "CreateWebhook", wr.StatusCode, errs, err)
	}
	w := s.seed(1, 1, 1)
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + w.users[0].String()}, 200)
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(sent)
		mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries: %d, want 2", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	rcv := newFAReceiver(t, s.URL+"/.well-known/jwks.json", "", rsaKey.Key.Kid, "", "")
	var good, byOther int
	for i, h := range sent {
		sig, body := h.Get(impl.SignatureJWTHeader), bodies[i]
		err := rcv.verify(sig, body)
		if err == nil {
			good++
			if rcv.verify(sig, append([]byte(" "), body...)) == nil {
				t.Error("a changed body verified")
			}
			if rcv.verify("", body) == nil {
				t.Error("no signature verified")
			}
			parts := strings.Split(sig, ".")
			sum := sha256.Sum256([]byte("{}"))
			forged, _ := json.Marshal(map[string]string{"request_body_sha256": base64.StdEncoding.EncodeToString(sum[:])})
			if rcv.verify(parts[0]+"."+base64.RawURLEncoding.EncodeToString(forged)+"."+parts[2], []byte("{}")) == nil {
				t.Error("claims swapped under the signature verified")
			}
		} else {
			byOther++
		}
	}
	if good != 1 || byOther != 1 {
		t.Fatalf("verified %d, refused %d; want the delivery signed by the trusted key only", good, byOther)
	}
}

// TestUnsignedWebhook: without a signing key or secret, a delivery carries no
// signature header at all; with only a signing secret, only ours.
func TestUnsignedWebhook(t *testing.T) {
	s := newServer(t)
	startDispatcher(t, s)
	var mu sync.Mutex
	headers := map[string]http.Header{}
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		headers[r.URL.Path] = r.Header.Clone()
		mu.Unlock()
	}))
	defer rcv.Close()
	for path, secret := range map[string]string{"/plain": "", "/ours": "a-secret-for-our-own-header"} {
		hook := map[string]any{"url": rcv.URL + path, "global": true, "eventsEnabled": map[string]bool{"jwt.refresh-token.revoke": true}}
		if secret != "" {
			hook["signingSecret"] = secret
		}
		resp := s.expect(req{method: "POST", path: "/api/webhook", body: map[string]any{"webhook": hook}}, 200)
		if secret == "" && strings.Contains(string(resp.Body), "signingSecret") {
			t.Fatalf("a signing secret was made up: %s", resp.Body)
		}
	}
	w := s.seed(1, 1, 1)
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + w.users[0].String()}, 200)
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(headers)
		mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries reached %d webhooks, want 2", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	plain, ours := headers["/plain"], headers["/ours"]
	if plain.Get(impl.SignatureJWTHeader) != "" || plain.Get(impl.SignatureHeader) != "" || plain.Get("Authorization") != "" {
		t.Errorf("unsigned webhook got signature or credentials: %v", plain)
	}
	if ours.Get(impl.SignatureJWTHeader) != "" || !strings.HasPrefix(ours.Get(impl.SignatureHeader), "sha256=") {
		t.Errorf("webhook with a signing secret: %v", ours)
	}
}

// TestWebhookSignatureConfigurationErrors: a signed webhook needs a key that can
// sign for every tenant it covers.
func TestWebhookSignatureConfigurationErrors(t *testing.T) {
	s := newServer(t)
	tenant := s.createTenant("other")
	global := s.generateKey(nil, map[string]any{"algorithm": "HS256", "name": "global"})
	own := s.generateKey(map[string]string{"X-FusionAuth-TenantId": tenant}, map[string]any{"algorithm": "RS256", "name": "tenant's"})
	public := s.importKey(nil, map[string]any{"name": "verify only", "publicKey": own["publicKey"]})
	const field = "webhook.signatureConfiguration.signingKeyId"
	hook := func(sc map[string]any, extra map[string]any) map[string]any {
		w := map[string]any{"url": "http://127.0.0.1:1/hook", "signatureConfiguration": sc}
		for k, v := range extra {
			w[k] = v
		}
		return map[string]any{"webhook": w}
	}
	post := func(body map[string]any, status int, codes ...string) {
		t.Helper()
		s.expect(req{method: "POST", path: "/api/webhook", body: body}, status, codes...)
	}
	post(hook(map[string]any{"enabled": true}, nil), 400, field+":[missing]"+field)
	post(hook(map[string]any{"enabled": true, "signingKeyId": uuid.NewString()}, nil), 400, field+":[invalid]"+field)
	post(hook(map[string]any{"enabled": true, "signingKeyId": public["id"]}, nil), 400, field+":[invalid]"+field)
	post(hook(map[string]any{"enabled": true, "signingKeyId": own["id"]}, map[string]any{"global": true}), 400, field+":[invalid]"+field)
	post(hook(map[string]any{"enabled": true, "signingKeyId": "not-a-uuid"}, nil), 400, field+":[couldNotConvert]"+field)
	post(hook(map[string]any{"enabled": true, "signingKeyId": global["id"]}, map[string]any{"httpAuthenticationUsername": "a:b"}), 400,
		"webhook.httpAuthenticationUsername:[invalid]webhook.httpAuthenticationUsername")
	post(hook(map[string]any{"enabled": true, "signingKeyId": global["id"]}, map[string]any{"global": true}), 200)
	post(hook(map[string]any{"enabled": true, "signingKeyId": own["id"]}, map[string]any{"tenantIds": []string{tenant}}), 200)
	post(hook(map[string]any{"enabled": false, "signingKeyId": uuid.NewString()}, nil), 200) // not signed: the key is not used
	var n int
	if err := s.Store.DB().Get(&n, `SELECT count(*) FROM webhooks`); err != nil || n != 3 {
		t.Fatalf("webhooks stored: %d %v, want 3", n, err)
	}
}
