// Command bench measures refreshd against the raw SQL it runs and against the
// minimal SQL of the same effect.
//
//	go run ./cmd/bench            full: 1M tokens per bulk application, a few minutes
//	go run ./cmd/bench -quick     100k tokens per bulk application, a few minutes
//	go run ./cmd/bench -smoke     a few hundred tokens, seconds: checks the harness
//
// It starts a private PostgreSQL in a temporary directory, or uses DATABASE_URL
// (creating, and afterwards dropping, a database of its own there); serves the
// server in this process; and drives the load from a copy of itself started as a
// child process. It prints a table and writes the results as JSON.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"refreshd/bench"
)

func main() {
	if bench.IsLoadgen() {
		os.Exit(bench.LoadgenMain(os.Stdin, os.Stdout))
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	quick := flag.Bool("quick", false, "smaller data (100k tokens per bulk application), a few minutes")
	smoke := flag.Bool("smoke", false, "a few hundred tokens: checks that the harness works, measures nothing")
	out := flag.String("o", "bench-results.json", "where to write the results as JSON")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the server, taken during -profile-run, to this file")
	profileRun := flag.String("profile-run", "", "the server run to profile (default revoke-token/query/c16)")
	fast := flag.Bool("pg-fast", false, "run the private PostgreSQL without fsync and synchronous commit")
	duration := flag.Duration("duration", 0, "end each measured run after this long (fixed-duration); 0 runs fixed counts")
	keepDB := flag.Bool("keep-db", false, "with DATABASE_URL: keep the benchmark's database afterwards")
	flag.Parse()

	scale := bench.Full()
	switch {
	case *smoke:
		scale = bench.Smoke()
	case *quick:
		scale = bench.Quick()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg := bench.Config{
		Scale:          scale,
		DatabaseURL:    os.Getenv("DATABASE_URL"),
		KeepDatabase:   *keepDB,
		FastPostgres:   *fast,
		MaxRunDuration: *duration,
		CPUProfile:     *cpuProfile,
		ProfileRun:     *profileRun,
		Command:        strings.Join(append([]string{"bench"}, os.Args[1:]...), " "),
		Out:            os.Stdout,
		Log:            os.Stderr,
	}
	rep, runErr := bench.Run(ctx, cfg)
	if rep != nil && len(rep.Rows) > 0 {
		if err := writeResults(*out, rep.Rows); err != nil {
			return err
		}
		abs, _ := filepath.Abs(*out)
		fmt.Printf("results: %s\n", abs)
		if failed := rep.Failed(); len(failed) > 0 && runErr == nil {
			runErr = fmt.Errorf("%d scenarios did not do what they claim:\n  %s", len(failed), strings.Join(failed, "\n  "))
		}
	}
	return runErr
}

func writeResults(path string, rows []bench.Row) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := bench.WriteJSON(f, rows); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
