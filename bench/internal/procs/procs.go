// Package procs runs the processes of Weft's benchmark harnesses
// (bench/sidecar, bench/cp) with internal/testproc — each with its output
// in Dir/Name.log, killed when the harness dies, stopped with SIGTERM then
// SIGKILL — and measures them (CPU time, memory) from /proc. Linux only,
// as the harnesses are.
package procs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/weft-mesh/weft/internal/testproc"
)

// Spec says what to start.
type Spec struct {
	// Dir holds the log file, Dir/Name.log.
	Dir  string
	Name string
	// Args are the program and its arguments.
	Args []string
	// Env is added to the harness's environment (KEY=VALUE).
	Env []string
	// Stdout, when not nil, also receives the standard output.
	Stdout io.Writer
}

// Proc is a process the harness started: a testproc.Process (Stop,
// Exited, …) that can also be measured.
type Proc struct {
	*testproc.Process
	Name string
	// Log is the path of the file holding its output.
	Log string
}

// Start starts the process s describes; it is killed (SIGKILL) if the
// harness dies first, and Stop gives it testproc's grace period after
// SIGTERM.
func Start(s Spec) (*Proc, error) {
	logPath := filepath.Join(s.Dir, s.Name+".log")
	p, err := testproc.Start(testproc.Spec{Name: s.Name, Args: s.Args, Env: s.Env, Log: logPath, Stdout: s.Stdout})
	if err != nil {
		return nil, err
	}
	return &Proc{Process: p, Name: s.Name, Log: logPath}, nil
}

// CPUSeconds is the user+system CPU time the process has used, from
// /proc/<pid>/stat.
func (p *Proc) CPUSeconds() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
	if err != nil {
		return 0, fmt.Errorf("%s cpu: %w", p.Name, err)
	}
	s, err := statCPU(b)
	if err != nil {
		return 0, fmt.Errorf("%s cpu: %w", p.Name, err)
	}
	return s, nil
}

// statCPU returns utime+stime, in seconds, of a /proc/<pid>/stat line.
func statCPU(b []byte) (float64, error) {
	// Fields after the parenthesised command name (which may hold spaces
	// and parentheses); utime and stime are fields 14 and 15 of the line.
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return 0, fmt.Errorf("stat %q: no command name", b)
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("stat %q: %d fields after the command name, want at least 13", b, len(f))
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("stat utime/stime: %w", err)
	}
	return (utime + stime) / 100, nil // USER_HZ is 100 on Linux
}

// ContextSwitches is how many times the process's threads have been
// switched out, voluntarily (blocking, sleeping) or not, summed over its
// threads' /proc/<pid>/task/<tid>/status; threads that exited no longer
// count.
func (p *Proc) ContextSwitches() (int64, error) {
	dir := fmt.Sprintf("/proc/%d/task", p.Pid())
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("%s context switches: %w", p.Name, err)
	}
	var total int64
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "status"))
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread exited meanwhile
		}
		if err != nil {
			return 0, fmt.Errorf("%s context switches: %w", p.Name, err)
		}
		n, err := statusSwitches(b)
		if err != nil {
			return 0, fmt.Errorf("%s context switches: %w", p.Name, err)
		}
		total += n
	}
	return total, nil
}

// statusSwitches returns voluntary_ctxt_switches plus
// nonvoluntary_ctxt_switches of a /proc status file.
func statusSwitches(b []byte) (int64, error) {
	var total int64
	found := 0
	for line := range bytes.Lines(b) {
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok || !bytes.HasSuffix(name, []byte("ctxt_switches")) {
			continue
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(value)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("status %s: %w", name, err)
		}
		total += n
		found++
	}
	if found != 2 {
		return 0, fmt.Errorf("status: %d ctxt_switches fields, want 2", found)
	}
	return total, nil
}

// ResetPeak sets the process's peak RSS (VmHWM) back to its current RSS
// (writing 5 to /proc/<pid>/clear_refs, Linux 4.0 and later), so that
// Memory's HWM is then the peak since the reset.
func (p *Proc) ResetPeak() error {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.Pid()), []byte("5"), 0); err != nil {
		return fmt.Errorf("%s reset peak RSS: %w", p.Name, err)
	}
	return nil
}

// Memory is a process's memory as the kernel counts it, in bytes.
//
// RSS is every resident page mapped by the process, including clean
// pages of its executable that the page cache shares with every other
// process running the same binary; HWM is the peak RSS; Anon is its
// private heap and stacks (RssAnon), the memory only it can account for;
// PSS divides each shared page among the processes mapping it, so the
// sidecars of a node sum to what they really cost it.
type Memory struct {
	RSS, HWM, Anon, PSS int64
}

// Add returns the sum of m and o, for processes counted together.
func (m Memory) Add(o Memory) Memory {
	return Memory{RSS: m.RSS + o.RSS, HWM: m.HWM + o.HWM, Anon: m.Anon + o.Anon, PSS: m.PSS + o.PSS}
}

// Memory reads /proc/<pid>/status (VmRSS, VmHWM, RssAnon) and
// /proc/<pid>/smaps_rollup (Pss, left 0 where the kernel has no such
// file).
func (p *Proc) Memory() (Memory, error) {
	pid := p.Pid()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("%s memory: %w", p.Name, err)
	}
	m := Memory{RSS: procKB(b, "VmRSS:"), HWM: procKB(b, "VmHWM:"), Anon: procKB(b, "RssAnon:")}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		m.PSS = procKB(b, "Pss:")
	}
	return m, nil
}

// procKB returns the "<field> <n> kB" value of a /proc file, in bytes; 0
// when the field is missing.
func procKB(b []byte, field string) int64 {
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		line := s.Bytes()
		if !bytes.HasPrefix(line, []byte(field)) {
			continue
		}
		f := bytes.Fields(line[len(field):])
		if len(f) == 0 {
			return 0
		}
		kb, _ := strconv.ParseInt(string(f[0]), 10, 64)
		return kb * 1024
	}
	return 0
}
