package dbtest_test

import (
	"testing"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"

	"refreshd/internal/dbtest"
)

func TestMain(m *testing.M) {
	dbtest.Main(m, func(dsn string) error {
		db, err := sqlx.Connect("postgres", dsn)
		if err != nil {
			return err
		}
		defer db.Close()
		_, err = db.Exec(`CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)`)
		return err
	})
}

func countItems(t *testing.T, db *sqlx.DB) int {
	t.Helper()
	var n int
	if err := db.Get(&n, `SELECT count(*) FROM items`); err != nil {
		t.Fatalf("counting items: %v", err)
	}
	return n
}

func TestFreshDatabaseHasTemplateTable(t *testing.T) {
	t.Parallel()
	dsnA, dsnB := dbtest.NewDSN(t), dbtest.NewDSN(t)
	if dsnA == dsnB {
		t.Fatalf("NewDSN returned the same DSN twice: %s", dsnA)
	}
	for _, dsn := range []string{dsnA, dsnB} {
		db, err := sqlx.Connect("postgres", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var dbname string
		if err := db.Get(&dbname, `SELECT current_database()`); err != nil {
			t.Fatal(err)
		}
		if dbname == "refreshd_template" || dbname == "postgres" {
			t.Errorf("connected to %q, want a fresh database", dbname)
		}
		if n := countItems(t, db); n != 0 {
			t.Errorf("%s: fresh database has %d items, want 0", dbname, n)
		}
	}
}

func TestDatabasesAreIsolated(t *testing.T) {
	t.Parallel()
	a, b := dbtest.New(t), dbtest.New(t)
	if _, err := a.Exec(`INSERT INTO items (name) VALUES ('only in a')`); err != nil {
		t.Fatal(err)
	}
	if n := countItems(t, a); n != 1 {
		t.Errorf("a has %d items, want 1", n)
	}
	if n := countItems(t, b); n != 0 {
		t.Errorf("b has %d items, want 0: databases are not isolated", n)
	}
}

// TestManyParallel clones the template concurrently, exercising the
// serialisation of CREATE DATABASE ... TEMPLATE.
func TestManyParallel(t *testing.T) {
	for i := range 8 {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			db := dbtest.New(t)
			if _, err := db.Exec(`INSERT INTO items (name) VALUES ($1)`, i); err != nil {
				t.Fatal(err)
			}
			if n := countItems(t, db); n != 1 {
				t.Errorf("%d items, want 1", n)
			}
		})
	}
}
