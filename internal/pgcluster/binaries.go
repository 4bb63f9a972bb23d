package pgcluster

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrNoBinaries is returned when no PostgreSQL server installation can be
// found. It is a sentinel so that callers (tests, the server's startup code)
// can tell "PostgreSQL is not installed" apart from a cluster that failed to
// start, and print an actionable hint instead of a stack of wrapped errors.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, postgres) not found on PATH or in `pg_config --bindir`: install the Debian package postgresql")

// FindBinaries returns the directory holding the PostgreSQL server binaries
// initdb and postgres.
//
// initdb locates postgres next to its own (symlink-resolved) executable, so a
// directory only counts when it holds both. The search order lets a user
// steer the choice with PATH, then falls back to what pg_config reports, and
// finally to the newest Debian-style /usr/lib/postgresql/<major>/bin, which
// Debian does not put on PATH.
func FindBinaries() (dir string, err error) {
	if dir, ok := binariesOnPath(); ok {
		return dir, nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir, ok := serverDir(strings.TrimSpace(string(out))); ok {
			return dir, nil
		}
	}
	for _, candidate := range debianBinDirs() {
		if dir, ok := serverDir(candidate); ok {
			return dir, nil
		}
	}
	return "", ErrNoBinaries
}

// binariesOnPath reports the real directory of initdb when both initdb and
// postgres are on PATH. Symlinks (e.g. /usr/local/bin/initdb) are resolved
// because that is where initdb itself will look for postgres.
func binariesOnPath() (string, bool) {
	initdb, err := exec.LookPath("initdb")
	if err != nil {
		return "", false
	}
	if _, err := exec.LookPath("postgres"); err != nil {
		return "", false
	}
	real, err := filepath.EvalSymlinks(initdb)
	if err != nil {
		return "", false
	}
	return serverDir(filepath.Dir(real))
}

// serverDir reports dir (symlinks resolved, made absolute) if it contains
// executable initdb and postgres files.
func serverDir(dir string) (string, bool) {
	if dir == "" {
		return "", false
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", false
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return "", false
	}
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(real, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return "", false
		}
	}
	return real, true
}

// debianBinDirs lists /usr/lib/postgresql/<major>/bin directories, highest
// major version first (numerically, so 10 sorts above 9).
func debianBinDirs() []string {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(p string) float64 {
		v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(p)), 64)
		if err != nil {
			return -1
		}
		return v
	}
	slices.SortStableFunc(matches, func(a, b string) int {
		va, vb := version(a), version(b)
		switch {
		case va > vb:
			return -1
		case va < vb:
			return 1
		}
		return 0
	})
	return matches
}
