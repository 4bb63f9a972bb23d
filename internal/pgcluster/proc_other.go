//go:build unix && !linux

package pgcluster

import "syscall"

// sysProcAttr builds the child attributes for initdb and postgres. Setpgid
// keeps a terminal's Ctrl-C away from the server, so the owner decides when
// it stops. Without Linux's Pdeathsig, a cluster can outlive a killed parent;
// the stale-lock check in Start reports it on the next run.
func sysProcAttr(su *serverUser) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: su.credential(), Setpgid: true}
}

// isPostgresProcess reports whether pid is alive. Without /proc the process
// name is not checked, so any live process is assumed to be PostgreSQL.
func isPostgresProcess(pid int) (alive, postgres bool) {
	err := syscall.Kill(pid, 0)
	alive = err == nil || err == syscall.EPERM
	return alive, alive
}
