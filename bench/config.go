// Package bench measures refreshd against the database underneath it: every
// scenario runs through the HTTP API, then as the identical SQL statement (raw)
// and as the least plain SQL of the same effect (minimal) straight against the
// same database, from the same kind of client at the same concurrency. Server ÷
// raw is what the server costs over our SQL; server ÷ minimal is how far server
// and SQL together are from what the work needs.
//
// Run starts (or connects to) PostgreSQL, serves impl.New in this process on a
// real TCP socket, seeds the data through the HTTP API, and drives the load from a
// separate process (this binary again, see IsLoadgen) so that the client's CPU
// and the server's CPU, RSS and profile can be told apart. It writes a table to
// an io.Writer and the results as JSON.
package bench

import (
	"io"
	"time"
)

// Config says what to run and where.
type Config struct {
	// Scale sets the data sizes and request counts: Full, Quick or Smoke.
	Scale Scale
	// DatabaseURL is an existing PostgreSQL server; a fresh database is created on
	// it for the run and dropped afterwards. Empty starts a private cluster in a
	// temporary directory.
	DatabaseURL string
	// KeepDatabase leaves the database (and a private cluster's directory) in
	// place; Report.DSN names it. Only meaningful with DatabaseURL, since a
	// private cluster is stopped at the end.
	KeepDatabase bool
	// PostmasterPID, with DatabaseURL, is the process id of that server's
	// postmaster when it runs on this machine and serves this run alone: its
	// processes' CPU is then measured as a private cluster's is. 0 leaves the
	// PostgreSQL CPU columns empty, since another database's work on a shared
	// server would be counted as ours.
	PostmasterPID int
	// FastPostgres runs the private cluster without fsync and synchronous commit.
	// The default is the durable configuration `make run` uses.
	FastPostgres bool
	// MaxRunDuration, when positive, ends each measured run after this long even
	// if not all of its requests were sent (fixed-duration instead of fixed-count).
	MaxRunDuration time.Duration
	// CPUProfile, when set, is where a CPU profile of the server process is
	// written, taken during the run named ProfileRun.
	CPUProfile string
	// ProfileRun names the server run to profile; empty means revoke by token,
	// query form, at 16 clients (or the scale's nearest concurrency).
	ProfileRun string
	// Command is printed as the command that was run.
	Command string
	// Out receives the table; Log receives progress and the server's warnings.
	Out, Log io.Writer
}

// Scale is the size of a run.
type Scale struct {
	Name string
	// BigApp is the number of tokens of each of the two applications of the bulk
	// revoke; the first of them also makes the "big" table of the latency check.
	BigApp      int
	BigAppUsers int
	// PoolUsers own the tokens revoked one by one.
	PoolUsers int
	// TokenConcurrencies and TokenCount: revoke by token value, per form.
	TokenConcurrencies []int
	TokenCount         map[int]int
	// UserConcurrency and UserCount: revoke by user, and by user + application,
	// each user holding TokensPerUser tokens (one at full and quick scale: one
	// session per user, the shape of the peer comparison in BENCHMARKS.md).
	UserConcurrency int
	UserCount       int
	TokensPerUser   int
	// Import: ImportTokens per run, in batches of BatchSize.
	ImportConcurrencies []int
	ImportTokens        int
	BatchSize           int
	// SmallTable is the number of stored tokens of the small side of the latency
	// check; LatencyCount is the revocations per concurrency on each side. The
	// three sides' latency pools must fit in SmallTable.
	SmallTable           int
	LatencyConcurrencies []int
	LatencyCount         map[int]int
	// ExchangeConcurrencies and ExchangeCount: exchanges of a reusable refresh
	// token for a JWT, per concurrency, cycling through ExchangePool imported
	// tokens (a pool per side: server, raw, minimal).
	ExchangeConcurrencies []int
	ExchangeCount         map[int]int
	ExchangePool          int
	// WebhookConcurrency and WebhookCount: revoke by token (query form) with a
	// webhook registered for the revoke event and the dispatcher running.
	WebhookConcurrency int
	WebhookCount       int
	// SeedConcurrency is the number of import requests in flight while seeding.
	SeedConcurrency int
	// MinWarmup is the least number of un-timed requests before each run; at
	// least two per client are always made, to open every connection.
	MinWarmup int
	// ProfileConcurrency is the concurrency of the default profiled run.
	ProfileConcurrency int
}

// Full is `make bench`: a million tokens per bulk application; a few minutes.
func Full() Scale {
	return Scale{
		Name:   "full",
		BigApp: 1_000_000, BigAppUsers: 10_000,
		PoolUsers:          1_000,
		TokenConcurrencies: []int{1, 16, 64},
		TokenCount:         map[int]int{1: 5_000, 16: 20_000, 64: 20_000},
		UserConcurrency:    16, UserCount: 10_000, TokensPerUser: 1,
		ImportConcurrencies: []int{1, 4}, ImportTokens: 100_000, BatchSize: 1_000,
		SmallTable: 10_000, LatencyConcurrencies: []int{1, 16}, LatencyCount: map[int]int{1: 1_000, 16: 2_000},
		ExchangeConcurrencies: []int{1, 16}, ExchangeCount: map[int]int{1: 5_000, 16: 20_000}, ExchangePool: 1_000,
		WebhookConcurrency: 16, WebhookCount: 20_000,
		SeedConcurrency: 4, MinWarmup: 20, ProfileConcurrency: 16,
	}
}

// Quick is `make bench-quick`: a tenth of the bulk data and fewer requests;
// a few minutes.
func Quick() Scale {
	return Scale{
		Name:   "quick",
		BigApp: 100_000, BigAppUsers: 2_000,
		PoolUsers:          500,
		TokenConcurrencies: []int{1, 16, 64},
		TokenCount:         map[int]int{1: 1_000, 16: 3_000, 64: 3_000},
		UserConcurrency:    16, UserCount: 3_000, TokensPerUser: 1,
		ImportConcurrencies: []int{1, 4}, ImportTokens: 20_000, BatchSize: 1_000,
		SmallTable: 10_000, LatencyConcurrencies: []int{1, 16}, LatencyCount: map[int]int{1: 1_000, 16: 2_000},
		ExchangeConcurrencies: []int{1, 16}, ExchangeCount: map[int]int{1: 1_000, 16: 3_000}, ExchangePool: 500,
		WebhookConcurrency: 16, WebhookCount: 3_000,
		SeedConcurrency: 4, MinWarmup: 20, ProfileConcurrency: 16,
	}
}

// Smoke is a few hundred tokens: proves the harness works end to end, measures
// nothing worth reading.
func Smoke() Scale {
	return Scale{
		Name:   "smoke",
		BigApp: 300, BigAppUsers: 10,
		PoolUsers:          5,
		TokenConcurrencies: []int{1, 4},
		TokenCount:         map[int]int{1: 20, 4: 40},
		UserConcurrency:    4, UserCount: 10, TokensPerUser: 10,
		ImportConcurrencies: []int{1, 2}, ImportTokens: 200, BatchSize: 100,
		SmallTable: 200, LatencyConcurrencies: []int{1, 4}, LatencyCount: map[int]int{1: 20, 4: 30},
		ExchangeConcurrencies: []int{1, 4}, ExchangeCount: map[int]int{1: 20, 4: 40}, ExchangePool: 20,
		WebhookConcurrency: 4, WebhookCount: 40,
		SeedConcurrency: 2, MinWarmup: 2, ProfileConcurrency: 4,
	}
}

func (s Scale) warmup(concurrency int) int { return max(2*concurrency, s.MinWarmup) }
