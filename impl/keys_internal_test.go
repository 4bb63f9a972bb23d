package impl

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	gen "refreshd/generated"
	"refreshd/impl/store"
	"refreshd/internal/dbtest"
)

// TestKeyringVerifier: the keyring finds, by kid, what verifies the tokens of
// every key that can sign access tokens — built-in keys with their tenant, Key
// Master keys (global ones without a tenant), imported public keys — and forgets
// a deleted key at once.
func TestKeyringVerifier(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, dbtest.NewDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := &Server{store: st, log: slog.Default(), keys: newKeyring(st), issuer: "test"}
	ctx = context.WithValue(ctx, principalKey{}, &principal{}) // unscoped
	tenant, err := st.DefaultTenant(ctx)
	if err != nil {
		t.Fatal(err)
	}

	sign := func(k *signingKey) string {
		tok := jwt.NewWithClaims(k.method, jwt.MapClaims{"sub": "x"})
		tok.Header["kid"] = k.kid
		signed, err := tok.SignedString(k.key)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	verifies := func(token string) error {
		_, err := jwt.Parse(token, func(tok *jwt.Token) (any, error) {
			v, err := s.keys.verifier(ctx, tok.Header["kid"].(string))
			if err != nil {
				return nil, err
			}
			if tok.Method.Alg() != v.method.Alg() {
				return nil, errors.New("alg differs from the key's")
			}
			return v.key, nil
		})
		return err
	}

	for _, alg := range []string{"HS256", "RS256", "ES256"} {
		k, err := s.keys.get(ctx, tenant.ID, alg)
		if err != nil {
			t.Fatal(err)
		}
		v, err := s.keys.verifier(ctx, k.kid)
		if err != nil || v.tenantID == nil || *v.tenantID != tenant.ID || v.method.Alg() != alg {
			t.Fatalf("built-in %s: %+v %v", alg, v, err)
		}
		if err := verifies(sign(k)); err != nil {
			t.Errorf("built-in %s token: %v", alg, err)
		}
		if _, err := s.keys.verifier(ctx, strings.ToUpper(k.kid)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("kid in another case: %v, want not found", err)
		}
	}

	alg, name := gen.KeyAlgorithmES384, "master"
	resp, err := s.GenerateKey(ctx, gen.GenerateKeyRequestObject{Body: &gen.KeyRequest{Key: gen.Key{Algorithm: &alg, Name: &name}}})
	if err != nil {
		t.Fatal(err)
	}
	master := resp.(gen.GenerateKey200JSONResponse).Key
	mk, err := s.keys.masterKey(ctx, *master.Id)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.keys.verifier(ctx, *master.Kid)
	if _, isEC := v.key.(*ecdsa.PublicKey); err != nil || v.tenantID != nil || v.method.Alg() != "ES384" || !isEC {
		t.Fatalf("Key Master key: %+v %v", v, err)
	}
	masterToken := sign(mk)
	if err := verifies(masterToken); err != nil {
		t.Fatalf("Key Master token: %v", err)
	}

	kid, public := "imported-public", *master.PublicKey
	ir, err := s.ImportKey(ctx, gen.ImportKeyRequestObject{Body: &gen.KeyRequest{Key: gen.Key{Name: &name, Kid: &kid, PublicKey: &public}}})
	if err != nil {
		t.Fatal(err)
	}
	imported := ir.(gen.ImportKey200JSONResponse).Key
	if _, err := s.keys.verifier(ctx, kid); err != nil {
		t.Fatalf("imported public key: %v", err)
	}
	if _, err := s.keys.masterKey(ctx, *imported.Id); !errors.Is(err, errKeyCannotSign) {
		t.Fatalf("imported public key signs: %v", err)
	}
	if k, err := s.keys.accessTokenKey(ctx, tenant.ID, policy{keyID: *master.Id}); err != nil || k.kid != *master.Kid {
		t.Fatalf("accessTokenKey with a key id: %v %v", k, err)
	}

	if _, err := s.DeleteKey(ctx, gen.DeleteKeyRequestObject{KeyId: *master.Id}); err != nil {
		t.Fatal(err)
	}
	if err := verifies(masterToken); err == nil {
		t.Fatal("a deleted key still verifies")
	}
	if _, err := s.keys.verifier(ctx, "no-such-kid"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown kid: %v", err)
	}
}
