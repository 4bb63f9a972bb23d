package impl

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	gen "refreshd/generated"
	"refreshd/impl/store"
)

// The Key Master: FusionAuth's /api/key. Keys sign access tokens (an
// application's or tenant's jwtConfiguration.accessTokenKeyId) and webhook
// deliveries (signatureConfiguration.signingKeyId).

// Key types, as FusionAuth names them.
const (
	keyTypeRSA  = "RSA"
	keyTypeEC   = "EC"
	keyTypeHMAC = "HMAC"
)

// keyFamily is what an algorithm needs of its key.
type keyFamily struct {
	typ       string
	curve     elliptic.Curve // EC
	hmacBytes int            // HMAC: the secret's size, which is also its minimum (RFC 7518 §3.2)
}

var keyFamilies = map[string]keyFamily{
	"RS256": {typ: keyTypeRSA}, "RS384": {typ: keyTypeRSA}, "RS512": {typ: keyTypeRSA},
	"ES256": {typ: keyTypeEC, curve: elliptic.P256()}, "ES384": {typ: keyTypeEC, curve: elliptic.P384()},
	"ES512": {typ: keyTypeEC, curve: elliptic.P521()},
	"HS256": {typ: keyTypeHMAC, hmacBytes: 32}, "HS384": {typ: keyTypeHMAC, hmacBytes: 48},
	"HS512": {typ: keyTypeHMAC, hmacBytes: 64},
}

// keyAlgorithms are every algorithm a key can sign with.
var keyAlgorithms = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "HS256", "HS384", "HS512"}

// rsaLengths are the RSA sizes a key may be generated with, as FusionAuth offers.
var rsaLengths = map[int32]bool{2048: true, 3072: true, 4096: true}

// minRSABits is the smallest RSA key accepted on import.
const minRSABits = 2048

// certificateValidity is how long a generated key's self-signed certificate is valid.
const certificateValidity = 10 * 365 * 24 * time.Hour

var errKeyCannotSign = errors.New("the key is a public key only")

func errInvalidSigningKey(field string) *apiError {
	return fieldError(field, "[invalid]"+field, "No key with this id can sign here: it does not exist, is a public key only, or belongs to another tenant.")
}

// GenerateKey implements POST /api/key/generate.
func (s *Server) GenerateKey(ctx context.Context, req gen.GenerateKeyRequestObject) (gen.GenerateKeyResponseObject, error) {
	k, err := s.generateKey(ctx, uuid.New(), req.Body)
	if err != nil {
		return nil, err
	}
	return gen.GenerateKey200JSONResponse{Key: k}, nil
}

// GenerateKeyWithId implements POST /api/key/generate/{keyId}.
func (s *Server) GenerateKeyWithId(ctx context.Context, req gen.GenerateKeyWithIdRequestObject) (gen.GenerateKeyWithIdResponseObject, error) {
	k, err := s.generateKey(ctx, req.KeyId, req.Body)
	if err != nil {
		return nil, err
	}
	return gen.GenerateKeyWithId200JSONResponse{Key: k}, nil
}

// ImportKey implements POST /api/key/import.
func (s *Server) ImportKey(ctx context.Context, req gen.ImportKeyRequestObject) (gen.ImportKeyResponseObject, error) {
	k, err := s.importKey(ctx, uuid.New(), req.Body)
	if err != nil {
		return nil, err
	}
	return gen.ImportKey200JSONResponse{Key: k}, nil
}

// ImportKeyWithId implements POST /api/key/import/{keyId}.
func (s *Server) ImportKeyWithId(ctx context.Context, req gen.ImportKeyWithIdRequestObject) (gen.ImportKeyWithIdResponseObject, error) {
	k, err := s.importKey(ctx, req.KeyId, req.Body)
	if err != nil {
		return nil, err
	}
	return gen.ImportKeyWithId200JSONResponse{Key: k}, nil
}

// RetrieveKey implements GET /api/key/{keyId}.
func (s *Server) RetrieveKey(ctx context.Context, req gen.RetrieveKeyRequestObject) (gen.RetrieveKeyResponseObject, error) {
	k, err := s.store.Key(ctx, principalFrom(ctx).scope, req.KeyId)
	if errors.Is(err, store.ErrNotFound) {
		return gen.RetrieveKey404Response{}, nil
	}
	if err != nil {
		return nil, err
	}
	return gen.RetrieveKey200JSONResponse{Key: keyOut(k)}, nil
}

