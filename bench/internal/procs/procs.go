// Package procs runs the processes of Weft's benchmark harnesses
// (bench/compare, bench/cp): each with its output in a log file, killed
// when the harness dies, stopped with SIGTERM then SIGKILL, and measured
// (CPU time, memory) from /proc. Linux only, as the harnesses are.
package procs

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
const stopGrace = 10 * time.Second

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

// Proc is a process the harness started.
type Proc struct {
	Name string
	// Log is the path of the file holding its output.
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts the process s describes; it is killed (SIGKILL) if the
// harness dies first.
func Start(s Spec) (*Proc, error) {
	logPath := filepath.Join(s.Dir, s.Name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(s.Args[0], s.Args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	if s.Stdout != nil {
		cmd.Stdout = io.MultiWriter(f, s.Stdout)
	}
	if len(s.Env) > 0 {
		cmd.Env = append(os.Environ(), s.Env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	p := &Proc{Name: s.Name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

// Stop sends SIGTERM, then SIGKILL if the process has not exited after
// a grace period, and waits for it to exit.
func (p *Proc) Stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// CPUSeconds is the user+system CPU time the process has used, from
// /proc/<pid>/stat.
func (p *Proc) CPUSeconds() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("%s cpu: %w", p.Name, err)
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100, nil // USER_HZ is 100 on Linux
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
	pid := p.cmd.Process.Pid
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
