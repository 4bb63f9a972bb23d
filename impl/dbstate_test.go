package impl_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
)

// dbState tells whether the database changed: a digest of every row version of
// every table of the schema (the migrations' bookkeeping aside). Tables are found in
// the catalog, so a table added later is covered without anyone remembering.
// The digest is taken only when needed: PostgreSQL's snapshot says when no
// transaction has even been given an id since the last look, and then nothing
// can have been written.
type dbState struct {
	db    *sqlx.DB
	query string

	lastSnapshot, lastDigest string
}

// dbMark is the database at one moment.
type dbMark struct {
	snapshot string // pg_current_snapshot(), when no transaction was in progress
	digest   string
}

func newDBState(t testing.TB, db *sqlx.DB) *dbState {
	t.Helper()
	var tables []string
	if err := db.Select(&tables, `SELECT tablename FROM pg_tables
		WHERE schemaname = current_schema() AND tablename NOT LIKE 'goose%' ORDER BY tablename`); err != nil {
		t.Fatalf("list tables: %v", err)
	}
	if len(tables) < 5 {
		t.Fatalf("tables: got %v, want the whole schema", tables)
	}
	// Every write leaves row versions with new (ctid, xmin) pairs, or removes
	// some: an order-independent sum of their 64-bit hashes, with the row count,
	// changes with any insert, update or delete, and costs no reading of the rows'
	// contents (a 7 MiB event included). Row locks (FOR UPDATE) are not writes
	// and leave it alone.
	parts := make([]string, len(tables))
	for i, name := range tables {
		parts[i] = fmt.Sprintf(`SELECT hashtextextended(%s || r.ctid::text || r.xmin::text, 0) FROM %q r`,
			quoteLiteral(name+" "), name)
	}
	return &dbState{db: db, query: `SELECT coalesce(sum(h), 0)::text || '/' || count(*) FROM (` +
		strings.Join(parts, " UNION ALL ") + `) rows (h)`}
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// digest returns the digest of the database now.
func (d *dbState) digest(t testing.TB) string {
	t.Helper()
	var sum string
	if err := d.db.Get(&sum, d.query); err != nil {
		t.Fatalf("digest the database: %v", err)
	}
	return sum
}

// quietSnapshot returns the current snapshot, or "" while a transaction is in
// progress (xmin < xmax) and writes may still land.
func (d *dbState) quietSnapshot(t testing.TB) string {
	t.Helper()
	var snap string
	if err := d.db.Get(&snap, `SELECT pg_current_snapshot()::text`); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	xmin, rest, _ := strings.Cut(snap, ":")
	xmax, _, _ := strings.Cut(rest, ":")
	if xmin != xmax {
		return ""
	}
	return snap
}

// mark notes the database as it is now.
func (d *dbState) mark(t testing.TB) dbMark {
	t.Helper()
	snap := d.quietSnapshot(t)
	if snap == "" || snap != d.lastSnapshot {
		d.lastSnapshot, d.lastDigest = snap, d.digest(t)
	}
	return dbMark{snapshot: snap, digest: d.lastDigest}
}

// unchanged reports whether the database is as it was at m.
func (d *dbState) unchanged(t testing.TB, m dbMark) bool {
	t.Helper()
	if m.snapshot != "" && d.quietSnapshot(t) == m.snapshot {
		return true
	}
	return d.digest(t) == m.digest
}
