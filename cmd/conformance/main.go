// Command conformance runs the refresh-token conformance suite against any
// implementation of the FusionAuth refresh-token API and reports, case by case,
// whether each documented usage behaves as documented.
//
//	conformance -url https://auth.example.com -api-key KEY [-tenant-id ID] [-profile core|strict]
//	            [-webhook-listen ADDR [-webhook-url URL]] [-spec openapi.yaml]
//
// Every answer is also checked against the response the contract declares for
// its operation and status (refreshd's own openapi.yaml, or the -spec file); an
// answer that breaks it fails its case with a failure of kind "schema".
//
// With -webhook-listen the suite receives webhook deliveries on ADDR, generates a
// key and registers a webhook signed with it for jwt.refresh-token.revoke events
// there for the run (and deletes both afterwards), and the revoke cases also check
// the events their requests recorded and each delivery's FusionAuth signature.
//
// Exit status: 0 when every case passed, 1 when a case failed, 2 when the run
// could not be made (bad flags, target unreachable, fixtures impossible, run cut
// short, or fixtures left behind).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"refreshd/conformance"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("conformance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "base URL of the server under test, e.g. https://auth.example.com")
	key := fs.String("api-key", "", "API key; when absent, $CONFORMANCE_API_KEY (which keeps it out of ps and shell history)")
	tenant := fs.String("tenant-id", "", "send X-FusionAuth-TenantId with every request; fixtures are made in that tenant")
	profileFlag := fs.String("profile", string(conformance.ProfileCore), "core: what FusionAuth documents; strict: core plus refreshd's stricter choices")
	runFlag := fs.String("run", "", "run only cases whose id starts with one of these comma-separated prefixes")
	list := fs.Bool("list", false, "list the selected cases and exit")
	junit := fs.String("junit", "", "also write a JUnit XML report to this file")
	jsonFile := fs.String("json", "", "also write a JSON report to this file")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up the run after this long")
	parallel := fs.Int("parallel", 4, "cases run at once (output order does not depend on it)")
	webhookListen := fs.String("webhook-listen", "", "receive webhook deliveries on this host:port and check the events of the revoke cases")
	specFile := fs.String("spec", "", "check every answer against this OpenAPI document instead of refreshd's own openapi.yaml")
	webhookURL := fs.String("webhook-url", "", "with -webhook-listen: register this URL for the webhook, when the server reaches the receiver by another address than http://<webhook-listen>/…")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *key == "" {
		*key = os.Getenv("CONFORMANCE_API_KEY")
	}
	profile, ok := conformance.ParseProfile(*profileFlag)
	if !ok {
		fmt.Fprintf(stderr, "conformance: -profile must be core or strict, not %q\n", *profileFlag)
		return 2
	}
	var prefixes []string
	for _, p := range strings.Split(*runFlag, ",") {
		if p = strings.TrimSpace(p); p != "" {
			prefixes = append(prefixes, p)
		}
	}
	cases := conformance.Select(conformance.Cases(), profile, prefixes)
	if *list {
		width := 0
		for _, c := range cases {
			width = max(width, len(c.ID))
		}
		for _, c := range cases {
			fmt.Fprintf(stdout, "%-6s  %-*s  %s\n", c.Profile, width, c.ID, c.Title)
		}
		return 0
	}
	if len(cases) == 0 {
		fmt.Fprintf(stderr, "conformance: no case matches -run %q in profile %s\n", *runFlag, profile)
		return 2
	}
	if *url == "" {
		fmt.Fprintln(stderr, "conformance: -url is required")
		return 2
	}
	var spec []byte
	if *specFile != "" {
		var err error
		if spec, err = os.ReadFile(*specFile); err != nil {
			fmt.Fprintf(stderr, "conformance: -spec: %v\n", err)
			return 2
		}
	}
	s, err := conformance.NewSession(conformance.Config{URL: *url, APIKey: *key, TenantID: *tenant, Parallel: *parallel,
		WebhookListen: *webhookListen, WebhookURL: *webhookURL, Spec: spec})
	if err != nil {
		fmt.Fprintf(stderr, "conformance: %v\n", err)
		return 2
	}

	// The first interrupt cancels the run (cases still running end as skipped);
	// a second one ends the process the usual way, even during cleanup.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	go func() { <-ctx.Done(); stop() }()

	text := conformance.NewTextReporter(stdout)
	started := false
	start := func() {
		if !started {
			text.Start(*url, profile, cases)
			started = true
		}
	}
	rep, runErr := s.Run(ctx, profile, cases, func(r conformance.Result) { start(); text.Case(r) })

	// The run's context may be cancelled by now: clean up with a fresh one.
	cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
	defer ccancel()
	cleanErr := s.Cleanup(cctx)

	var setup *conformance.SetupError
	if errors.As(runErr, &setup) {
		fmt.Fprintf(stderr, "conformance: %v\n", setup)
		return 2
	}
	start()
	if err := text.Finish(rep); err != nil {
		fmt.Fprintf(stderr, "conformance: %v\n", err)
		return 2
	}
	code := 0
	if _, failed, _ := rep.Counts(); failed > 0 {
		code = 1
	}
	if *junit != "" {
		if err := writeFile(*junit, func(w io.Writer) error { return conformance.WriteJUnit(w, rep) }); err != nil {
			fmt.Fprintf(stderr, "conformance: %v\n", err)
			code = 2
		}
	}
	if *jsonFile != "" {
		if err := writeFile(*jsonFile, func(w io.Writer) error { return conformance.WriteJSON(w, rep) }); err != nil {
			fmt.Fprintf(stderr, "conformance: %v\n", err)
			code = 2
		}
	}
	if cleanErr != nil {
		fmt.Fprintf(stderr, "conformance: some fixtures could not be removed; delete them by hand: %v\n",
			strings.ReplaceAll(cleanErr.Error(), "\n", "; "))
		code = max(code, 2)
	}
	if runErr != nil {
		fmt.Fprintf(stderr, "conformance: %v\n", runErr)
		code = 2
	}
	return code
}

func writeFile(name string, write func(io.Writer) error) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
