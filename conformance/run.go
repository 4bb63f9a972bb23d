package conformance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// SetupError means the run could not start: the server did not answer, or the
// suite could not make its fixtures through the public API. Its message is one
// line that says which.
type SetupError struct {
	msg string
}

// Error is the one-line explanation.
func (e *SetupError) Error() string { return e.msg }

// ErrCutShort is wrapped by the error Run returns when its context ended before
// every case had run; those cases are reported as skipped.
var ErrCutShort = errors.New("the run was cut short")

// Run runs cases against the session's server, at most Config.Parallel at once,
// and calls live (when not nil) with each result as soon as it and every case
// declared before it are done, so live output is always in declaration order.
//
// It first makes and removes a minimal fixture; when that fails it returns a
// *SetupError and runs nothing. In webhook mode (Config.WebhookListen) it then
// registers the webhook and sees one event arrive, or returns a *SetupError. Each case removes its own fixtures when it ends;
// call Cleanup afterwards, with a fresh context, for whatever an interrupted case
// left. When ctx ends early, the cases not yet run are skipped and the error
// wraps ErrCutShort.
func (s *Session) Run(ctx context.Context, profile Profile, cases []Case, live func(Result)) (*Report, error) {
	rep := &Report{Target: s.cfg.URL, Profile: profile, Results: make([]Result, len(cases))}
	s.profile = profile
	if err := s.preflight(ctx); err != nil {
		rep.Results = nil
		return rep, err
	}
	if s.cfg.WebhookListen != "" {
		if err := s.startWebhook(ctx); err != nil {
			rep.Results = nil
			return rep, err
		}
	}
	done := make([]chan struct{}, len(cases))
	for i := range done {
		done[i] = make(chan struct{})
	}
	jobs := make(chan int)
	go func() {
		defer close(jobs)
		for i := range cases {
			jobs <- i
		}
	}()
	var wg sync.WaitGroup
	for range min(s.cfg.Parallel, len(cases)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				rep.Results[i] = s.runCase(ctx, cases[i])
				close(done[i])
			}
		}()
	}
	for i := range cases {
		<-done[i]
		if live != nil {
			live(rep.Results[i])
		}
	}
	wg.Wait()
	if ctx.Err() != nil {
		return rep, fmt.Errorf("%w: %v", ErrCutShort, context.Cause(ctx))
	}
	return rep, nil
}

// runCase runs one case in an Env of its own and removes its fixtures.
func (s *Session) runCase(ctx context.Context, c Case) (res Result) {
	res = resultOf(c)
	if ctx.Err() != nil {
		res.Status, res.SkipReason = Skipped, "not run: "+context.Cause(ctx).Error()
		return res
	}
	e := s.newEnv()
	ctx = context.WithValue(ctx, envKey{}, e)
	start := time.Now()
	f := safeRun(ctx, c, e)
	e.cleanup(ctx)
	res.Duration = time.Since(start)
	// An answer that broke the contract fails a case that otherwise passed. When
	// the case failed on the very answer that broke the contract, the contract's
	// word on it is the one reported (it names the schema); when the case failed
	// elsewhere, its own failure stands and a note points at the broken answer.
	if v := e.answers.first(); v != nil && ctx.Err() == nil {
		switch {
		case f == nil:
			f = e.schemaFailure(v)
		case f.skip != "" || f.Kind != "":
		case f.Step == e.step(v.x):
			own := f
			f = e.schemaFailure(v)
			f.Note = strings.TrimSpace("The case expected " + own.Expected + ". " + own.Note)
		default:
			f.Note = strings.TrimSpace(f.Note + " An answer also broke the contract, at " + v.schemaPath + ": " + e.step(v.x) + ".")
		}
	}
	if f != nil && f.skip == "" && f.Kind == "" {
		f.Kind = KindBehaviour
	}
	switch {
	case f == nil:
		res.Status = Passed
	case ctx.Err() != nil:
		// Whatever went wrong, the run was being stopped: this decided nothing.
		res.Status, res.SkipReason = Skipped, "interrupted: "+context.Cause(ctx).Error()
	case f.skip != "":
		res.Status, res.SkipReason = Skipped, f.skip
	default:
		res.Status, res.Failure = Failed, f
	}
	return res
}

// safeRun turns a panic in a case (a bug in the suite) into a failure, so one
// broken case does not end the run.
func safeRun(ctx context.Context, c Case, e *Env) (f *Failure) {
	defer func() {
		if p := recover(); p != nil {
			f = &Failure{Step: "running the case", Expected: "the case to run", Actual: fmt.Sprintf("it panicked: %v", p),
				Note: "This is a bug in the conformance suite, not in the server."}
		}
	}()
	return c.Run(ctx, e)
}

// preflight makes one user, one application and one token, lists it and removes
// it all, so that an unreachable server or an unusable key is said in one line
// instead of as a failure of every case.
func (s *Session) preflight(ctx context.Context) error {
	e := s.newEnv()
	_, f := e.newWorld(ctx, 1, 1, 1)
	e.cleanup(ctx)
	if f == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %v", ErrCutShort, context.Cause(ctx))
	}
	if strings.HasPrefix(f.Actual, "no answer: ") {
		return &SetupError{fmt.Sprintf("cannot reach %s: %s", s.cfg.URL, strings.TrimPrefix(f.Actual, "no answer: "))}
	}
	hint := ""
	if f.ActualStatus == http.StatusUnauthorized {
		hint = " (is the API key right, and allowed to create users and applications?)"
	}
	// "setup: POST /api/user/{u1} {…body…}" → "POST /api/user/{u1}"
	words := strings.Fields(strings.TrimPrefix(f.Step, "setup: "))
	request := strings.Join(words[:min(2, len(words))], " ")
	return &SetupError{fmt.Sprintf("cannot make fixtures at %s: %s answered %s, expected %s%s",
		s.cfg.URL, request, f.Actual, f.Expected, hint)}
}
