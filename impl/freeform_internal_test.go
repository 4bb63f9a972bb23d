package impl

import (
	"encoding/json"
	"math"
	"math/big"
	"testing"

	"refreshd/internal/dbtest"
)

// FuzzNumberBound checks the bound on free-form numbers (numberFits) against
// PostgreSQL itself: every JSON number the server lets through is stored by
// jsonb and reads back with the same value, and is within a double's range.
//
// go test ./impl -run '^$' -fuzz '^FuzzNumberBound$' -fuzztime 1m
func FuzzNumberBound(f *testing.F) {
	db := dbtest.New(f)
	for _, seed := range []string{"0", "-0", "1.5", "9223372036854775807", "-9223372036854775809", "1e308", "1.7976931348623157e308",
		"1.8e308", "4.9406564584124654e-324", "1e-400", "0e99999999999999999999", "0.1e-399", "123456789012345678901234567890e-20"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, lit string) {
		var n json.Number
		if json.Unmarshal([]byte(lit), &n) != nil || string(n) != lit || !numberFits(lit) {
			return // not a JSON number, or one the server refuses
		}
		var back string
		if err := db.Get(&back, `SELECT ($1::jsonb)::text`, lit); err != nil {
			t.Fatalf("%s passes the bound, but PostgreSQL refuses it: %v", lit, err)
		}
		x, _ := new(big.Rat).SetString(lit)
		y, ok := new(big.Rat).SetString(back)
		if !ok || x.Cmp(y) != 0 {
			t.Fatalf("%s came back as %.80s", lit, back)
		}
		if f, _ := x.Float64(); math.IsInf(f, 0) {
			t.Fatalf("%s passes the bound but is beyond a double", lit)
		}
	})
}

// TestNumberFits pins the bound's edges.
func TestNumberFits(t *testing.T) {
	for lit, want := range map[string]bool{
		"0": true, "-0": true, "9223372036854775807": true, "-9223372036854775809": true, "1e308": true,
		"1.7976931348623157e308": true, "4.9406564584124654e-324": true, "1e-400": true, "0.1e-399": true,
		"1e400": false, "-1.8e309": false, "1e-401": false, "0.1e-400": false, "0e99999999999999999999": false,
		"0e1000001": false,
	} {
		if got := numberFits(lit); got != want {
			t.Errorf("numberFits(%s) = %v, want %v", lit, got, want)
		}
	}
}
