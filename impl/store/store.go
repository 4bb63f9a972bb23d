// Package store keeps tenants, applications, users, refresh tokens and API keys in
// PostgreSQL. Every method is one statement or one transaction, so a request either
// fully happens or not at all; errors are classified by SQLSTATE, never by message.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrNotFound is returned when the row named does not exist within the scope.
var ErrNotFound = errors.New("store: not found")

// ConstraintError reports a write refused by a database constraint: Duplicate for a
// unique violation (23505), otherwise a reference to a missing row (23503).
type ConstraintError struct {
	Duplicate  bool
	Constraint string
	Err        error
}

func (e *ConstraintError) Error() string {
	kind := "invalid reference"
	if e.Duplicate {
		kind = "duplicate"
	}
	return fmt.Sprintf("store: %s (%s)", kind, e.Constraint)
}

func (e *ConstraintError) Unwrap() error { return e.Err }

// classify turns PostgreSQL constraint violations into *ConstraintError and
// sql.ErrNoRows into ErrNotFound; anything else is returned as it is.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code {
		case "23505":
			return &ConstraintError{Duplicate: true, Constraint: pqErr.Constraint, Err: err}
		case "23503":
			return &ConstraintError{Constraint: pqErr.Constraint, Err: err}
		}
	}
	return err
}

// retryable reports whether a transaction lost a deadlock or serialisation race and
// may simply be run again.
func retryable(err error) bool {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		return pqErr.Code == "40P01" || pqErr.Code == "40001"
	}
	return false
}

// Store is the PostgreSQL store. It is safe for concurrent use.
type Store struct {
	db    *sqlx.DB
	batch *batcher

	secret atomic.Pointer[[]byte] // the rotation secret, once read

	closeOnce sync.Once
}

var errStoreClosed = errors.New("store: closed")

// Open connects to dsn, checks the connection and applies the embedded migrations.
func Open(ctx context.Context, dsn string) (*Store, error) {
	sqlDB, err := OpenDB(dsn)
	if err != nil {
		return nil, err
	}
	db := sqlx.NewDb(sqlDB, "postgres")
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	if err := Migrate(ctx, db.DB); err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{db: db}
	s.batch = newBatcher(s)
	return s, nil
}

// OpenDB opens a connection pool the way the store connects: with binary
// parameters, which let lib/pq send each statement in one round trip (no
// separate prepare). Benchmarks use it so that their raw side connects alike.
func OpenDB(dsn string) (*sql.DB, error) {
	cfg, err := pq.NewConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", err)
	}
	cfg.BinaryParameters = true
	connector, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return sql.OpenDB(connector), nil
}

// Migrate applies the embedded migrations under a session lock, so that several
// servers starting at once do not race.
func Migrate(ctx context.Context, db *sql.DB) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// MigrateDSN connects to dsn, applies the migrations and disconnects: what a test
// template database needs.
func MigrateDSN(dsn string) error {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	return Migrate(context.Background(), db)
}

// Close stops the revocation workers and closes the connection pool.
func (s *Store) Close() error {
	s.closeOnce.Do(s.batch.close)
	return s.db.Close()
}

// DB exposes the pool, for tests and benchmarks that inspect the tables directly.
func (s *Store) DB() *sqlx.DB { return s.db }

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.db.GetContext(ctx, &one, "SELECT 1")
}

// inTx runs fn in one transaction, retrying a few times when PostgreSQL aborts it
// to resolve a deadlock or a serialisation conflict.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = s.tryTx(ctx, fn)
		if !retryable(err) {
			return err
		}
	}
	return err
}

func (s *Store) tryTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// retry runs a single-statement operation again when it lost a deadlock.
func retry(fn func() error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = fn()
		if !retryable(err) {
			return err
		}
	}
	return err
}

// Scope limits a request to one tenant; the zero Scope sees every tenant.
type Scope struct {
	TenantID *uuid.UUID
}

// JWTConfig holds token lifetimes and policies, stored as JSON. Zero fields mean
// "use the default".
type JWTConfig struct {
	Enabled                         bool   `json:"enabled"`
	AccessTokenSigningAlgorithm     string `json:"accessTokenSigningAlgorithm,omitempty"`
	AccessTokenKeyID                string `json:"accessTokenKeyId,omitempty"`
	TimeToLiveInSeconds             int32  `json:"timeToLiveInSeconds,omitempty"`
	RefreshTokenTimeToLiveInMinutes int32  `json:"refreshTokenTimeToLiveInMinutes,omitempty"`
	RefreshTokenExpirationPolicy    string `json:"refreshTokenExpirationPolicy,omitempty"`
	RefreshTokenUsagePolicy         string `json:"refreshTokenUsagePolicy,omitempty"`
	MaximumTimeToLiveInMinutes      int32  `json:"maximumTimeToLiveInMinutes,omitempty"`
	GracePeriodInSeconds            int32  `json:"gracePeriodInSeconds,omitempty"`
	// RevocationPolicy is kept as given; only a tenant's OnOneTimeTokenReuse is acted on.
	RevocationPolicy *RevocationPolicy `json:"refreshTokenRevocationPolicy,omitempty"`
}

// RevocationPolicy says when refresh tokens are revoked, in FusionAuth's shape.
type RevocationPolicy struct {
	OnLoginPrevented    bool `json:"onLoginPrevented"`
	OnMultiFactorEnable bool `json:"onMultiFactorEnable"`
	OnOneTimeTokenReuse bool `json:"onOneTimeTokenReuse"`
	OnPasswordChanged   bool `json:"onPasswordChanged"`
}

// Value stores the configuration as jsonb.
func (c JWTConfig) Value() (driver.Value, error) { return jsonText(c) }

// Scan reads the configuration from jsonb.
func (c *JWTConfig) Scan(src any) error { return scanJSON(src, c) }

// JSONObject is a free-form JSON object column (user data, token metadata).
type JSONObject map[string]any

// Value stores the object as jsonb; nil is SQL NULL.
func (o JSONObject) Value() (driver.Value, error) {
	if o == nil {
		return nil, nil
	}
	return jsonText(map[string]any(o))
}

// Scan reads the object from jsonb.
func (o *JSONObject) Scan(src any) error { return scanJSON(src, o) }

// jsonText encodes v as JSON text. Text, not []byte: with binary parameters the
// driver would send []byte as jsonb's binary format, which it is not.
func jsonText(v any) (driver.Value, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

func scanJSON(src any, dst any) error {
	switch v := src.(type) {
	case nil:
		return nil
	case []byte:
		return json.Unmarshal(v, dst)
	case string:
		return json.Unmarshal([]byte(v), dst)
	default:
		return fmt.Errorf("store: cannot scan %T as JSON", src)
	}
}

// NowMillis is the current time in epoch milliseconds, the unit of every instant.
func NowMillis() int64 { return time.Now().UnixMilli() }
