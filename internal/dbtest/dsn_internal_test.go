package dbtest

import (
	"testing"

	"github.com/lib/pq"
)

func TestWithDatabase(t *testing.T) {
	for _, base := range []string{
		"postgres://alice:secret@db.example:6543/app?sslmode=disable",
		"postgresql://alice:secret@db.example:6543?sslmode=disable",
		"host=db.example port=6543 user=alice password=secret dbname=app sslmode=disable",
		"host=db.example port=6543 user=alice password=secret sslmode=disable",
	} {
		dsn := withDatabase(base, "t_0123")
		cfg, err := pq.NewConfig(dsn)
		if err != nil {
			t.Fatalf("withDatabase(%q) = %q: %v", base, dsn, err)
		}
		if cfg.Database != "t_0123" || cfg.Host != "db.example" || cfg.Port != 6543 || cfg.User != "alice" || cfg.Password != "secret" {
			t.Errorf("withDatabase(%q) = %q, parsed as db=%q host=%q port=%d user=%q", base, dsn, cfg.Database, cfg.Host, cfg.Port, cfg.User)
		}
	}
}

func TestQuoteValue(t *testing.T) {
	for _, name := range []string{"plain", "with space", "it's", `back\slash`} {
		cfg, err := pq.NewConfig("host=/tmp dbname=" + quoteValue(name))
		if err != nil || cfg.Database != name {
			t.Errorf("quoteValue(%q) = %q parsed as %q, %v", name, quoteValue(name), cfg.Database, err)
		}
	}
}
