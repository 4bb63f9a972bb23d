package store

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// Key is a Key Master key: an RSA or EC key pair, an imported public key (Secret
// nil: it only verifies), or an HMAC secret (Secret holds the secret's UTF-8
// bytes). Secret holds a key pair's private key as PKCS#8 DER, as signing_keys
// do. A nil TenantID is a global key.
type Key struct {
	ID                uuid.UUID  `db:"id"`
	TenantID          *uuid.UUID `db:"tenant_id"`
	Kid               string     `db:"kid"`
	Name              string     `db:"name"`
	Algorithm         string     `db:"algorithm"`
	Type              string     `db:"type"`
	Length            *int32     `db:"length"`
	Issuer            *string    `db:"issuer"`
	Certificate       *string    `db:"certificate"`
	PublicKey         *string    `db:"public_key"`
	Secret            []byte     `db:"secret"`
	ExpirationInstant *int64     `db:"expiration_instant"`
	InsertInstant     int64      `db:"insert_instant"`
	LastUpdateInstant int64      `db:"last_update_instant"`
}

// ErrKeyInUse is returned when a key to delete still signs something.
var ErrKeyInUse = errors.New("store: key in use")

const keyColumns = `id, tenant_id, kid, name, algorithm, type, length, issuer, certificate, public_key, secret,
       expiration_instant, insert_instant, last_update_instant`

// A kid that is a built-in signing key's id is taken as well: verifiers find a
// key by its kid in either table. NULLIF: with binary parameters an absent
// secret arrives as an empty bytea.
const insertKey = `
INSERT INTO keys (` + keyColumns + `)
SELECT CAST(:id AS uuid), CAST(:tenant_id AS uuid), CAST(:kid AS text), CAST(:name AS text), CAST(:algorithm AS text), CAST(:type AS text), CAST(:length AS integer),
       CAST(:issuer AS text), CAST(:certificate AS text), CAST(:public_key AS text), NULLIF(CAST(:secret AS bytea), CAST('' AS bytea)),
       CAST(:expiration_instant AS bigint), CAST(:insert_instant AS bigint), CAST(:last_update_instant AS bigint)
WHERE NOT EXISTS (SELECT 1 FROM signing_keys s WHERE CAST(s.id AS text) = CAST(:kid AS text))`

// CreateKey stores a key. A taken id is a *ConstraintError on keys_pkey, a
// taken kid one on keys_kid_key, an unknown tenant one on keys_tenant_id_fkey.
func (s *Store) CreateKey(ctx context.Context, k Key) error {
	res, err := s.db.NamedExecContext(ctx, insertKey, k)
	if err != nil {
		return classify(err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		if err != nil {
			return err
		}
		return &ConstraintError{Duplicate: true, Constraint: "keys_kid_key"}
	}
	return nil
}

// Key returns one key within the scope (a scoped caller sees its tenant's keys
// only), or ErrNotFound.
func (s *Store) Key(ctx context.Context, sc Scope, id uuid.UUID) (Key, error) {
	var k Key
	err := s.db.GetContext(ctx, &k, `SELECT `+keyColumns+` FROM keys
		WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)`, id, sc.TenantID)
	return k, classify(err)
}

// Keys returns the keys within the scope, oldest first.
func (s *Store) Keys(ctx context.Context, sc Scope) ([]Key, error) {
	out := []Key{}
	err := s.db.SelectContext(ctx, &out, `SELECT `+keyColumns+` FROM keys
		WHERE $1::uuid IS NULL OR tenant_id = $1 ORDER BY insert_instant, id`, sc.TenantID)
	return out, err
}

// PublicKeys returns every RSA and EC key, for the JWKS.
func (s *Store) PublicKeys(ctx context.Context) ([]Key, error) {
	out := []Key{}
	err := s.db.SelectContext(ctx, &out, `SELECT `+keyColumns+` FROM keys WHERE type <> 'HMAC' ORDER BY insert_instant, id`)
	return out, err
}

// KeyByKid returns the Key Master key with that kid, or ErrNotFound.
func (s *Store) KeyByKid(ctx context.Context, kid string) (Key, error) {
	var k Key
	err := s.db.GetContext(ctx, &k, `SELECT `+keyColumns+` FROM keys WHERE kid = $1`, kid)
	return k, classify(err)
}

const keyInUse = `
SELECT EXISTS (SELECT 1 FROM applications WHERE jwt_configuration ->> 'accessTokenKeyId' = $1::text)
    OR EXISTS (SELECT 1 FROM tenants WHERE jwt_configuration ->> 'accessTokenKeyId' = $1::text)
    OR EXISTS (SELECT 1 FROM webhooks WHERE signing_key_id = $1::uuid)`

// DeleteKey deletes a key within the scope. ErrNotFound when there is none;
// ErrKeyInUse when an application's or tenant's accessTokenKeyId or a webhook's
// signing key names it.
func (s *Store) DeleteKey(ctx context.Context, sc Scope, id uuid.UUID) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var found uuid.UUID
		err := tx.GetContext(ctx, &found, `SELECT id FROM keys WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2) FOR UPDATE`,
			id, sc.TenantID)
		if err != nil {
			return classify(err)
		}
		var inUse bool
		if err := tx.GetContext(ctx, &inUse, keyInUse, id); err != nil {
			return err
		}
		if inUse {
			return ErrKeyInUse
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM keys WHERE id = $1`, id)
		if ce := (*ConstraintError)(nil); errors.As(classify(err), &ce) {
			return ErrKeyInUse // a webhook took it up meanwhile
		}
		return err
	})
}
