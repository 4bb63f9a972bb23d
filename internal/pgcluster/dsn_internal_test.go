package pgcluster

import (
	"testing"

	"github.com/lib/pq"
)

func TestDSNQuoting(t *testing.T) {
	for _, host := range []string{"/tmp/plain", "/tmp/with space", `/tmp/it's`, `/tmp/back\slash`} {
		c := &Cluster{sockDir: host}
		cfg, err := pq.NewConfig(c.DSN("my db"))
		if err != nil {
			t.Fatalf("DSN %q: %v", c.DSN("my db"), err)
		}
		if cfg.Host != host || cfg.Database != "my db" || cfg.User != "postgres" || cfg.Port != 5432 {
			t.Errorf("DSN %q parsed as host=%q db=%q user=%q port=%d", c.DSN("my db"), cfg.Host, cfg.Database, cfg.User, cfg.Port)
		}
	}
}
