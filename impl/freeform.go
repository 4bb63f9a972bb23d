package impl

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// Free-form JSON (eventInfo, metaData, data) is decoded with its numbers as
// json.Number, so that it is stored and returned exactly as sent. PostgreSQL's
// numeric holds far more than any client sends, but not everything: 1e1000000
// does not fit, and 1e-100000 would fit yet come back as 100,000 digits. So a
// free-form number must be one a client using doubles or 64-bit integers can send:
// within a double's range and with at most maxDecimals decimal places, written out.
// Anything else is refused, before the database is touched (a revocation's event
// info included: it either revokes or answers 400).

// maxDecimals admits every double written exactly: the smallest subnormal,
// 4.9406564584124654e-324, has 340 decimal places.
const maxDecimals = 400

var jsonNumberType = reflect.TypeOf(json.Number(""))

// checkNumbers walks a decoded request body and reports each free-form field
// holding a number outside those bounds as [invalid]field, naming the free-form
// object (e.g. "eventInfo.data"), not the key inside it, which is the client's text.
func checkNumbers(v any) error {
	errs := new(apiError)
	walkNumbers(errs, reflect.ValueOf(v), nil, nil)
	return errs.orNil()
}

// walkNumbers visits v at path; freeForm is the path of the free-form object v is
// inside, nil outside any.
func walkNumbers(errs *apiError, v reflect.Value, path, freeForm []string) {
	if !v.IsValid() {
		return
	}
	if v.Type() == jsonNumberType {
		if !numberFits(v.String()) {
			at := freeForm
			if at == nil {
				at = path
			}
			key, code := fieldPaths(at)
			errs.field(key, "[invalid]"+code, "The field ["+key+"] holds a number out of range: "+
				"at most a double's magnitude and 400 decimal places.")
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkNumbers(errs, v.Elem(), path, freeForm)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			walkNumbers(errs, v.Field(i), append(path[:len(path):len(path)], name), freeForm)
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return
		}
		for i := 0; i < v.Len(); i++ {
			at := path
			if freeForm == nil { // inside free-form JSON only its root is named: no path to build
				at = append(path[:len(path):len(path)], strconv.Itoa(i))
			}
			walkNumbers(errs, v.Index(i), at, freeForm)
		}
	case reflect.Map:
		if freeForm == nil && v.Type().Elem().Kind() == reflect.Interface {
			freeForm = path
		}
		iter := v.MapRange()
		for iter.Next() {
			walkNumbers(errs, iter.Value(), path, freeForm)
		}
	}
}

// numberFits reports whether a JSON number literal is within a double's range and
// has at most maxDecimals decimal places when written out without an exponent.
// (An exponent beyond ±1,000,000 is refused outright: PostgreSQL refuses one
// beyond about ±1e9 even on a zero, and no double needs one.)
func numberFits(lit string) bool {
	if f, err := strconv.ParseFloat(lit, 64); err != nil || math.IsInf(f, 0) {
		return false
	}
	mantissa, exp := lit, int64(0)
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		mantissa = lit[:i]
		e, err := strconv.ParseInt(strings.TrimPrefix(lit[i+1:], "+"), 10, 64)
		if err != nil || e > 1_000_000 || e < -1_000_000 {
			return false
		}
		exp = e
	}
	decimals := int64(0)
	if _, frac, ok := strings.Cut(mantissa, "."); ok {
		decimals = int64(len(frac))
	}
	return decimals-exp <= maxDecimals
}

var errTrailingData = errors.New("data after the JSON value")

// decodeStrict decodes one JSON value with its numbers as json.Number, and
// fails when anything but white space follows it.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errTrailingData
	}
	return nil
}
