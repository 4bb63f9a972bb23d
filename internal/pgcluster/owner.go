//go:build unix

package pgcluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// serverUser is the unprivileged account the cluster runs as when we are
// root (initdb and postgres refuse to run as root). A nil *serverUser means
// "the current user", and every method is a no-op or trivially true then.
type serverUser struct {
	name   string
	uid    uint32
	gid    uint32
	groups []uint32 // supplementary groups, including gid
}

// lookupServerUser returns the postgres system user when running as root and
// nil otherwise.
func lookupServerUser() (*serverUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, so PostgreSQL must run as the postgres system user, but looking it up failed: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user: bad uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user: bad gid %q: %w", u.Gid, err)
	}
	su := &serverUser{name: u.Username, uid: uint32(uid), gid: uint32(gid), groups: []uint32{uint32(gid)}}
	// Supplementary groups only widen what the server can reach; if they
	// cannot be listed, the primary group alone is a safe approximation.
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil && !slices.Contains(su.groups, uint32(g)) {
				su.groups = append(su.groups, uint32(g))
			}
		}
	}
	return su, nil
}

// credential is the SysProcAttr credential that makes a child run as su.
func (su *serverUser) credential() *syscall.Credential {
	if su == nil {
		return nil
	}
	return &syscall.Credential{Uid: su.uid, Gid: su.gid, Groups: su.groups}
}

// chown hands path over to su, so the server can write where root created
// things.
func (su *serverUser) chown(path string) error {
	if su == nil {
		return nil
	}
	return os.Lchown(path, int(su.uid), int(su.gid))
}

// canTraverse reports whether su may search (execute) every directory from
// the filesystem root down to path. Components that do not exist yet are
// skipped: mkdirTraversable creates them with mode 0755. Symlinks in the
// existing part are resolved first, since the server walks the real path.
// ACLs are ignored; plain mode bits are what matter in practice here.
func (su *serverUser) canTraverse(path string) bool {
	if su == nil {
		return true
	}
	existing := filepath.Clean(path)
	for {
		if _, err := os.Lstat(existing); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return false
		}
		parent := filepath.Dir(existing)
		if parent == existing {
			break
		}
		existing = parent
	}
	real, err := filepath.EvalSymlinks(existing)
	if err != nil {
		return false
	}
	for p := real; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil || !su.mayExecute(fi) {
			return false
		}
		if filepath.Dir(p) == p {
			return true
		}
	}
}

// mayExecute applies the owner/group/other search-permission rule for su.
func (su *serverUser) mayExecute(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	perm := fi.Mode().Perm()
	switch {
	case st.Uid == su.uid:
		return perm&0o100 != 0
	case slices.Contains(su.groups, st.Gid):
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

// mkdirTraversable creates path and its missing parents with mode 0755,
// chmod-ing explicitly so a restrictive umask cannot make them unreachable
// for the server user. Existing directories are left alone.
func mkdirTraversable(path string) error {
	var missing []string
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	for _, p := range slices.Backward(missing) {
		if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := os.Chmod(p, 0o755); err != nil {
			return err
		}
	}
	return nil
}
