package testproc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// DefaultStopGrace is how long Stop waits after SIGTERM before SIGKILL
// when Spec.StopGrace is zero.
const DefaultStopGrace = 10 * time.Second

// Spec says what to run.
type Spec struct {
	// Name names the process in errors and in the test log.
	Name string
	// Args are the program and its arguments. Required.
	Args []string
	// Env is added to this process's environment (KEY=VALUE).
	Env []string
	// Log is the file receiving the process's standard output and error,
	// appended to by every start. Start requires it; Run defaults it to
	// Name.log in the test's temporary directory.
	Log string
	// Stdout, when not nil, also receives the standard output.
	Stdout io.Writer
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL
	// (default DefaultStopGrace).
	StopGrace time.Duration
}

// Process is a child process started from a Spec. Its methods may be
// called from any goroutine.
type Process struct {
	spec Spec

	mu  sync.Mutex
	cur *execution // the latest start
}

// execution is one start of the process.
type execution struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	err  error         // cmd.Wait's result, set before done is closed
}

// Start starts the process s describes.
func Start(s Spec) (*Process, error) {
	if len(s.Args) == 0 || s.Log == "" {
		return nil, fmt.Errorf("testproc: %s: Spec needs Args and Log", s.Name)
	}
	if s.StopGrace == 0 {
		s.StopGrace = DefaultStopGrace
	}
	p := &Process{spec: s}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.start(); err != nil {
		return nil, err
	}
	return p, nil
}

// start runs the process once more; p.mu is held.
func (p *Process) start() error {
	logf, err := os.OpenFile(p.spec.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: log: %w", p.spec.Name, err)
	}
	cmd := exec.Command(p.spec.Args[0], p.spec.Args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if p.spec.Stdout != nil {
		cmd.Stdout = io.MultiWriter(logf, p.spec.Stdout)
	}
	if len(p.spec.Env) > 0 {
		cmd.Env = append(os.Environ(), p.spec.Env...)
	}
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.spec.Name, err)
	}
	e := &execution{cmd: cmd, done: make(chan struct{})}
	go func() {
		e.err = cmd.Wait()
		logf.Close()
		close(e.done)
	}()
	p.cur = e
	return nil
}

// Restart starts the process again with its Spec, after stopping it as
// Stop does if it is still running.
func (p *Process) Restart() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stop() // an error here says it had to be killed; it is gone either way
	return p.start()
}

// Stop sends SIGTERM and waits for the process to exit; after the grace
// period it kills it, and says so in the error. Stopping a process that
// has exited does nothing.
func (p *Process) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stop()
}

func (p *Process) stop() error {
	e := p.cur
	if e.exited() {
		return nil
	}
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: SIGTERM: %w", p.spec.Name, err)
	}
	select {
	case <-e.done:
		return nil
	case <-time.After(p.spec.StopGrace):
	}
	e.cmd.Process.Kill()
	<-e.done
	return fmt.Errorf("%s did not exit within %v of SIGTERM; killed", p.spec.Name, p.spec.StopGrace)
}

// Kill ends the process at once, as a crash would, and waits for it.
func (p *Process) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cur.cmd.Process.Kill()
	<-p.cur.done
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.current().cmd.Process.Signal(sig) }

// Done is closed when the process, as last started, has exited.
func (p *Process) Done() <-chan struct{} { return p.current().done }

// Exited reports whether the process, as last started, has exited.
func (p *Process) Exited() bool { return p.current().exited() }

// Wait waits for the process, as last started, to exit and returns how
// it did (an *exec.ExitError for a non-zero status or a signal).
func (p *Process) Wait() error {
	e := p.current()
	<-e.done
	return e.err
}

// Pid is the process ID of the latest start.
func (p *Process) Pid() int { return p.current().cmd.Process.Pid }

// LogPath is the file holding the process's output.
func (p *Process) LogPath() string { return p.spec.Log }

func (p *Process) current() *execution {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

func (e *execution) exited() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}
