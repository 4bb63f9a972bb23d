package pgcluster

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// sysProcAttr builds the child attributes for initdb and postgres.
//
// Setpgid keeps a terminal's Ctrl-C (sent to the whole foreground process
// group) away from the server, so the owner decides when it stops. Pdeathsig
// makes the kernel send SIGQUIT (immediate shutdown) to the postmaster if we
// die without calling Stop, so no orphaned cluster keeps the data directory
// locked. The signal fires when the forking OS thread exits; the Go runtime
// only retires threads of goroutines that exit while locked to their thread,
// which this package never does.
func sysProcAttr(su *serverUser) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Credential: su.credential(),
		Setpgid:    true,
		Pdeathsig:  syscall.SIGQUIT,
	}
}

// isPostgresProcess reports whether pid is alive and is a PostgreSQL process.
// Every PostgreSQL process (postmaster and backends) keeps "postgres" as its
// kernel command name even after rewriting its ps title.
func isPostgresProcess(pid int) (alive, postgres bool) {
	if !processAlive(pid) {
		return false, false
	}
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		// Alive but unreadable: err on the side of caution.
		return true, true
	}
	return true, strings.TrimSpace(string(comm)) == "postgres"
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