// RetrieveKeys implements GET /api/key.
func (s *Server) RetrieveKeys(ctx context.Context, _ gen.RetrieveKeysRequestObject) (gen.RetrieveKeysResponseObject, error) {
	list, err := s.store.Keys(ctx, principalFrom(ctx).scope)
	if err != nil {
		return nil, err
	}
	out := gen.RetrieveKeys200JSONResponse{Keys: make([]gen.Key, len(list))}
	for i, k := range list {
		out.Keys[i] = keyOut(k)
	}
	return out, nil
}

// DeleteKey implements DELETE /api/key/{keyId}.
func (s *Server) DeleteKey(ctx context.Context, req gen.DeleteKeyRequestObject) (gen.DeleteKeyResponseObject, error) {
	scope := principalFrom(ctx).scope
	k, err := s.store.Key(ctx, scope, req.KeyId)
	if errors.Is(err, store.ErrNotFound) {
		return gen.DeleteKey404Response{}, nil
	}
	if err != nil {
		return nil, err
	}
	err = s.store.DeleteKey(ctx, scope, req.KeyId)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return gen.DeleteKey404Response{}, nil
	case errors.Is(err, store.ErrKeyInUse):
		return nil, fieldError("keyId", "[inUse]keyId",
			"The key still signs for an application, a tenant or a webhook; point them at another key first.")
	case err != nil:
		return nil, err
	}
	s.keys.forget(k.ID, k.Kid)
	return gen.DeleteKey200Response{}, nil
}

// keyTenant decides whose a new key is: the request's tenant scope, else the
// tenant the body names, else nobody's (a global key).
func keyTenant(ctx context.Context, errs *apiError, bodyTenant *uuid.UUID) *uuid.UUID {
	scope := principalFrom(ctx).scope
	if scope.TenantID != nil {
		if bodyTenant != nil && *bodyTenant != *scope.TenantID {
			errs.field("key.tenantId", "[invalid]key.tenantId", "The tenantId differs from the tenant of the request.")
		}
		return scope.TenantID
	}
	return bodyTenant
}

// newKeyRecord checks what generated and imported keys share: a name, a kid, a tenant.
func newKeyRecord(ctx context.Context, errs *apiError, id uuid.UUID, in gen.Key) store.Key {
	now := store.NowMillis()
	k := store.Key{ID: id, TenantID: keyTenant(ctx, errs, in.TenantId), Issuer: trimmed(in.Issuer),
		InsertInstant: now, LastUpdateInstant: now}
	if name := trimmed(in.Name); name != nil {
		k.Name = *name
	} else {
		errs.field("key.name", "[missing]key.name", "The key needs a name.")
	}
	if kid := trimmed(in.Kid); kid != nil {
		k.Kid = *kid
	} else {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		k.Kid = base64.RawURLEncoding.EncodeToString(b)
	}
	return k
}

func (s *Server) generateKey(ctx context.Context, id uuid.UUID, body *gen.KeyRequest) (gen.Key, error) {
	if body == nil {
		return gen.Key{}, errInvalidJSON()
	}
	in := body.Key
	errs := new(apiError)
	k := newKeyRecord(ctx, errs, id, in)
	if in.Algorithm == nil {
		errs.field("key.algorithm", "[missing]key.algorithm", "Say which algorithm the key is for, e.g. RS256.")
		return gen.Key{}, errs
	}
	k.Algorithm = string(*in.Algorithm)
	fam := keyFamilies[k.Algorithm]
	k.Type = fam.typ
	length := deref(in.Length)
	switch fam.typ {
	case keyTypeRSA:
		if length == 0 {
			length = 2048
		}
		if !rsaLengths[length] {
			errs.field("key.length", "[invalid]key.length", "An RSA key is 2048, 3072 or 4096 bits long.")
		}
	case keyTypeEC:
		if bits := int32(fam.curve.Params().BitSize); length != 0 && length != bits {
			errs.field("key.length", "[invalid]key.length", fmt.Sprintf("A %s key is %d bits long.", k.Algorithm, bits))
		}
	}
	if err := errs.orNil(); err != nil {
		return gen.Key{}, err
	}
	switch fam.typ {
	case keyTypeHMAC:
		raw := make([]byte, fam.hmacBytes)
		_, _ = rand.Read(raw)
		k.Secret = []byte(base64.StdEncoding.EncodeToString(raw))
	default:
		var priv crypto.Signer
		var err error
		if fam.typ == keyTypeRSA {
			priv, err = rsa.GenerateKey(rand.Reader, int(length))
		} else {
			priv, err = ecdsa.GenerateKey(fam.curve, rand.Reader)
		}
		if err != nil {
			return gen.Key{}, err
		}
		if k.Issuer == nil {
			k.Issuer = &s.issuer
		}
		cert, err := selfSigned(priv, *k.Issuer)
		if err != nil {
			return gen.Key{}, err
		}
		if err := setKeyPair(&k, priv.Public(), priv, cert); err != nil {
			return gen.Key{}, err
		}
	}
	return s.storeKey(ctx, k)
}

