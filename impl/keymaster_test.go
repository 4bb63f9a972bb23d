package impl_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/FusionAuth/go-client/pkg/fusionauth"
	"github.com/google/uuid"
)

// createTenant makes a tenant, optionally with a JWT configuration, and returns its id.
func (s *testServer) createTenant(name string) string {
	s.t.Helper()
	return s.newTenant(name + " " + uuid.NewString())
}

// generateKey makes a key through POST /api/key/generate and returns it.
func (s *testServer) generateKey(header map[string]string, key map[string]any) map[string]any {
	s.t.Helper()
	return s.keyFrom(s.expect(req{method: "POST", path: "/api/key/generate", header: header, body: map[string]any{"key": key}}, 200))
}

// importKey imports a key through POST /api/key/import and returns it.
func (s *testServer) importKey(header map[string]string, key map[string]any) map[string]any {
	s.t.Helper()
	return s.keyFrom(s.expect(req{method: "POST", path: "/api/key/import", header: header, body: map[string]any{"key": key}}, 200))
}

func (s *testServer) keyFrom(resp response) map[string]any {
	s.t.Helper()
	if strings.Contains(string(resp.Body), "privateKey") {
		s.t.Fatalf("a private key was returned: %s", resp.Body)
	}
	var out struct {
		Key map[string]any `json:"key"`
	}
	if err := json.Unmarshal(resp.Body, &out); err != nil || out.Key["id"] == nil {
		s.t.Fatalf("key response: %v %s", err, resp.Body)
	}
	return out.Key
}

