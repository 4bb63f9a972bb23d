package impl_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
)

// dbState is a digest of every row of every table of the schema (the migrations'
// bookkeeping aside): equal digests mean an unchanged database. Tables are found
// in the catalog, so a table added later is covered without anyone remembering.
type dbState struct {
	db    *sqlx.DB
	query string
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
	parts := make([]string, len(tables))
	for i, name := range tables {
		parts[i] = fmt.Sprintf(`SELECT %s || r::text FROM %q r`, quoteLiteral(name+" "), name)
	}
	return &dbState{db: db, query: `SELECT coalesce(md5(string_agg(x, E'\n' ORDER BY x)), '') FROM (` +
		strings.Join(parts, " UNION ALL ") + `) rows (x)`}
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