func (s *Server) importKey(ctx context.Context, id uuid.UUID, body *gen.KeyRequest) (gen.Key, error) {
	if body == nil {
		return gen.Key{}, errInvalidJSON()
	}
	in := body.Key
	errs := new(apiError)
	k := newKeyRecord(ctx, errs, id, in)
	alg := ""
	if in.Algorithm != nil {
		alg = string(*in.Algorithm)
	}
	secret, pubPEM, privPEM, certPEM := deref(in.Secret), deref(in.PublicKey), deref(in.PrivateKey), deref(in.Certificate)
	if secret != "" || keyFamilies[alg].typ == keyTypeHMAC {
		importSecret(errs, &k, alg, secret, pubPEM != "" || privPEM != "" || certPEM != "")
	} else {
		importKeyPair(errs, &k, alg, pubPEM, privPEM, certPEM)
	}
	if err := errs.orNil(); err != nil {
		return gen.Key{}, err
	}
	return s.storeKey(ctx, k)
}

// importSecret takes an HMAC secret: its text is the key, as FusionAuth uses it.
func importSecret(errs *apiError, k *store.Key, alg, secret string, withPEM bool) {
	if alg == "" {
		alg = "HS256"
	}
	fam := keyFamilies[alg]
	switch {
	case withPEM:
		errs.field("key.secret", "[invalid]key.secret", "An HMAC secret is imported alone, without public or private keys.")
	case fam.typ != keyTypeHMAC:
		errs.field("key.algorithm", "[invalid]key.algorithm", "A secret is an HMAC key: HS256, HS384 or HS512.")
	case secret == "":
		errs.field("key.secret", "[missing]key.secret", "An HMAC key needs its secret.")
	case len(secret) < fam.hmacBytes:
		errs.field("key.secret", "[invalid]key.secret", fmt.Sprintf("A %s secret has at least %d bytes.", alg, fam.hmacBytes))
	}
	k.Algorithm, k.Type, k.Secret = alg, keyTypeHMAC, []byte(secret)
}

// importKeyPair takes a public key, a certificate or a private key — any that are
// given must be halves of one key — and decides the algorithm.
func importKeyPair(errs *apiError, k *store.Key, alg, pubPEM, privPEM, certPEM string) {
	if pubPEM == "" && privPEM == "" && certPEM == "" {
		errs.field("key.publicKey", "[missing]key.publicKey", "Give a public key, a certificate, a private key or an HMAC secret.")
		return
	}
	var public crypto.PublicKey
	var priv crypto.Signer
	var cert *x509.Certificate
	agree := func(field string, p crypto.PublicKey) {
		if public == nil {
			public = p
			return
		}
		if eq, ok := public.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(p) {
			errs.field(field, "[invalid]"+field, "This is not a half of the same key as the others given.")
		}
	}
	if certPEM != "" {
		var err error
		if cert, err = parseCertificatePEM(certPEM); err != nil {
			errs.field("key.certificate", "[invalid]key.certificate", "Not a PEM X.509 certificate.")
		} else {
			agree("key.certificate", cert.PublicKey)
		}
	}
	if pubPEM != "" {
		if p, err := parsePublicKeyPEM(pubPEM); err != nil {
			errs.field("key.publicKey", "[invalid]key.publicKey", "Not a PEM RSA or EC public key.")
		} else {
			agree("key.publicKey", p)
		}
	}
	if privPEM != "" {
		var err error
		if priv, err = parsePrivateKeyPEM(privPEM); err != nil {
			errs.field("key.privateKey", "[invalid]key.privateKey", "Not a PEM RSA or EC private key (PKCS#8, PKCS#1 or SEC 1).")
		} else {
			agree("key.privateKey", priv.Public())
		}
	}
	if !errs.empty() {
		return
	}
	field := "key.publicKey"
	if pubPEM == "" && certPEM != "" {
		field = "key.certificate"
	} else if pubPEM == "" {
		field = "key.privateKey"
	}
	switch p := public.(type) {
	case *rsa.PublicKey:
		if p.N.BitLen() < minRSABits {
			errs.field(field, "[invalid]"+field, fmt.Sprintf("An RSA key has at least %d bits.", minRSABits))
			return
		}
		if alg == "" {
			alg = "RS256"
		}
		if keyFamilies[alg].typ != keyTypeRSA {
			errs.field("key.algorithm", "[invalid]key.algorithm", "An RSA key signs RS256, RS384 or RS512.")
			return
		}
	case *ecdsa.PublicKey:
		want := ""
		for name, fam := range keyFamilies {
			if fam.typ == keyTypeEC && fam.curve == p.Curve {
				want = name
			}
		}
		if want == "" {
			errs.field(field, "[invalid]"+field, "An EC key is on P-256, P-384 or P-521.")
			return
		}
		if alg == "" {
			alg = want
		}
		if alg != want {
			errs.field("key.algorithm", "[invalid]key.algorithm", "A key on "+p.Curve.Params().Name+" signs "+want+".")
			return
		}
	default:
		errs.field(field, "[invalid]"+field, "Only RSA and EC keys can be imported.")
		return
	}
	k.Algorithm = alg
	if err := setKeyPair(k, public, priv, cert); err != nil {
		errs.field(field, "[invalid]"+field, "The key cannot be stored.")
	}
	if k.Issuer == nil && cert != nil {
		issuer := cert.Issuer.String()
		k.Issuer = &issuer
	}
}

