package impl

import (
	"context"
	"math/rand/v2"
	"testing"

	"refreshd/impl/store"
	"refreshd/internal/dbtest"
)

// TestExchangePolicyMatchesGo: the database's exchange_policy, which decides an
// exchange, and effectivePolicy, which decides everything else (the access
// token's lifetime, the answer's expiry), agree on every combination of set,
// unset, zero and negative values, enabled or not.
func TestExchangePolicyMatchesGo(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, dbtest.NewDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	num := func() int32 { return []int32{0, -7, 1, 5, 60, 43200, 2147483647}[rng.IntN(7)] }
	text := func(of ...string) string { return append([]string{""}, of...)[rng.IntN(len(of)+1)] }
	random := func() store.JWTConfig {
		return store.JWTConfig{
			Enabled:                         rng.IntN(2) == 0,
			TimeToLiveInSeconds:             num(),
			RefreshTokenTimeToLiveInMinutes: num(),
			RefreshTokenExpirationPolicy:    text("Fixed", "SlidingWindow", "SlidingWindowWithMaximumLifetime"),
			RefreshTokenUsagePolicy:         text("Reusable", "OneTimeUse"),
			MaximumTimeToLiveInMinutes:      num(),
			GracePeriodInSeconds:            num(),
		}
	}
	for i := 0; i < 400; i++ {
		app, tenant := random(), random()
		var got struct {
			AccessTTL      int64  `db:"access_ttl"`
			RefreshMinutes int64  `db:"refresh_minutes"`
			Expiration     string `db:"expiration"`
			Usage          string `db:"usage"`
			MaxMinutes     int64  `db:"max_minutes"`
			GraceSeconds   int64  `db:"grace_seconds"`
		}
		if err := st.DB().GetContext(ctx, &got, `SELECT * FROM exchange_policy($1, $2)`, app, tenant); err != nil {
			t.Fatal(err)
		}
		want := effectivePolicy(app, tenant)
		if got.AccessTTL != want.accessTTLSeconds || got.RefreshMinutes != want.refreshTTLMinutes ||
			got.Expiration != want.expiration || got.Usage != want.usage ||
			got.MaxMinutes != want.maxLifetimeMinutes || got.GraceSeconds != want.graceSeconds {
			t.Fatalf("app %+v, tenant %+v:\ndatabase %+v\nGo       %+v", app, tenant, got, want)
		}
	}
}
