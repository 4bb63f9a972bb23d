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
	"time"

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
	tenantID uuid.UUID // uuid.Nil for a global Key Master key
	method   jwt.SigningMethod
	key      any              // []byte, *rsa.PrivateKey or *ecdsa.PrivateKey
	public   crypto.PublicKey // nil for HMAC
}

// keyring caches the signing keys, which never change once made. The built-in
// keys are made on first need and stored; when two servers race, the stored one
// wins. Key Master keys are cached by id once read (they are never updated, and
// one in use cannot be deleted); verifiers, found by kid, only for a few seconds,
// because any key not in use can be deleted.
type keyring struct {
	store  *store.Store
	mu     sync.RWMutex
	keys   map[string]*signingKey    // built-in keys, by tenant id + algorithm
	byKID  map[uuid.UUID]*signingKey // built-in keys, by id, for verification
	master map[uuid.UUID]*signingKey // Key Master keys that can sign, by id
	byKid  map[string]verifierEntry  // verifiers of either kind, by kid
}

func newKeyring(st *store.Store) *keyring {
	return &keyring{store: st, keys: map[string]*signingKey{}, byKID: map[uuid.UUID]*signingKey{},
		master: map[uuid.UUID]*signingKey{}, byKid: map[string]verifierEntry{}}
}

// byID returns the built-in key with the given id (the kid of the tokens it
// signs), for verifying them; ErrNotFound when there is none.
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

// forgetTenant drops the cached keys of a deleted tenant, built-in and Key
// Master: the tokens they signed stop verifying at once.
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
	for id, k := range r.master {
		if k.tenantID == tenantID {
			delete(r.master, id)
		}
	}
	for kid, e := range r.byKid {
		if e.v.tenantID != nil && *e.v.tenantID == tenantID {
			delete(r.byKid, kid)
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
// asymmetric key, built-in or in the Key Master.
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
		out.Keys = append(out.Keys, publicJWK(k.kid, k.method.Alg(), k.public))
	}
	master, err := s.store.PublicKeys(ctx)
	if err != nil {
		return nil, err
	}
	for _, mk := range master {
		v, err := masterVerifier(mk)
		if err != nil {
			return nil, err
		}
		jwk := publicJWK(mk.Kid, mk.Algorithm, v.key)
		if mk.Certificate != nil {
			if cert, err := parseCertificatePEM(*mk.Certificate); err == nil {
				info := certificateInformation(cert)
				chain := []string{base64.StdEncoding.EncodeToString(cert.Raw)}
				jwk.X5c, jwk.X5t, jwk.X5tS256 = &chain, info.Sha1Thumbprint, info.Sha256Thumbprint
			}
		}
		out.Keys = append(out.Keys, jwk)
	}
	return out, nil
}

func publicJWK(kid, alg string, public any) gen.JWK {
	b64 := func(b []byte) *string { v := base64.RawURLEncoding.EncodeToString(b); return &v }
	jwk := gen.JWK{Kid: kid, Alg: gen.JWKAlg(alg), Use: gen.Sig}
	switch p := public.(type) {
	case *rsa.PublicKey:
		jwk.Kty = gen.JWKKtyRSA
		jwk.N = b64(p.N.Bytes())
		jwk.E = b64(big.NewInt(int64(p.E)).Bytes())
	case *ecdsa.PublicKey:
		jwk.Kty = gen.JWKKtyEC
		crv := p.Curve.Params().Name
		jwk.Crv = &crv
		if point, err := p.Bytes(); err == nil { // 0x04 || X || Y, each padded to the curve's size
			n := (len(point) - 1) / 2
			jwk.X, jwk.Y = b64(point[1:1+n]), b64(point[1+n:])
		}
	}
	return jwk
}

// verifier checks the signatures one key made: method names its algorithm, key is
// an HMAC secret ([]byte) or a public key. tenantID is the key's tenant; nil for
// a global Key Master key, which may sign for any tenant.
type verifier struct {
	kid      string
	tenantID *uuid.UUID
	method   jwt.SigningMethod
	key      any
}

type verifierEntry struct {
	v     verifier
	until time.Time
}

// verifierTTL bounds how long a verifier found by kid is believed: a key deleted
// through another server stops verifying here within it.
const verifierTTL = 5 * time.Second

// verifier finds the key that verifies tokens whose header names kid: a tenant's
// built-in key (its kid is its id) or a Key Master key, an imported public key
// included. store.ErrNotFound when no key has that kid. Callers must also check
// that the token's alg is v.method's.
func (r *keyring) verifier(ctx context.Context, kid string) (verifier, error) {
	now := time.Now()
	r.mu.RLock()
	e, ok := r.byKid[kid]
	r.mu.RUnlock()
	if ok && now.Before(e.until) {
		return e.v, nil
	}
	v, err := r.findVerifier(ctx, kid)
	if err != nil {
		return verifier{}, err
	}
	r.mu.Lock()
	if len(r.byKid) > 10_000 {
		r.byKid = map[string]verifierEntry{} // bounded: start over rather than grow
	}
	r.byKid[kid] = verifierEntry{v: v, until: now.Add(verifierTTL)}
	r.mu.Unlock()
	return v, nil
}

func (r *keyring) findVerifier(ctx context.Context, kid string) (verifier, error) {
	mk, err := r.store.KeyByKid(ctx, kid)
	if err == nil {
		return masterVerifier(mk)
	}
	if !errors.Is(err, store.ErrNotFound) {
		return verifier{}, err
	}
	id, ok := parseUUID(kid)
	if !ok || id.String() != kid {
		return verifier{}, store.ErrNotFound
	}
	k, err := r.byID(ctx, id)
	if err != nil {
		return verifier{}, err
	}
	tenant := k.tenantID
	return verifier{kid: k.kid, tenantID: &tenant, method: k.method, key: k.verifyKey()}, nil
}

// forget drops what the keyring knows of a deleted Key Master key.
func (r *keyring) forget(id uuid.UUID, kid string) {
	r.mu.Lock()
	delete(r.master, id)
	delete(r.byKid, kid)
	r.mu.Unlock()
}

// masterKey returns the Key Master key id, parsed to sign. errKeyCannotSign for
// an imported public key; store.ErrNotFound when there is no such key.
func (r *keyring) masterKey(ctx context.Context, id uuid.UUID) (*signingKey, error) {
	r.mu.RLock()
	k := r.master[id]
	r.mu.RUnlock()
	if k != nil {
		return k, nil
	}
	mk, err := r.store.Key(ctx, store.Scope{}, id)
	if err != nil {
		return nil, err
	}
	if k, err = masterSigner(mk); err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.master[id] = k
	r.mu.Unlock()
	return k, nil
}

// accessTokenKey is the key that signs a tenant's access tokens under p: the Key
// Master key p names, else the tenant's built-in key for p's algorithm.
func (r *keyring) accessTokenKey(ctx context.Context, tenantID uuid.UUID, p policy) (*signingKey, error) {
	if p.keyID != uuid.Nil {
		k, err := r.masterKey(ctx, p.keyID)
		if err != nil {
			// Only a deletion racing the configuration that names the key gets here.
			return nil, fmt.Errorf("access-token key %s: %w", p.keyID, err)
		}
		return k, nil
	}
	return r.get(ctx, tenantID, p.algorithm)
}