// setKeyPair fills in an RSA or EC key: the public key in PEM, the private key
// (when there is one) as PKCS#8 DER, the certificate and when it expires.
func setKeyPair(k *store.Key, public crypto.PublicKey, priv crypto.Signer, cert *x509.Certificate) error {
	der, err := x509.MarshalPKIXPublicKey(public)
	if err != nil {
		return err
	}
	pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	k.PublicKey = &pubPEM
	var length int32
	switch p := public.(type) {
	case *rsa.PublicKey:
		k.Type, length = keyTypeRSA, int32(p.N.BitLen())
	case *ecdsa.PublicKey:
		k.Type, length = keyTypeEC, int32(p.Curve.Params().BitSize)
	}
	k.Length = &length
	if priv != nil {
		if k.Secret, err = x509.MarshalPKCS8PrivateKey(priv); err != nil {
			return err
		}
	}
	if cert != nil {
		certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
		expires := cert.NotAfter.UnixMilli()
		k.Certificate, k.ExpirationInstant = &certPEM, &expires
	}
	return nil
}

// storeKey stores a new key and answers with it, mapping refusals to field errors.
func (s *Server) storeKey(ctx context.Context, k store.Key) (gen.Key, error) {
	err := s.store.CreateKey(ctx, k)
	var ce *store.ConstraintError
	switch {
	case errors.As(err, &ce) && ce.Constraint == "keys_kid_key":
		return gen.Key{}, fieldError("key.kid", "[duplicate]key.kid", "Another key has this kid.")
	case errors.As(err, &ce) && ce.Duplicate:
		return gen.Key{}, fieldError("keyId", "[duplicate]keyId", "A key with this id exists.")
	case errors.As(err, &ce):
		return gen.Key{}, fieldError("key.tenantId", "[invalid]key.tenantId", "No tenant has this id.")
	case err != nil:
		return gen.Key{}, err
	}
	return keyOut(k), nil
}