func pemOf(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// must returns the encoding of a key the test made itself, which cannot fail.
func must(der []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return der
}

func parsePublicPEM(t *testing.T, text string) any {
	t.Helper()
	b, _ := pem.Decode([]byte(text))
	if b == nil || b.Type != "PUBLIC KEY" {
		t.Fatalf("publicKey is not a PEM public key: %q", text)
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestKeyMasterWithGoClient: FusionAuth's Go client generates, imports, lists,
// retrieves and deletes keys, and finds the public halves in the JWKS by kid.
func TestKeyMasterWithGoClient(t *testing.T) {
	s := newServer(t)
	c := goClient(t, s)

	rsaID := uuid.NewString()
	rk, errs, err := c.GenerateKey(rsaID, fusionauth.KeyRequest{Key: fusionauth.Key{Algorithm: fusionauth.KeyAlgorithm_RS256, Name: "rsa"}})
	mustOK(t, "GenerateKey RS256", rk.StatusCode, errs, err)
	k := rk.Key
	if k.Id != rsaID || k.Type != fusionauth.KeyType_RSA || k.Length != 2048 || k.Kid == "" || !k.HasPrivateKey ||
		k.PrivateKey != "" || k.Secret != "" || k.Issuer != "refreshd" || k.InsertInstant == 0 {
		t.Fatalf("GenerateKey RS256: %+v", k)
	}
	pub, ok := parsePublicPEM(t, k.PublicKey).(*rsa.PublicKey)
	if !ok || pub.N.BitLen() != 2048 {
		t.Fatalf("publicKey: %T", pub)
	}
	block, _ := pem.Decode([]byte(k.Certificate))
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !pub.Equal(cert.PublicKey) || cert.Subject.CommonName != "refreshd" {
		t.Fatalf("certificate: %v, subject %v", err, cert.Subject)
	}
	if k.ExpirationInstant != cert.NotAfter.UnixMilli() || k.CertificateInformation.ValidTo != k.ExpirationInstant ||
		k.CertificateInformation.Sha256Thumbprint == "" {
		t.Errorf("certificate information: %+v, expiration %d", k.CertificateInformation, k.ExpirationInstant)
	}

	ek, errs, err := c.GenerateKey("", fusionauth.KeyRequest{Key: fusionauth.Key{Algorithm: fusionauth.KeyAlgorithm_ES384, Name: "ec", Issuer: "acme"}})
	mustOK(t, "GenerateKey ES384", ek.StatusCode, errs, err)
	if ecPub, ok := parsePublicPEM(t, ek.Key.PublicKey).(*ecdsa.PublicKey); !ok || ecPub.Curve != elliptic.P384() ||
		ek.Key.Type != fusionauth.KeyType_EC || ek.Key.Length != 384 || ek.Key.Issuer != "acme" {
		t.Fatalf("GenerateKey ES384: %+v", ek.Key)
	}

	hk, errs, err := c.GenerateKey("", fusionauth.KeyRequest{Key: fusionauth.Key{Algorithm: fusionauth.KeyAlgorithm_HS512, Name: "hmac", Kid: "my-hmac"}})
	mustOK(t, "GenerateKey HS512", hk.StatusCode, errs, err)
	raw, err := base64.StdEncoding.DecodeString(hk.Key.Secret)
	if err != nil || len(raw) != 64 || hk.Key.Kid != "my-hmac" || hk.Key.Type != fusionauth.KeyType_HMAC ||
		hk.Key.PublicKey != "" || hk.Key.Certificate != "" || hk.Key.HasPrivateKey {
		t.Fatalf("GenerateKey HS512: %+v (secret %d bytes, %v)", hk.Key, len(raw), err)
	}

	// A key pair from elsewhere (PKCS#1, as older tools write it) keeps its kid.
	legacy, _ := rsa.GenerateKey(rand.Reader, 2048)
	ik, errs, err := c.ImportKey("", fusionauth.KeyRequest{Key: fusionauth.Key{Name: "legacy", Kid: "legacy-kid",
		PrivateKey: pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(legacy)),
		PublicKey:  pemOf("PUBLIC KEY", must(x509.MarshalPKIXPublicKey(&legacy.PublicKey)))}})
	mustOK(t, "ImportKey pair", ik.StatusCode, errs, err)
	if ik.Key.Algorithm != fusionauth.KeyAlgorithm_RS256 || !ik.Key.HasPrivateKey || ik.Key.Kid != "legacy-kid" ||
		!legacy.PublicKey.Equal(parsePublicPEM(t, ik.Key.PublicKey)) {
		t.Fatalf("ImportKey pair: %+v", ik.Key)
	}
	ecOnly, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pk, errs, err := c.ImportKey("", fusionauth.KeyRequest{Key: fusionauth.Key{Name: "verify only",
		PublicKey: pemOf("PUBLIC KEY", must(x509.MarshalPKIXPublicKey(&ecOnly.PublicKey)))}})
	mustOK(t, "ImportKey public", pk.StatusCode, errs, err)
	if pk.Key.Algorithm != fusionauth.KeyAlgorithm_ES256 || pk.Key.HasPrivateKey || pk.Key.Length != 256 {
		t.Fatalf("ImportKey public: %+v", pk.Key)
	}

	for _, want := range []fusionauth.Key{rk.Key, ek.Key, hk.Key, ik.Key, pk.Key} {
		got, errs, err := c.RetrieveKey(want.Id)
		mustOK(t, "RetrieveKey", got.StatusCode, errs, err)
		if g, w := jsonOf(t, got.Key), jsonOf(t, want); g != w {
			t.Errorf("RetrieveKey %s:\ngot  %s\nwant %s", want.Name, g, w)
		}
	}
	all, err := c.RetrieveKeys()
	if err != nil || all.StatusCode != 200 || len(all.Keys) != 5 || all.Keys[0].Id != rsaID {
		t.Fatalf("RetrieveKeys: %d %v, %d keys", all.StatusCode, err, len(all.Keys))
	}
	if body := s.expect(req{method: "GET", path: "/api/key"}, 200).Body; strings.Contains(string(body), "privateKey") {
		t.Fatal("GET /api/key returned a private key")
	}

	jwks, err := c.RetrieveJsonWebKeySet()
	if err != nil || jwks.StatusCode != 200 {
		t.Fatalf("RetrieveJsonWebKeySet: %v", err)
	}
	byKid := map[string]fusionauth.JSONWebKey{}
	for _, j := range jwks.Keys {
		byKid[j.Kid] = j
	}
	if j := byKid[k.Kid]; j.Alg != "RS256" || j.N != base64.RawURLEncoding.EncodeToString(pub.N.Bytes()) || len(j.X5c) != 1 {
		t.Errorf("JWKS entry of the RSA key: %+v", j)
	}
	if j := byKid[ek.Key.Kid]; j.Alg != "ES384" || j.Crv != "P-384" || len(j.X) != 64 {
		t.Errorf("JWKS entry of the EC key: %+v", j)
	}
	if _, ok := byKid["legacy-kid"]; !ok {
		t.Error("imported key pair not in the JWKS")
	}
	if _, ok := byKid[pk.Key.Kid]; !ok {
		t.Error("imported public key not in the JWKS")
	}
	if _, ok := byKid["my-hmac"]; ok {
		t.Error("an HMAC key is in the JWKS")
	}

	r, errs, err := c.DeleteKey(hk.Key.Id)
	mustOK(t, "DeleteKey", r.StatusCode, errs, err)
	if got, _, _ := c.RetrieveKey(hk.Key.Id); got.StatusCode != 404 {
		t.Fatalf("RetrieveKey after delete: %d, want 404", got.StatusCode)
	}
	if r, _, _ := c.DeleteKey(hk.Key.Id); r.StatusCode != 404 {
		t.Fatalf("DeleteKey again: %d, want 404", r.StatusCode)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestKeyAPIErrors: every refusal is a 400 with its code, and stores nothing.
func TestKeyAPIErrors(t *testing.T) {
	s := newServer(t)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherRSA, _ := rsa.GenerateKey(rand.Reader, 2048)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pubPEM := func(k crypto.PublicKey) string { return pemOf("PUBLIC KEY", must(x509.MarshalPKIXPublicKey(k))) }
	s.createTenant("with built-in keys") // a tenant's built-in keys are made with it
	builtIn := ""
	for kid := range s.jwks() {
		builtIn = kid
	}
	s.generateKey(nil, map[string]any{"algorithm": "HS256", "name": "taken", "kid": "taken-kid"})
	takenID := uuid.NewString()
	s.expect(req{method: "POST", path: "/api/key/generate/" + takenID, body: map[string]any{"key": map[string]any{"algorithm": "HS256", "name": "x"}}}, 200)

	gen, imp := "/api/key/generate", "/api/key/import"
	for _, c := range []struct {
		name  string
		path  string
		key   map[string]any
		codes []string
	}{
		{"nothing", gen, map[string]any{}, []string{"key.algorithm:[missing]key.algorithm", "key.name:[missing]key.name"}},
		{"RSA too short", gen, map[string]any{"algorithm": "RS256", "name": "x", "length": 1024}, []string{"key.length:[invalid]key.length"}},
		{"EC length of another curve", gen, map[string]any{"algorithm": "ES256", "name": "x", "length": 384}, []string{"key.length:[invalid]key.length"}},
		{"unsupported algorithm", gen, map[string]any{"algorithm": "Ed25519", "name": "x"}, []string{"key.algorithm:[invalid]key.algorithm"}},
		{"kid taken", gen, map[string]any{"algorithm": "HS256", "name": "x", "kid": "taken-kid"}, []string{"key.kid:[duplicate]key.kid"}},
		{"kid of a built-in key", gen, map[string]any{"algorithm": "HS256", "name": "x", "kid": builtIn}, []string{"key.kid:[duplicate]key.kid"}},
		{"id taken", gen + "/" + takenID, map[string]any{"algorithm": "HS256", "name": "x"}, []string{"keyId:[duplicate]keyId"}},
		{"unknown tenant", gen, map[string]any{"algorithm": "HS256", "name": "x", "tenantId": uuid.NewString()}, []string{"key.tenantId:[invalid]key.tenantId"}},
		{"no key material", imp, map[string]any{"name": "x"}, []string{"key.publicKey:[missing]key.publicKey"}},
		{"not PEM", imp, map[string]any{"name": "x", "publicKey": "MIIB…"}, []string{"key.publicKey:[invalid]key.publicKey"}},
		{"halves of two keys", imp, map[string]any{"name": "x", "publicKey": pubPEM(&rsaKey.PublicKey),
			"privateKey": pemOf("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(otherRSA)))}, []string{"key.privateKey:[invalid]key.privateKey"}},
		{"RSA under 2048 bits", imp, map[string]any{"name": "x", "publicKey": pubPEM(&small.PublicKey)}, []string{"key.publicKey:[invalid]key.publicKey"}},
		{"algorithm of another curve", imp, map[string]any{"name": "x", "algorithm": "ES384", "publicKey": pubPEM(&p256.PublicKey)},
			[]string{"key.algorithm:[invalid]key.algorithm"}},
		{"RSA key, HMAC algorithm", imp, map[string]any{"name": "x", "algorithm": "HS256", "publicKey": pubPEM(&rsaKey.PublicKey)},
			[]string{"key.secret:[invalid]key.secret"}},
		{"HMAC without secret", imp, map[string]any{"name": "x", "algorithm": "HS384"}, []string{"key.secret:[missing]key.secret"}},
		{"HMAC secret too short", imp, map[string]any{"name": "x", "secret": "short"}, []string{"key.secret:[invalid]key.secret"}},
		{"secret for an RSA algorithm", imp, map[string]any{"name": "x", "algorithm": "RS256", "secret": strings.Repeat("s", 64)},
			[]string{"key.algorithm:[invalid]key.algorithm"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s.t = t
			s.expect(req{method: "POST", path: c.path, body: map[string]any{"key": c.key}}, 400, c.codes...)
		})
	}
	s.t = t
	var n int
	if err := s.Store.DB().Get(&n, `SELECT count(*) FROM keys`); err != nil || n != 2 {
		t.Fatalf("keys stored: %d %v, want 2", n, err)
	}
	// What is accepted: an HMAC secret of the algorithm's size, an EC private key alone (SEC 1).
	s.importKey(nil, map[string]any{"name": "hmac", "algorithm": "HS384", "secret": strings.Repeat("k", 48)})
	k := s.importKey(nil, map[string]any{"name": "ec", "privateKey": pemOf("EC PRIVATE KEY", must(x509.MarshalECPrivateKey(p256)))})
	if k["hasPrivateKey"] != true || !p256.PublicKey.Equal(parsePublicPEM(t, k["publicKey"].(string))) {
		t.Fatalf("EC private key import: %v", k)
	}
}

// TestKeyTenancy: a key belongs to the request's tenant, else it is global; a
// tenant-scoped caller sees only its tenant's keys.
func TestKeyTenancy(t *testing.T) {
	s := newServer(t)
	a, b := s.createTenant("a"), s.createTenant("b")
	inA := map[string]string{"X-FusionAuth-TenantId": a}
	inB := map[string]string{"X-FusionAuth-TenantId": b}
	keyA := s.generateKey(inA, map[string]any{"algorithm": "HS256", "name": "a's"})
	global := s.generateKey(nil, map[string]any{"algorithm": "HS256", "name": "everyone's"})
	bodyB := s.generateKey(nil, map[string]any{"algorithm": "HS256", "name": "b's", "tenantId": b})
	if keyA["tenantId"] != a || global["tenantId"] != nil || bodyB["tenantId"] != b {
		t.Fatalf("tenants: %v %v %v", keyA["tenantId"], global["tenantId"], bodyB["tenantId"])
	}
	list := func(header map[string]string) (ids []any) {
		var out struct{ Keys []map[string]any }
		_ = json.Unmarshal(s.expect(req{method: "GET", path: "/api/key", header: header}, 200).Body, &out)
		for _, k := range out.Keys {
			ids = append(ids, k["id"])
		}
		return ids
	}
	if got := list(inA); len(got) != 1 || got[0] != keyA["id"] {
		t.Errorf("keys seen in tenant a: %v", got)
	}
	if got := list(nil); len(got) != 3 {
		t.Errorf("keys seen unscoped: %v", got)
	}
	s.expect(req{method: "GET", path: "/api/key/" + keyA["id"].(string), header: inB}, 404)
	s.expect(req{method: "GET", path: "/api/key/" + global["id"].(string), header: inB}, 404)
	s.expect(req{method: "DELETE", path: "/api/key/" + keyA["id"].(string), header: inB}, 404)
	s.expect(req{method: "GET", path: "/api/key/" + keyA["id"].(string)}, 200)
	s.expect(req{method: "POST", path: "/api/key/generate", header: inB, body: map[string]any{"key": map[string]any{
		"algorithm": "HS256", "name": "x", "tenantId": a}}}, 400, "key.tenantId:[invalid]key.tenantId")

	locked, _ := s.newKey(map[string]any{"tenantId": b})
	asB := map[string]string{"Authorization": locked}
	s.expect(req{method: "GET", path: "/api/key/" + global["id"].(string), header: asB}, 404)
	own := s.generateKey(asB, map[string]any{"algorithm": "HS256", "name": "made by b's key"})
	if own["tenantId"] != b {
		t.Fatalf("a tenant-locked key made a key of tenant %v", own["tenantId"])
	}
	s.expect(req{method: "DELETE", path: "/api/key/" + own["id"].(string), header: asB}, 200)
}

// TestAccessTokenSignedWithChosenKey: the application's accessTokenKeyId, else
// the tenant's, else the built-in key of accessTokenSigningAlgorithm signs.
func TestAccessTokenSignedWithChosenKey(t *testing.T) {
	s := newServer(t)
	rsaKey := s.generateKey(nil, map[string]any{"algorithm": "RS256", "name": "rsa"})
	hmacKey := s.generateKey(nil, map[string]any{"algorithm": "HS256", "name": "hmac"})
	tenant := s.createTenant("signed by key")
	keyed := uuid.NewString()
	s.expect(req{method: "POST", path: "/api/tenant/" + keyed, body: map[string]any{"tenant": map[string]any{
		"name": "keyed " + keyed, "jwtConfiguration": map[string]any{"accessTokenKeyId": hmacKey["id"]}}}}, 200)
	other := s.generateKey(map[string]string{"X-FusionAuth-TenantId": tenant}, map[string]any{"algorithm": "HS256", "name": "other tenant's"})
	public := s.importKey(nil, map[string]any{"name": "verify only", "publicKey": rsaKey["publicKey"], "kid": "public-only"})

	user := uuid.New()
	s.createUser(user)
	appRSA := s.appWith(map[string]any{"accessTokenKeyId": rsaKey["id"], "accessTokenSigningAlgorithm": "ES256"})
	s.importToken(user, appRSA, "rsa-token", nowMillis()-1000)
	header, claims, signed, sig := splitJWT(t, s.mustExchange("rsa-token").Token)
	if header["alg"] != "RS256" || header["kid"] != rsaKey["kid"] || claims["applicationId"] != appRSA.String() {
		t.Fatalf("token of the application with a key: header %v claims %v", header, claims)
	}
	digest := sha256.Sum256(signed)
	if err := rsa.VerifyPKCS1v15(parsePublicPEM(t, rsaKey["publicKey"].(string)).(*rsa.PublicKey), crypto.SHA256, digest[:], sig); err != nil {
		t.Fatalf("RS256 token does not verify with the key's publicKey: %v", err)
	}

	// In the keyed tenant: the tenant's key, unless the application names an algorithm.
	inKeyed := map[string]string{"X-FusionAuth-TenantId": keyed}
	keyedUser, plainApp, algApp := uuid.New(), uuid.New(), uuid.New()
	s.expect(req{method: "POST", path: "/api/user/" + keyedUser.String(), header: inKeyed,
		body: map[string]any{"user": map[string]any{"email": "k@example.com"}}}, 200)
	s.expect(req{method: "POST", path: "/api/application/" + plainApp.String(), header: inKeyed,
		body: map[string]any{"application": map[string]any{"name": "plain"}}}, 200)
	s.expect(req{method: "POST", path: "/api/application/" + algApp.String(), header: inKeyed,
		body: map[string]any{"application": map[string]any{"name": "es256", "jwtConfiguration": map[string]any{
			"enabled": true, "accessTokenSigningAlgorithm": "ES256"}}}}, 200)
	for _, app := range []uuid.UUID{plainApp, algApp} {
		s.expect(req{method: "POST", path: "/api/user/refresh-token/import", header: inKeyed, body: map[string]any{"refreshTokens": []map[string]any{
			{"token": "keyed-" + app.String(), "userId": keyedUser, "applicationId": app, "startInstant": nowMillis() - 1000}}}}, 200)
	}
	header, _, signed, sig = splitJWT(t, s.mustExchange("keyed-"+plainApp.String()).Token)
	mac := hmac.New(sha256.New, []byte(hmacKey["secret"].(string)))
	mac.Write(signed)
	if header["alg"] != "HS256" || header["kid"] != hmacKey["kid"] || !hmac.Equal(mac.Sum(nil), sig) {
		t.Fatalf("token under the tenant's HMAC key: header %v, verifies %v", header, hmac.Equal(mac.Sum(nil), sig))
	}
	header, _, _, _ = splitJWT(t, s.mustExchange("keyed-"+algApp.String()).Token)
	if header["alg"] != "ES256" || header["kid"] == hmacKey["kid"] {
		t.Fatalf("application algorithm over the tenant's key: header %v", header)
	}

	const appField = "application.jwtConfiguration.accessTokenKeyId"
	for name, id := range map[string]any{"unknown": uuid.NewString(), "another tenant's": other["id"], "public only": public["id"]} {
		t.Run(name, func(t *testing.T) {
			s.t = t
			s.expect(req{method: "POST", path: "/api/application", body: map[string]any{"application": map[string]any{
				"name": "x", "jwtConfiguration": map[string]any{"enabled": true, "accessTokenKeyId": id}}}}, 400, appField+":[invalid]"+appField)
		})
	}
	s.t = t
	s.expect(req{method: "POST", path: "/api/tenant", body: map[string]any{"tenant": map[string]any{
		"name": "y", "jwtConfiguration": map[string]any{"accessTokenKeyId": other["id"]}}}}, 400,
		"tenant.jwtConfiguration.accessTokenKeyId:[invalid]tenant.jwtConfiguration.accessTokenKeyId")

	// A key in use stays.
	for _, k := range []map[string]any{rsaKey, hmacKey} {
		s.expect(req{method: "DELETE", path: "/api/key/" + k["id"].(string)}, 400, "keyId:[inUse]keyId")
	}
	s.expect(req{method: "DELETE", path: "/api/key/" + public["id"].(string)}, 200)

	// The Go client's application carries the key id both ways.
	c := goClient(t, s)
	appID := uuid.NewString()
	ar, errs, err := c.CreateApplication(appID, fusionauth.ApplicationRequest{Application: fusionauth.Application{Name: "go",
		JwtConfiguration: fusionauth.JWTConfiguration{Enableable: fusionauth.Enableable{Enabled: true}, AccessTokenKeyId: rsaKey["id"].(string)}}})
	mustOK(t, "CreateApplication", ar.StatusCode, errs, err)
	got, err := c.RetrieveApplication(appID)
	if err != nil || got.Application.JwtConfiguration.AccessTokenKeyId != rsaKey["id"] {
		t.Fatalf("RetrieveApplication: accessTokenKeyId %q %v", got.Application.JwtConfiguration.AccessTokenKeyId, err)
	}
}

// splitJWT decodes a compact JWT without verifying it: header, claims, the signed
// part and the signature.
func splitJWT(t *testing.T, token string) (header, claims map[string]any, signed, sig []byte) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	if decodeSegment(parts[0], &header) != nil || decodeSegment(parts[1], &claims) != nil {
		t.Fatalf("undecodable JWT: %q", token)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	return header, claims, []byte(parts[0] + "." + parts[1]), sig
}

// TestSelfRevocationWithKeyMasterKeys: an access token signed by a Key Master key
// — one this server made, or one imported from the server that issued it before
// a migration — is a credential for revoking its own user's token; once the key
// is deleted it is not.
func TestSelfRevocationWithKeyMasterKeys(t *testing.T) {
	s := newServer(t)
	ecKey := s.generateKey(nil, map[string]any{"algorithm": "ES256", "name": "signs access tokens"})
	user := uuid.New()
	s.createUser(user)
	app := s.appWith(map[string]any{"accessTokenKeyId": ecKey["id"]})
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	s.importToken(user, app, "mine-1", nowMillis()-1000)
	s.importToken(user, app, "mine-2", nowMillis()-1000)
	s.importToken(user, app, "mine-3", nowMillis()-1000)
	access := s.accessTokenFor(user, app)
	if header, _, _, _ := splitJWT(t, access); header["kid"] != ecKey["kid"] {
		t.Fatalf("access token kid %v, want the key's %v", header["kid"], ecKey["kid"])
	}
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?token=mine-1", header: bearer(access)}, 200)

	// The old server's key pair: only its public half is imported, with its kid.
	old, _ := rsa.GenerateKey(rand.Reader, 2048)
	legacy := s.importKey(nil, map[string]any{"name": "old issuer", "kid": "old-server-1",
		"publicKey": pemOf("PUBLIC KEY", must(x509.MarshalPKIXPublicKey(&old.PublicKey)))})
	seg := func(v any) string { return base64.RawURLEncoding.EncodeToString([]byte(jsonOf(t, v))) }
	signed := seg(map[string]any{"alg": "RS256", "typ": "JWT", "kid": "old-server-1"}) + "." + seg(map[string]any{
		"iss": "refreshd", "sub": user, "aud": app, "applicationId": app, "tid": s.defaultTenant(),
		"iat": nowMillis()/1000 - 60, "exp": nowMillis()/1000 + 600})
	digest := sha256.Sum256([]byte(signed))
	sig, _ := rsa.SignPKCS1v15(rand.Reader, old, crypto.SHA256, digest[:])
	oldToken := signed + "." + base64.RawURLEncoding.EncodeToString(sig)
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?token=mine-2", header: bearer(oldToken)}, 200)

	s.expect(req{method: "DELETE", path: "/api/key/" + legacy["id"].(string)}, 200)
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?token=mine-3", header: bearer(oldToken)}, 401)
	s.mustExchange("mine-3")
}

// TestDeleteTenantWithKeys: a tenant's delete takes its keys, also one that
// signed a webhook for that tenant alone, which is left unsigned.
func TestDeleteTenantWithKeys(t *testing.T) {
	s := newServer(t)
	tenant := s.createTenant("going")
	key := s.generateKey(map[string]string{"X-FusionAuth-TenantId": tenant}, map[string]any{"algorithm": "RS256", "name": "tenant's"})
	resp := s.expect(req{method: "POST", path: "/api/webhook", body: map[string]any{"webhook": map[string]any{
		"url": "http://127.0.0.1:1/hook", "tenantIds": []string{tenant},
		"signatureConfiguration": map[string]any{"enabled": true, "signingKeyId": key["id"]}}}}, 200)
	var hook struct{ Webhook struct{ ID string } }
	_ = json.Unmarshal(resp.Body, &hook)
	s.expect(req{method: "DELETE", path: "/api/tenant/" + tenant}, 200)
	s.expect(req{method: "GET", path: "/api/key/" + key["id"].(string)}, 404)
	if body := string(s.expect(req{method: "GET", path: "/api/webhook/" + hook.Webhook.ID}, 200).Body); !strings.Contains(body, `"signatureConfiguration":{"enabled":false}`) {
		t.Fatalf("webhook after its key's tenant went: %s", body)
	}
	if _, ok := s.jwks()[key["kid"].(string)]; ok {
		t.Fatal("the deleted tenant's key is still in the JWKS")
	}
}
