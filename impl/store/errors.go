package store

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/lib/pq"
)

// Errors are classified by SQLSTATE class, never by message text. Callers see
// ErrNotFound, *ConstraintError, *DataError and *UnavailableError; anything else
// is an internal failure.

// ErrNotFound is returned when the row named does not exist within the scope.
var ErrNotFound = errors.New("store: not found")

// ConstraintError reports a write refused by a database constraint: Duplicate for a
// unique violation (23505), otherwise a reference to a missing row (23503).
type ConstraintError struct {
	Duplicate  bool
	Constraint string
	Err        error
}

func (e *ConstraintError) Error() string {
	kind := "invalid reference"
	if e.Duplicate {
		kind = "duplicate"
	}
	return fmt.Sprintf("store: %s (%s)", kind, e.Constraint)
}

func (e *ConstraintError) Unwrap() error { return e.Err }

// DataError reports a value the database cannot hold: a data exception (SQLSTATE
// class 22, e.g. text with U+0000 or a number out of range), an integrity
// violation other than a duplicate or a missing reference (not null, check), or a
// value beyond a program limit (class 54, e.g. a JSON value too large or too deep).
// The request that carried the value is at fault, not the server. Table and Column
// name where the value was going when PostgreSQL says so.
type DataError struct {
	SQLState      string
	Table, Column string
	Err           error
}

func (e *DataError) Error() string {
	return fmt.Sprintf("store: value cannot be stored (SQLSTATE %s)", e.SQLState)
}

func (e *DataError) Unwrap() error { return e.Err }

// ErrUnavailable matches every *UnavailableError with errors.Is.
var ErrUnavailable = errors.New("store: database unavailable")

// Retry-After hints: a lost conflict is worth retrying at once, an outage later.
const (
	busyRetryAfter   = time.Second
	outageRetryAfter = 5 * time.Second
)

// UnavailableError reports work the database could not do now: it cannot be
// reached (connection failures, SQLSTATE class 08, 53 and 57P01–57P03), or — Busy
// — the transaction lost a deadlock or serialisation conflict (40P01, 40001) on
// every attempt, waited too long for a lock or a statement (55P03, 57014), or
// found every connection slot taken (53300).
// Retrying after RetryAfter may succeed.
type UnavailableError struct {
	Busy       bool
	RetryAfter time.Duration
	Err        error
}

func (e *UnavailableError) Error() string {
	if e.Busy {
		return fmt.Sprintf("store: database busy: %v", e.Err)
	}
	return fmt.Sprintf("store: database unavailable: %v", e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Classify turns a database error into one of the store's error types: what the
// store's methods return, exported so that callers holding an error from
// elsewhere in the store (or from a method that passes errors on as they are)
// classify it the same way. Errors it does not recognise are returned as they are.
func Classify(err error) error { return classify(err) }

func classify(err error) error {
	if err == nil {
		return nil
	}
	var (
		ce *ConstraintError
		de *DataError
		ue *UnavailableError
	)
	if errors.Is(err, ErrNotFound) || errors.As(err, &ce) || errors.As(err, &de) || errors.As(err, &ue) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if pqErr := pq.As(err); pqErr != nil {
		code := string(pqErr.Code)
		switch {
		case retryable(err):
			// A race lost on every attempt: busy, not the request's fault.
			return &UnavailableError{Busy: true, RetryAfter: busyRetryAfter, Err: err}
		case code == "23505":
			return &ConstraintError{Duplicate: true, Constraint: pqErr.Constraint, Err: err}
		case code == "23503":
			return &ConstraintError{Constraint: pqErr.Constraint, Err: err}
		case strings.HasPrefix(code, "22"), strings.HasPrefix(code, "23"), strings.HasPrefix(code, "54"):
			return &DataError{SQLState: code, Table: pqErr.Table, Column: pqErr.Column, Err: err}
		case code == "55P03", code == "57014", code == "53300":
			// Lost conflicts, lock and statement timeouts, and a server with all
			// its connections taken: the database is there, only busy.
			return &UnavailableError{Busy: true, RetryAfter: busyRetryAfter, Err: err}
		case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "53"),
			code == "57P01", code == "57P02", code == "57P03":
			return &UnavailableError{RetryAfter: outageRetryAfter, Err: err}
		}
		return err
	}
	if unreachable(err) {
		return &UnavailableError{RetryAfter: outageRetryAfter, Err: err}
	}
	return err
}

// unreachable reports a failure to talk to the server at all: a refused, reset or
// timed-out connection, or one that ended mid-answer. (PostgreSQL's own errors
// are classified by SQLSTATE instead.)
func unreachable(err error) bool {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errGateClosed) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}

// SQLState returns the SQLSTATE of a PostgreSQL error in err's chain, or "".
func SQLState(err error) string {
	if pqErr := pq.As(err); pqErr != nil {
		return string(pqErr.Code)
	}
	return ""
}

// retryable reports whether a transaction lost a race and may simply be run
// again: a deadlock or a serialisation failure, or an event recorded for a
// webhook deleted meanwhile — the delivery's foreign key fails; run again, the
// webhook is no longer there to deliver to.
func retryable(err error) bool {
	if pq.As(err, "40P01", "40001") != nil {
		return true
	}
	fk := pq.As(err, "23503")
	return fk != nil && fk.Constraint == "deliveries_webhook_id_fkey"
}
