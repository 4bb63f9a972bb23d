package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTick is the unit of the CPU times in /proc/<pid>/stat (USER_HZ). Linux
// fixes it at 100 on every architecture Go supports; reading sysconf would need cgo.
const clockTick = 10 * time.Millisecond

// cpuSnapshot is the CPU consumed so far by the three parties of a run: this
// process (the server, since the load generator is a separate process), the
// PostgreSQL processes (when the cluster is ours, so we know its postmaster), and
// the whole machine — whose remainder is everything else, i.e. other people's
// work on a shared machine.
// Each part carries the time it was read at: reading the PostgreSQL processes
// takes milliseconds, which matter against runs of a fraction of a second.
type cpuSnapshot struct {
	at           time.Time
	self         time.Duration
	pgAt         time.Time
	pg           time.Duration
	pgKnown      bool
	machineAt    time.Time
	machineBusy  uint64 // jiffies, all CPUs
	machineTotal uint64
}

func takeCPUSnapshot(postmaster int) cpuSnapshot {
	s := cpuSnapshot{at: time.Now(), self: selfCPU()}
	if postmaster > 0 {
		s.pgAt = time.Now()
		s.pg, s.pgKnown = processTreeCPU(postmaster)
		s.pgAt = s.pgAt.Add(time.Since(s.pgAt) / 2)
	}
	s.machineAt = time.Now()
	s.machineBusy, s.machineTotal = machineJiffies()
	return s
}

// cpuShare is CPU use over an interval, in cores (1.0 = one core fully busy).
type cpuShare struct {
	Server   *float64 `json:"server"`
	Client   *float64 `json:"client"`
	Postgres *float64 `json:"postgres"`
	Other    *float64 `json:"other"`
}

// share turns two snapshots and the client's own CPU time into cores used.
// selfIsServer is false for raw runs, where this process is idle.
func share(a, b cpuSnapshot, client time.Duration, selfIsServer bool) cpuShare {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return cpuShare{}
	}
	cores := func(d time.Duration) *float64 { v := d.Seconds() / wall; return &v }
	var out cpuShare
	out.Client = cores(client)
	self := b.self - a.self
	if selfIsServer {
		out.Server = cores(self)
	}
	if !a.pgKnown || !b.pgKnown {
		return out
	}
	pgCores := (b.pg - a.pg).Seconds() / b.pgAt.Sub(a.pgAt).Seconds()
	out.Postgres = &pgCores
	if dt := b.machineTotal - a.machineTotal; dt > 0 {
		busy := float64(b.machineBusy-a.machineBusy) / float64(dt) * float64(runtime.NumCPU())
		other := busy - self.Seconds()/wall - client.Seconds()/wall - pgCores
		out.Other = &other
	}
	return out
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processTreeCPU sums the CPU time of pid and of its live children (the
// backends), plus what pid's reaped children used (backends of closed
// connections). A child reaped while the children are read would be counted in
// neither place, so the sum is taken again until the reaped time holds still.
func processTreeCPU(pid int) (time.Duration, bool) {
	var total time.Duration
	for attempt := 0; attempt < 5; attempt++ {
		root, err := readStat(pid)
		if err != nil {
			return 0, false
		}
		total = time.Duration(root.cutime+root.cstime)*clockTick + runTime(pid, root)
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			child, err := strconv.Atoi(filepath.Base(d))
			if err != nil || child == pid {
				continue
			}
			st, err := readStat(child)
			if err != nil || st.ppid != pid {
				continue
			}
			total += runTime(child, st)
		}
		again, err := readStat(pid)
		if err == nil && again.cutime == root.cutime && again.cstime == root.cstime {
			break
		}
	}
	return total, true
}

// runTime is the CPU time of a live single-threaded process, as PostgreSQL's
// are: from /proc/<pid>/schedstat, in nanoseconds, where available. The clock
// ticks of /proc/<pid>/stat are truncated per process, which over dozens of
// short-lived, mostly idle backends loses a sizeable share.
func runTime(pid int, st procStat) time.Duration {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid)); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			if ns, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				return time.Duration(ns)
			}
		}
	}
	return time.Duration(st.utime+st.stime) * clockTick
}

type procStat struct {
	ppid                         int
	utime, stime, cutime, cstime uint64
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name may hold spaces and parentheses: fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); ppid is field 4, utime..cstime fields 14..17.
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("short /proc/%d/stat", pid)
	}
	var st procStat
	st.ppid, _ = strconv.Atoi(f[1])
	st.utime, _ = strconv.ParseUint(f[11], 10, 64)
	st.stime, _ = strconv.ParseUint(f[12], 10, 64)
	st.cutime, _ = strconv.ParseUint(f[13], 10, 64)
	st.cstime, _ = strconv.ParseUint(f[14], 10, 64)
	return st, nil
}

// machineJiffies reads the aggregate "cpu" line of /proc/stat: busy time
// (everything but idle and iowait) and total time.
func machineJiffies() (busy, total uint64) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0
	}
	// user nice system idle iowait irq softirq steal (guest time is inside user).
	for i, v := range fields[1:] {
		if i >= 8 {
			break
		}
		n, _ := strconv.ParseUint(v, 10, 64)
		total += n
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return busy, total
}

// rssBytes is VmRSS from /proc/self/status: what the kernel counts as resident
// for this process, i.e. the server's footprint as an operator sees it.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// heapMetric is the Go heap occupied by objects, live or not yet swept: it shows
// how much the server allocates at once, which RSS only shows once the runtime
// needs new pages from the kernel.
const heapMetric = "/memory/classes/heap/objects:bytes"

func heapBytes() int64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}

// memSampler samples this process's VmRSS and Go heap every interval, from
// start until Stop, and reports the peak growth over the values at start.
type memSampler struct {
	stop              chan struct{}
	done              sync.WaitGroup
	rssBase, heapBase int64
	rssPeak, heapPeak int64
	samples           int
}

func startMemSampler(interval time.Duration) *memSampler {
	s := &memSampler{stop: make(chan struct{}), rssBase: rssBytes(), heapBase: heapBytes()}
	s.rssPeak, s.heapPeak = s.rssBase, s.heapBase
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.stop:
				s.sample()
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *memSampler) sample() {
	s.samples++
	s.rssPeak = max(s.rssPeak, rssBytes())
	s.heapPeak = max(s.heapPeak, heapBytes())
}

// Stop ends sampling and returns the peak growth of RSS and of the heap, in bytes.
func (s *memSampler) Stop() (rssGrowth, heapGrowth int64) {
	close(s.stop)
	s.done.Wait()
	return s.rssPeak - s.rssBase, s.heapPeak - s.heapBase
}
