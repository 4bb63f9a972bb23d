package impl_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
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
)

// faReceiver is a webhook receiver written from FusionAuth's webhook
// documentation alone, as a team moving from FusionAuth has one: it checks HTTP
// Basic credentials and X-FusionAuth-Signature-JWT — a JWT whose only claim,
// request_body_sha256, is the standard base64 SHA-256 of the raw body; RS256 and
// ES256 verified with the JWKS key named by the header's kid, HS256 with the
// shared secret — and answers 401 to anything that does not verify. It shares no
// code with the server's signing: plain crypto, parsed by hand.
type faReceiver struct {
	t       *testing.T
	jwksURL string // where RSA and EC keys are looked up by kid
	secret  string // the shared HMAC secret, for HS256
	kid     string // the key this receiver was set up for
	user    string // expected Basic credentials; "" means none expected
	pass    string
	srv     *httptest.Server

	mu       sync.Mutex
	accepted []map[string]any // events, in the order they came
	rejected []string         // why deliveries were refused
}

func newFAReceiver(t *testing.T, jwksURL, secret, kid, user, pass string) *faReceiver {
	r := &faReceiver{t: t, jwksURL: jwksURL, secret: secret, kid: kid, user: user, pass: pass}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *faReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	err := r.check(req, body)
	var env struct {
		Event map[string]any `json:"event"`
	}
	if err == nil {
		if jerr := json.Unmarshal(body, &env); jerr != nil || env.Event == nil {
			err = fmt.Errorf("body is not {\"event\": {…}}: %v", jerr)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.rejected = append(r.rejected, err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	r.accepted = append(r.accepted, env.Event)
}

func (r *faReceiver) check(req *http.Request, body []byte) error {
	if r.user != "" {
		user, pass, ok := req.BasicAuth()
		if !ok || user != r.user || pass != r.pass {
			return errors.New("wrong or missing HTTP Basic credentials")
		}
	}
	return r.verify(req.Header.Get("X-FusionAuth-Signature-JWT"), body)
}

// verify checks a signature JWT against the raw body.
func (r *faReceiver) verify(token string, body []byte) error {
	if token == "" {
		return errors.New("no X-FusionAuth-Signature-JWT header")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return fmt.Errorf("signature JWT has %d parts", len(parts))
	}
	var header struct{ Alg, Kid string }
	if err := decodeSegment(parts[0], &header); err != nil {
		return fmt.Errorf("JWT header: %v", err)
	}
	var claims map[string]any
	if err := decodeSegment(parts[1], &claims); err != nil {
		return fmt.Errorf("JWT claims: %v", err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return fmt.Errorf("JWT signature: %v", err)
	}
	if header.Kid != r.kid {
		return fmt.Errorf("kid %q, not the key %q this receiver trusts", header.Kid, r.kid)
	}
	signed := []byte(parts[0] + "." + parts[1])
	digest := sha256.Sum256(signed)
	switch header.Alg {
	case "HS256":
		mac := hmac.New(sha256.New, []byte(r.secret))
		mac.Write(signed)
		if !hmac.Equal(mac.Sum(nil), sig) {
			return errors.New("HS256 signature does not verify with the shared secret")
		}
	case "RS256":
		jwk, err := r.jwk(header.Kid)
		if err != nil {
			return err
		}
		n, _ := base64.RawURLEncoding.DecodeString(jwk.N)
		e, _ := base64.RawURLEncoding.DecodeString(jwk.E)
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if jwk.Kty != "RSA" || rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) != nil {
			return errors.New("RS256 signature does not verify with the JWKS key")
		}
	case "ES256":
		jwk, err := r.jwk(header.Kid)
		if err != nil {
			return err
		}
		x, _ := base64.RawURLEncoding.DecodeString(jwk.X)
		y, _ := base64.RawURLEncoding.DecodeString(jwk.Y)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if jwk.Kty != "EC" || jwk.Crv != "P-256" || err != nil || len(sig) != 64 {
			return errors.New("ES256: the JWKS key or the signature is malformed")
		}
		if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			return errors.New("ES256 signature does not verify with the JWKS key")
		}
	default:
		return fmt.Errorf("unexpected alg %q", header.Alg)
	}
	sum := sha256.Sum256(body)
	if len(claims) != 1 || claims["request_body_sha256"] != base64.StdEncoding.EncodeToString(sum[:]) {
		return fmt.Errorf("claims %v are not exactly request_body_sha256 of the body", claims)
	}
	return nil
}

type faJWK struct{ Kty, Kid, Crv, N, E, X, Y string }

// jwk fetches the JWKS and returns the key with kid.
func (r *faReceiver) jwk(kid string) (faJWK, error) {
	resp, err := http.Get(r.jwksURL)
	if err != nil {
		return faJWK{}, err
	}
	defer resp.Body.Close()
	var set struct{ Keys []faJWK }
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return faJWK{}, fmt.Errorf("JWKS: %v", err)
	}
	for _, k := range set.Keys {
		if k.Kid == kid {
			return k, nil
		}
	}
	return faJWK{}, fmt.Errorf("no key %q in the JWKS", kid)
}

func decodeSegment(seg string, into any) error {
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	return dec.Decode(into)
}

func (r *faReceiver) events() (accepted []map[string]any, rejected []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.accepted...), append([]string(nil), r.rejected...)
}

// waitFor waits until n events were accepted; a rejection fails the test at once.
func (r *faReceiver) waitFor(n int) []map[string]any {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		got, rejected := r.events()
		if len(rejected) > 0 {
			r.t.Fatalf("receiver refused deliveries: %q", rejected)
		}
		if len(got) >= n {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
	got, _ := r.events()
	r.t.Fatalf("receiver accepted %d events, want %d", len(got), n)
	return nil
}
