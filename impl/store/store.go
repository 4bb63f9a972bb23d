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

// Store is the PostgreSQL store. It is safe for concurrent use.
type Store struct {
	db    *sqlx.DB
	gate  *gate
	batch *batcher

	secret atomic.Pointer[[]byte] // the rotation secret, once read

	closeOnce sync.Once
}

var errStoreClosed = errors.New("store: closed")

// Options tune a store; the zero value takes the defaults.
type Options struct {
	// BatchWorkers is how many batches of each kind (single-token revocations,
	// revocations of users' tokens, exchanges) may be in flight at once
	// (batch.go); 0 takes DefaultBatchWorkers.
	BatchWorkers int
}

// DefaultBatchWorkers suits a database of a few cores: measured on two, two
// workers per kind gave the most requests per second at 16 and 64 clients, and
// the least PostgreSQL CPU per request (BENCHMARKS.md).
const DefaultBatchWorkers = 2

// Open connects to dsn, checks the connection and applies the embedded
// migrations, with the default Options.
func Open(ctx context.Context, dsn string) (*Store, error) {
	return OpenWith(ctx, dsn, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, dsn string, opt Options) (*Store, error) {
	sqlDB, g, err := openDB(dsn)
	if err != nil {
		return nil, err
	}
	db := sqlx.NewDb(sqlDB, "postgres")
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		g.shutdown()
		db.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	if err := Migrate(ctx, db.DB); err != nil {
		g.shutdown()
		db.Close()
		return nil, err
	}
	s := &Store{db: db, gate: g}
	workers := opt.BatchWorkers
	if workers <= 0 {
		workers = DefaultBatchWorkers
	}
	s.batch = newBatcher(s, workers)
	return s, nil
}

// OpenDB opens a connection pool the way the store connects: with binary
// parameters, which let lib/pq send each statement in one round trip (no
// separate prepare), a connect timeout (5 s unless the URL sets connect_timeout),
// and the outage gate (gate.go). Benchmarks use it so that their raw side
// connects alike.
func OpenDB(dsn string) (*sql.DB, error) {
	db, _, err := openDB(dsn)
	return db, err
}

func openDB(dsn string) (*sql.DB, *gate, error) {
	cfg, err := pq.NewConfig(dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("database URL: %w", err)
	}
	cfg.BinaryParameters = true
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = defaultConnectTimeout
	}
	connector, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	g := newGate(connector)
	return sql.OpenDB(g), g, nil
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
	s.closeOnce.Do(func() {
		s.batch.close()
		s.gate.shutdown()
	})
	return s.db.Close()
}

// DB exposes the pool, for tests and benchmarks that inspect the tables directly.
func (s *Store) DB() *sqlx.DB { return s.db }

// Ping reports whether the database answers; during an outage it fails at once
// with an *UnavailableError.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return classify(s.db.GetContext(ctx, &one, "SELECT 1"))
}

// Available reports whether the store believes the database reachable: false
// while the outage gate is shut (gate.go), from a connection attempt that found
// no server until one succeeds.
func (s *Store) Available() bool { return s.gate.available() }

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

// JSONObject is a free-form JSON object column (user data, token metadata). Its
// numbers are json.Number, read and written exactly.
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

// AsStored returns the object as it reads back once stored: with U+0000 as
// U+FFFD (see pgJSON), so that an answer made before reading back says the same.
func (o JSONObject) AsStored() (JSONObject, error) {
	if o == nil {
		return nil, nil
	}
	b, err := json.Marshal(map[string]any(o))
	if err != nil {
		return nil, err
	}
	var out JSONObject
	return out, decodeJSON(pgJSON(b), &out)
}

// jsonText encodes v as JSON text that jsonb can hold (see pgJSON). Text, not
// []byte: with binary parameters the driver would send []byte as jsonb's binary
// format, which it is not.
func jsonText(v any) (driver.Value, error) {
	b, err := json.Marshal(v)
	return string(pgJSON(b)), err
}

func scanJSON(src any, dst any) error {
	switch v := src.(type) {
	case nil:
		return nil
	case []byte:
		return decodeJSON(v, dst)
	case string:
		return decodeJSON([]byte(v), dst)
	default:
		return fmt.Errorf("store: cannot scan %T as JSON", src)
	}
}

// NowMillis is the current time in epoch milliseconds, the unit of every instant.
func NowMillis() int64 { return time.Now().UnixMilli() }
