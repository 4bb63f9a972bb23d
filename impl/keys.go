package impl

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"sync"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	gen "refreshd/generated"
	"refreshd/impl/store"
)

// signingAlgorithms are the algorithms a tenant has a key for.
var signingAlgorithms = []string{"HS256", "RS256", "ES256"}

// signingKey is a parsed key, ready to sign.
type signingKey struct {
	kid      string
	tenantID uuid.UUID
	method   jwt.SigningMethod
	key      any              // []byte, *rsa.PrivateKey or *ecdsa.PrivateKey
	public   crypto.PublicKey // nil for HS256
}

// keyring caches the signing keys, which never change once made. Keys are made
// on first need and stored; when two servers race, the stored one wins.
type keyring struct {
	store *store.Store
	mu    sync.RWMutex
	keys  map[string]*signingKey    // by tenant id + algorithm
	byKID map[uuid.UUID]*signingKey // by id, for verification
}

func newKeyring(st *store.Store) *keyring {
	return &keyring{store: st, keys: map[string]*signingKey{}, byKID: map[uuid.UUID]*signingKey{}}
}

// byID returns the key with the given id (the kid of the tokens it signs), for
// verifying them; ErrNotFound when there is none.
func (r *keyring) byID(ctx context.Context, id uuid.UUID) (*signingKey, error) {
	r.mu.RLock()
	k := r.byKID[id]
	r.mu.RUnlock()
	if k != nil {
		return k, nil
	}
	stored, err := r.store.SigningKeyByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if k, err = parseSigningKey(stored); err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.byKID[id] = k
	r.mu.Unlock()
	return k, nil
}

// forgetTenant drops the cached keys of a deleted tenant: the tokens they signed
// stop verifying at once.
func (r *keyring) forgetTenant(tenantID uuid.UUID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, k := range r.keys {
		if k.tenantID == tenantID {
			delete(r.keys, name)
		}
	}
	for id, k := range r.byKID {
		if k.tenantID == tenantID {
			delete(r.byKID, id)
		}
	}
}

// verifyKey is what checks this key's signatures: the HMAC secret, or the public key.
func (k *signingKey) verifyKey() any {
	if k.public != nil {
		return k.public
	}
	return k.key
}

func (r *keyring) get(ctx context.Context, tenantID uuid.UUID, alg string) (*signingKey, error) {
	cacheKey := tenantID.String() + alg
	r.mu.RLock()
	k := r.keys[cacheKey]
	r.mu.RUnlock()
	if k != nil {
		return k, nil
	}
	stored, err := r.store.SigningKey(ctx, tenantID, alg)
	if errors.Is(err, store.ErrNotFound) {
		secret, genErr := newSecret(alg)
		if genErr != nil {
			return nil, genErr
		}
		if err := r.store.AddSigningKey(ctx, store.SigningKey{ID: uuid.New(), TenantID: tenantID, Algorithm: alg,
			Secret: secret, InsertInstant: store.NowMillis()}); err != nil {
			return nil, err
		}
		stored, err = r.store.SigningKey(ctx, tenantID, alg)
	}
	if err != nil {
		return nil, err
	}
	if k, err = parseSigningKey(stored); err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.keys[cacheKey] = k
	r.mu.Unlock()
	return k, nil
}

// newSecret makes key material: a 512-bit HMAC secret, or a PKCS#8 private key.
func newSecret(alg string) ([]byte, error) {
	switch alg {
	case "HS256":
		b := make([]byte, 64)
		_, err := rand.Read(b)
		return b, err
	case "RS256":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		return x509.MarshalPKCS8PrivateKey(k)
	case "ES256":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		return x509.MarshalPKCS8PrivateKey(k)
	}
	return nil, fmt.Errorf("unknown signing algorithm %q", alg)
}

func parseSigningKey(k store.SigningKey) (*signingKey, error) {
	out := &signingKey{kid: k.ID.String(), tenantID: k.TenantID}
	switch k.Algorithm {
	case "HS256":
		out.method, out.key = jwt.SigningMethodHS256, k.Secret
		return out, nil
	case "RS256", "ES256":
		priv, err := x509.ParsePKCS8PrivateKey(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", k.ID, err)
		}
		switch p := priv.(type) {
		case *rsa.PrivateKey:
			out.method, out.key, out.public = jwt.SigningMethodRS256, p, &p.PublicKey
		case *ecdsa.PrivateKey:
			out.method, out.key, out.public = jwt.SigningMethodES256, p, &p.PublicKey
		default:
			return nil, fmt.Errorf("signing key %s: unexpected type %T", k.ID, priv)
		}
		return out, nil
	}
	return nil, fmt.Errorf("signing key %s: unknown algorithm %q", k.ID, k.Algorithm)
}

// EnsureSigningKeys makes every tenant's signing keys that do not exist yet, so
// that they exist from the first start and /.well-known/jwks.json lists them.
func EnsureSigningKeys(ctx context.Context, st *store.Store) error {
	ids, err := st.TenantIDs(ctx)
	if err != nil {
		return err
	}
	r := newKeyring(st)
	for _, id := range ids {
		for _, alg := range signingAlgorithms {
			if _, err := r.get(ctx, id, alg); err != nil {
				return err
			}
		}
	}
	return nil
}

// GetJWKS implements GET /.well-known/jwks.json: the public half of every
// asymmetric signing key.
func (s *Server) GetJWKS(ctx context.Context, _ gen.GetJWKSRequestObject) (gen.GetJWKSResponseObject, error) {
	stored, err := s.store.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := gen.GetJWKS200JSONResponse{Keys: []gen.JWK{}}
	for _, sk := range stored {
		if sk.Algorithm == "HS256" {
			continue
		}
		k, err := parseSigningKey(sk)
		if err != nil {
			return nil, err
		}
		out.Keys = append(out.Keys, publicJWK(k))
	}
	return out, nil
}

func publicJWK(k *signingKey) gen.JWK {
	b64 := func(b []byte) *string { v := base64.RawURLEncoding.EncodeToString(b); return &v }
	jwk := gen.JWK{Kid: k.kid, Use: gen.Sig}
	switch p := k.public.(type) {
	case *rsa.PublicKey:
		jwk.Kty, jwk.Alg = gen.RSA, gen.JWKAlgRS256
		jwk.N = b64(p.N.Bytes())
		jwk.E = b64(big.NewInt(int64(p.E)).Bytes())
	case *ecdsa.PublicKey:
		jwk.Kty, jwk.Alg = gen.EC, gen.JWKAlgES256
		crv := "P-256"
		jwk.Crv = &crv
		if point, err := p.Bytes(); err == nil && len(point) == 65 { // 0x04 || X || Y
			jwk.X, jwk.Y = b64(point[1:33]), b64(point[33:])
		}
	}
	return jwk
}
