package impl_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

const (
	sessionRevoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	verification   = "https://schemas.openid.net/secevent/ssf/event-type/verification"
)

// setReceiver is a Shared Signals push receiver (RFC 8935) written from the
// RFCs, not from our signer: it checks the media type and the bearer it was
// given, verifies each Security Event Token's signature against the JWKS by kid
// with plain crypto, checks iss and aud, and keeps the claims. It can be told
// to fail.
type setReceiver struct {
	t        *testing.T
	srv      *httptest.Server
	jwksURL  string
	issuer   string
	aud      string
	bearer   string
	mu       sync.Mutex
	sets     []map[string]any
	headers  []map[string]any
	refused  []string
	failNext int
}

func newSETReceiver(t *testing.T, jwksURL, aud, bearer string) *setReceiver {
	r := &setReceiver{t: t, jwksURL: jwksURL, issuer: "refreshd", aud: aud, bearer: bearer}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *setReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failNext > 0 {
		r.failNext--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	header, claims, err := r.verify(req, string(body))
	if err != nil {
		r.refused = append(r.refused, err.Error())
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"err":"invalid_request"}`)
		return
	}
	r.sets = append(r.sets, claims)
	r.headers = append(r.headers, header)
	w.WriteHeader(http.StatusAccepted)
}

func (r *setReceiver) verify(req *http.Request, token string) (map[string]any, map[string]any, error) {
	if ct := req.Header.Get("Content-Type"); ct != "application/secevent+jwt" {
		return nil, nil, fmt.Errorf("Content-Type %q", ct)
	}
	if r.bearer != "" && req.Header.Get("Authorization") != r.bearer {
		return nil, nil, fmt.Errorf("Authorization %q", req.Header.Get("Authorization"))
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, nil, fmt.Errorf("%d parts", len(parts))
	}
	var header, claims map[string]any
	if err := decodeSegment(parts[0], &header); err != nil {
		return nil, nil, err
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return nil, nil, err
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, nil, err
	}
	if header["typ"] != "secevent+jwt" {
		return nil, nil, fmt.Errorf("typ %v", header["typ"])
	}
	kid, _ := header["kid"].(string)
	jwk, err := fetchJWK(r.jwksURL, kid)
	if err != nil {
		return nil, nil, err
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch header["alg"] {
	case "RS256":
		n, _ := base64.RawURLEncoding.DecodeString(jwk.N)
		e, _ := base64.RawURLEncoding.DecodeString(jwk.E)
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) != nil {
			return nil, nil, errors.New("RS256 signature does not verify")
		}
	case "ES256":
		x, _ := base64.RawURLEncoding.DecodeString(jwk.X)
		y, _ := base64.RawURLEncoding.DecodeString(jwk.Y)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil || len(sig) != 64 ||
			!ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			return nil, nil, errors.New("ES256 signature does not verify")
		}
	default:
		return nil, nil, fmt.Errorf("alg %v", header["alg"])
	}
	if claims["iss"] != r.issuer {
		return nil, nil, fmt.Errorf("iss %v", claims["iss"])
	}
	auds, _ := claims["aud"].([]any)
	if len(auds) != 1 || auds[0] != r.aud {
		return nil, nil, fmt.Errorf("aud %v, want [%s]", claims["aud"], r.aud)
	}
	if _, ok := claims["jti"].(string); !ok {
		return nil, nil, errors.New("no jti")
	}
	return header, claims, nil
}

func fetchJWK(jwksURL, kid string) (faJWK, error) {
	resp, err := http.Get(jwksURL)
	if err != nil {
		return faJWK{}, err
	}
	defer resp.Body.Close()
	var set struct{ Keys []faJWK }
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return faJWK{}, err
	}
	for _, k := range set.Keys {
		if k.Kid == kid {
			return k, nil
		}
	}
	return faJWK{}, fmt.Errorf("no key %q in the JWKS", kid)
}

// waitFor waits until n tokens arrived; a refusal fails the test at once.
func (r *setReceiver) waitFor(n int) []map[string]any {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		got, refused := append([]map[string]any(nil), r.sets...), append([]string(nil), r.refused...)
		r.mu.Unlock()
		if len(refused) > 0 {
			r.t.Fatalf("receiver refused tokens: %q", refused)
		}
		if len(got) >= n {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatalf("timed out waiting for %d tokens", n)
	return nil
}

// event returns the one event of a SET, by its type URI.
func event(t *testing.T, set map[string]any) (string, map[string]any) {
	t.Helper()
	events, _ := set["events"].(map[string]any)
	if len(events) != 1 {
		t.Fatalf("events: %v, want exactly one", set["events"])
	}
	for typ, body := range events {
		b, _ := body.(map[string]any)
		return typ, b
	}
	return "", nil
}

func subjectOf(set map[string]any, member string) string {
	sub, _ := set["sub_id"].(map[string]any)
	m, _ := sub[member].(map[string]any)
	id, _ := m["id"].(string)
	return id
}

func (s *testServer) createStream(body map[string]any, header map[string]string) map[string]any {
	s.t.Helper()
	resp := s.expect(req{method: "POST", path: "/ssf/streams", body: body, header: header}, 201)
	var out map[string]any
	if err := json.Unmarshal(resp.Body, &out); err != nil {
		s.t.Fatal(err)
	}
	return out
}

func TestSharedSignalsTransmitter(t *testing.T) {
	s := newServer(t)
	startDispatcher(t, s)
	w := s.seed(2, 2, 2)
	u0, u1 := w.users[0], w.users[1]
	rcv := newSETReceiver(t, s.URL+"/.well-known/jwks.json", "https://receiver.example", "Bearer receiver-secret")

	t.Run("configuration metadata", func(t *testing.T) {
		s.t = t
		resp := s.expect(req{method: "GET", path: "/.well-known/ssf-configuration", noKey: true}, 200)
		var cfg map[string]any
		_ = json.Unmarshal(resp.Body, &cfg)
		if cfg["spec_version"] != "1_0" || cfg["configuration_endpoint"] != s.URL+"/ssf/streams" ||
			cfg["jwks_uri"] != s.URL+"/.well-known/jwks.json" || fmt.Sprint(cfg["delivery_methods_supported"]) != "[urn:ietf:rfc:8935]" {
			t.Fatalf("configuration: %s", resp.Body)
		}
	})

	stream := s.createStream(map[string]any{
		"delivery":         map[string]any{"method": "urn:ietf:rfc:8935", "endpoint_url": rcv.srv.URL, "authorization_header": "Bearer receiver-secret"},
		"events_requested": []string{sessionRevoked}, "aud": "https://receiver.example", "description": "deny-list"}, nil)
	streamID := stream["stream_id"].(string)

	t.Run("the stream as created, without its authorization header", func(t *testing.T) {
		s.t = t
		if fmt.Sprint(stream["events_delivered"]) != "["+sessionRevoked+"]" || stream["iss"] != "refreshd" {
			t.Fatalf("stream: %v", stream)
		}
		resp := s.expect(req{method: "GET", path: "/ssf/streams?stream_id=" + streamID}, 200)
		if strings.Contains(string(resp.Body), "receiver-secret") {
			t.Fatalf("the authorization header came back: %s", resp.Body)
		}
		list := s.expect(req{method: "GET", path: "/ssf/streams"}, 200)
		var all []map[string]any
		if err := json.Unmarshal(list.Body, &all); err != nil || len(all) != 1 || all[0]["stream_id"] != streamID {
			t.Fatalf("list: %s", list.Body)
		}
		// Streams are not webhooks.
		hooks := s.expect(req{method: "GET", path: "/api/webhook"}, 200)
		if strings.Contains(string(hooks.Body), streamID) {
			t.Fatalf("the stream is listed as a webhook: %s", hooks.Body)
		}
	})
	t.Run("verification, then each revocation as a session-revoked token, in order", func(t *testing.T) {
		s.t = t
		s.expect(req{method: "POST", path: "/ssf/verify", body: map[string]any{"stream_id": streamID, "state": "xyz"}}, 204)
		rcv.mu.Lock()
		rcv.failNext = 2 // the receiver fails twice: the outbox retries, in order
		rcv.mu.Unlock()
		tokenID := s.tokenIDs(u0)[0]
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh/" + tokenID}, 200)
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + u1.String()}, 200)
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh?applicationId=" + w.apps[1].String()}, 200)
		sets := rcv.waitFor(4)
		if typ, ev := event(t, sets[0]); typ != verification || ev["state"] != "xyz" {
			t.Fatalf("first token: %v", sets[0])
		}
		typ, ev := event(t, sets[1])
		if typ != sessionRevoked || ev["event_timestamp"] == nil || subjectOf(sets[1], "session") != tokenID ||
			subjectOf(sets[1], "user") != u0.String() {
			t.Fatalf("by id: %v", sets[1])
		}
		if typ, _ := event(t, sets[2]); typ != sessionRevoked || subjectOf(sets[2], "user") != u1.String() || subjectOf(sets[2], "session") != "" {
			t.Fatalf("by user: %v", sets[2])
		}
		if typ, _ := event(t, sets[3]); typ != sessionRevoked || subjectOf(sets[3], "application") != w.apps[1].String() {
			t.Fatalf("by application: %v", sets[3])
		}
		for i, set := range sets {
			for j := range sets[:i] {
				if set["jti"] == sets[j]["jti"] {
					t.Fatalf("tokens %d and %d share jti %v", j, i, set["jti"])
				}
			}
		}
	})
	t.Run("a stream sees its own tenant only", func(t *testing.T) {
		s.t = t
		other := s.tenantWith(map[string]any{})
		elsewhere := newSETReceiver(t, s.URL+"/.well-known/jwks.json", "https://elsewhere.example", "")
		h := inTenant(other)
		st := s.createStream(map[string]any{"delivery": map[string]any{"method": "urn:ietf:rfc:8935", "endpoint_url": elsewhere.srv.URL},
			"events_requested": []string{sessionRevoked}, "aud": []string{"https://elsewhere.example"}}, h)
		s.expect(req{method: "GET", path: "/ssf/streams?stream_id=" + st["stream_id"].(string)}, 200)
		s.expect(req{method: "GET", path: "/ssf/streams?stream_id=" + streamID, header: h}, 404)
		user, _ := s.sessionIn(other, map[string]any{}, "elsewhere-token")
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh?token=elsewhere-token"}, 200)
		sets := elsewhere.waitFor(1)
		if subjectOf(sets[0], "user") != user.String() || subjectOf(sets[0], "tenant") != other.String() {
			t.Fatalf("other tenant's token: %v", sets[0])
		}
		time.Sleep(200 * time.Millisecond)
		if n := len(rcv.waitFor(4)); n != 4 {
			t.Fatalf("the first stream got %d tokens, want only its own tenant's 4", n)
		}
	})
	t.Run("update, a Key Master signing key, and delete", func(t *testing.T) {
		s.t = t
		key := s.expect(req{method: "POST", path: "/api/key/generate", body: map[string]any{"key": map[string]any{
			"algorithm": "ES256", "name": "ssf " + uuid.NewString()}}}, 200)
		var k struct {
			Key struct {
				ID string `json:"id"`
			} `json:"key"`
		}
		_ = json.Unmarshal(key.Body, &k)
		resp := s.expect(req{method: "PATCH", path: "/ssf/streams", body: map[string]any{"stream_id": streamID,
			"signing_key_id": k.Key.ID, "description": "changed"}}, 200)
		if !strings.Contains(string(resp.Body), `"changed"`) || !strings.Contains(string(resp.Body), rcv.srv.URL) {
			t.Fatalf("patched: %s", resp.Body)
		}
		s.expect(req{method: "POST", path: "/ssf/verify", body: map[string]any{"stream_id": streamID}}, 204)
		sets := rcv.waitFor(5)
		rcv.mu.Lock()
		alg := rcv.headers[4]["alg"]
		rcv.mu.Unlock()
		if typ, ev := event(t, sets[4]); typ != verification || len(ev) != 0 || alg != "ES256" {
			t.Fatalf("verification signed with the Key Master key: alg %v, %v", alg, sets[4])
		}
		s.expect(req{method: "PATCH", path: "/ssf/streams", body: map[string]any{"stream_id": streamID,
			"delivery": map[string]any{"method": "poll"}}}, 400,
			"delivery.method:[invalid]delivery.method", "delivery.endpoint_url:[invalid]delivery.endpoint_url")
		s.expect(req{method: "DELETE", path: "/ssf/streams?stream_id=" + streamID}, 204)
		s.expect(req{method: "DELETE", path: "/ssf/streams?stream_id=" + streamID}, 404)
		s.expect(req{method: "POST", path: "/ssf/verify", body: map[string]any{"stream_id": streamID}}, 404)
	})
	t.Run("bad stream configurations", func(t *testing.T) {
		s.t = t
		for name, c := range map[string]struct {
			body  map[string]any
			codes []string
		}{
			"no delivery": {map[string]any{"events_requested": []string{sessionRevoked}}, []string{"delivery:[missing]delivery"}},
			"poll":        {map[string]any{"delivery": map[string]any{"method": "urn:ietf:rfc:8936", "endpoint_url": "https://x.example"}}, []string{"delivery.method:[invalid]delivery.method"}},
			"relative url": {map[string]any{"delivery": map[string]any{"method": "urn:ietf:rfc:8935", "endpoint_url": "/push"}},
				[]string{"delivery.endpoint_url:[invalid]delivery.endpoint_url"}},
			"an unknown key": {map[string]any{"delivery": map[string]any{"method": "urn:ietf:rfc:8935", "endpoint_url": "https://x.example"},
				"signing_key_id": uuid.NewString()}, []string{"signing_key_id:[invalid]signing_key_id"}},
		} {
			t.Run(name, func(t *testing.T) {
				s.t = t
				s.expect(req{method: "POST", path: "/ssf/streams", body: c.body}, 400, c.codes...)
			})
		}
		s.expect(req{method: "POST", path: "/ssf/streams", noKey: true, body: map[string]any{}}, 401)
	})
}