// selfSigned makes the certificate of a generated key, issued by and to issuer.
func selfSigned(priv crypto.Signer, issuer string) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: issuer},
		NotBefore: now, NotAfter: now.Add(certificateValidity),
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func parseCertificatePEM(text string) (*x509.Certificate, error) {
	b, _ := pem.Decode([]byte(strings.TrimSpace(text)))
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

func parsePublicKeyPEM(text string) (crypto.PublicKey, error) {
	b, _ := pem.Decode([]byte(strings.TrimSpace(text)))
	if b == nil {
		return nil, errors.New("not PEM")
	}
	switch b.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(b.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(b.Bytes)
	}
	return nil, fmt.Errorf("unexpected PEM block %q", b.Type)
}

func parsePrivateKeyPEM(text string) (crypto.Signer, error) {
	b, _ := pem.Decode([]byte(strings.TrimSpace(text)))
	if b == nil {
		return nil, errors.New("not PEM")
	}
	var key any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("unexpected PEM block %q", b.Type)
	}
	if err != nil {
		return nil, err
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("unsupported private key %T", key)
}

// masterSigner parses a Key Master key to sign; errKeyCannotSign for a public key only.
func masterSigner(k store.Key) (*signingKey, error) {
	method := jwt.GetSigningMethod(k.Algorithm)
	if method == nil {
		return nil, fmt.Errorf("key %s: unknown algorithm %q", k.ID, k.Algorithm)
	}
	out := &signingKey{kid: k.Kid, method: method}
	if k.TenantID != nil {
		out.tenantID = *k.TenantID
	}
	if k.Type == keyTypeHMAC {
		out.key = k.Secret
		return out, nil
	}
	if k.Secret == nil {
		return nil, errKeyCannotSign
	}
	priv, err := x509.ParsePKCS8PrivateKey(k.Secret)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", k.ID, err)
	}
	switch p := priv.(type) {
	case *rsa.PrivateKey:
		out.key, out.public = p, &p.PublicKey
	case *ecdsa.PrivateKey:
		out.key, out.public = p, &p.PublicKey
	default:
		return nil, fmt.Errorf("key %s: unexpected type %T", k.ID, priv)
	}
	return out, nil
}

// masterVerifier parses a Key Master key to verify.
func masterVerifier(k store.Key) (verifier, error) {
	method := jwt.GetSigningMethod(k.Algorithm)
	if method == nil {
		return verifier{}, fmt.Errorf("key %s: unknown algorithm %q", k.ID, k.Algorithm)
	}
	v := verifier{kid: k.Kid, tenantID: k.TenantID, method: method}
	if k.Type == keyTypeHMAC {
		v.key = k.Secret
		return v, nil
	}
	if k.PublicKey == nil {
		return verifier{}, fmt.Errorf("key %s: no public key", k.ID)
	}
	public, err := parsePublicKeyPEM(*k.PublicKey)
	if err != nil {
		return verifier{}, fmt.Errorf("key %s: %w", k.ID, err)
	}
	v.key = public
	return v, nil
}

// checkSigningKey reports whether the Key Master key id can sign for an object
// of tenant (nil: for any tenant, which only a global key can): it exists, has
// what signs, and is global or of that tenant.
func (s *Server) checkSigningKey(ctx context.Context, id uuid.UUID, tenant *uuid.UUID) (bool, error) {
	k, err := s.store.Key(ctx, store.Scope{}, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if k.Type != keyTypeHMAC && k.Secret == nil {
		return false, nil
	}
	return k.TenantID == nil || (tenant != nil && *k.TenantID == *tenant), nil
}

func keyOut(k store.Key) gen.Key {
	alg, typ := gen.KeyAlgorithm(k.Algorithm), gen.KeyType(k.Type)
	hasPrivate := k.Type != keyTypeHMAC && k.Secret != nil
	out := gen.Key{
		Id: &k.ID, TenantId: k.TenantID, Algorithm: &alg, Type: &typ, Name: &k.Name, Kid: &k.Kid,
		Length: k.Length, Issuer: k.Issuer, PublicKey: k.PublicKey, Certificate: k.Certificate,
		HasPrivateKey: &hasPrivate, ExpirationInstant: k.ExpirationInstant,
		InsertInstant: &k.InsertInstant, LastUpdateInstant: &k.LastUpdateInstant,
	}
	if k.Type == keyTypeHMAC {
		secret := string(k.Secret)
		out.Secret = &secret
	}
	if k.Certificate != nil {
		if cert, err := parseCertificatePEM(*k.Certificate); err == nil {
			out.CertificateInformation = certificateInformation(cert)
		}
	}
	return out
}

func certificateInformation(c *x509.Certificate) *gen.CertificateInformation {
	sha1Sum, sha256Sum := sha1.Sum(c.Raw), sha256.Sum256(c.Raw)
	issuer, subject, serial := c.Issuer.String(), c.Subject.String(), c.SerialNumber.Text(16)
	t1 := base64.RawURLEncoding.EncodeToString(sha1Sum[:])
	t256 := base64.RawURLEncoding.EncodeToString(sha256Sum[:])
	from, to := c.NotBefore.UnixMilli(), c.NotAfter.UnixMilli()
	return &gen.CertificateInformation{Issuer: &issuer, Subject: &subject, SerialNumber: &serial,
		Sha1Thumbprint: &t1, Sha256Thumbprint: &t256, ValidFrom: &from, ValidTo: &to}
}
