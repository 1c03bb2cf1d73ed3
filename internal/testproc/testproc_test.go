package testproc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/poll"
)

func logOf(t *testing.T, p *Process) string {
	t.Helper()
	b, err := os.ReadFile(p.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStartStop runs a real process: its output lands in its log (and in
// Stdout), its environment has Env, and Stop ends it.
func TestStartStop(t *testing.T) {
	var out strings.Builder
	p, err := Start(Spec{Name: "sh", Args: []string{"sh", "-c", `echo "$GREETING"; exec sleep 60`},
		Env: []string{"GREETING=hello"}, Log: filepath.Join(t.TempDir(), "sh.log"), Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if p.Exited() || p.Pid() <= 0 {
		t.Errorf("Exited %v, Pid %d before Stop", p.Exited(), p.Pid())
	}
	poll.Until(t, 10*time.Second, "the greeting logged", func() error {
		if got := logOf(t, p); got != "hello\n" {
			return fmt.Errorf("log %q", got)
		}
		return nil
	})
	if err := p.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if !p.Exited() || out.String() != "hello\n" {
		t.Errorf("Exited %v after Stop; Stdout %q", p.Exited(), out.String())
	}
	if err := p.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStartNeedsArgsAndLog(t *testing.T) {
	for _, s := range []Spec{{Name: "no args", Log: "x.log"}, {Name: "no log", Args: []string{"true"}}} {
		if _, err := Start(s); err == nil {
			t.Errorf("Start(%+v) succeeded", s)
		}
	}
	if _, err := Start(Spec{Name: "missing", Args: []string{"/nonexistent/program"}, Log: filepath.Join(t.TempDir(), "l")}); err == nil {
		t.Error("Start of a missing program succeeded")
	}
}

// TestStopKillsAfterTheGrace: a process that ignores SIGTERM is killed
// once the grace period is over, and Stop says so.
func TestStopKillsAfterTheGrace(t *testing.T) {
	p, err := Start(Spec{Name: "stubborn", Args: []string{"sh", "-c", `trap "" TERM; echo ready; exec sleep 60`},
		Log: filepath.Join(t.TempDir(), "stubborn.log"), StopGrace: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	poll.UntilTrue(t, 10*time.Second, "SIGTERM ignored", func() bool { return logOf(t, p) == "ready\n" })
	if err := p.Stop(); err == nil || !strings.Contains(err.Error(), "stubborn did not exit within 50ms of SIGTERM; killed") {
		t.Errorf("Stop = %v", err)
	}
	if !p.Exited() {
		t.Error("still running after Stop")
	}
}

// TestRestartAndWait: each start appends to the same log; Wait reports
// how the latest one ended.
func TestRestartAndWait(t *testing.T) {
	p, err := Start(Spec{Name: "once", Args: []string{"sh", "-c", "echo run; exit 3"}, Log: filepath.Join(t.TempDir(), "once.log")})
	if err != nil {
		t.Fatal(err)
	}
	var exit *exec.ExitError
	if err := p.Wait(); !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("Wait = %v, want exit status 3", err)
	}
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if got := logOf(t, p); got != "run\nrun\n" {
		t.Errorf("log after a restart = %q, want both runs", got)
	}
}

func TestKill(t *testing.T) {
	p := Run(t, Spec{Name: "sleep", Args: []string{"sleep", "60"}})
	p.Kill()
	var exit *exec.ExitError
	if err := p.Wait(); !errors.As(err, &exit) || exit.ExitCode() != -1 {
		t.Errorf("Wait after Kill = %v, want death by signal", err)
	}
}

// recorder is a test whose cleanups and logs are kept, and which has
// failed.
type recorder struct {
	testing.TB
	cleanups []func()
	logs     []string
}

func (r *recorder) Helper()          {}
func (r *recorder) Failed() bool     { return true }
func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Log(args ...any)  { r.logs = append(r.logs, fmt.Sprint(args...)) }
func (r *recorder) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatal(args ...any)                 { r.TB.Fatal(args...) }
func (r *recorder) Fatalf(format string, args ...any) { r.TB.Fatalf(format, args...) }

// TestRunLogsTheTailOfAFailedTest: when the test ends the process is
// stopped, and a failed test gets the end of its log.
func TestRunLogsTheTailOfAFailedTest(t *testing.T) {
	r := &recorder{TB: t}
	big := strings.Repeat("x", logTail)
	p := Run(r, Spec{Name: "chatty", Args: []string{"sh", "-c", "echo first; echo " + big + "; echo last; exec sleep 60"}})
	poll.UntilTrue(t, 10*time.Second, "the last line logged", func() bool { return strings.HasSuffix(logOf(t, p), "last\n") })
	for _, f := range r.cleanups {
		f()
	}
	if !p.Exited() {
		t.Error("still running after the test's cleanup")
	}
	if len(r.logs) != 1 || !strings.HasPrefix(r.logs[0], "---- chatty log (tail) ----\n") ||
		!strings.HasSuffix(r.logs[0], "x\nlast\n") || strings.Contains(r.logs[0], "first") {
		t.Errorf("logged %.200q…, want the tail of the log only", r.logs)
	}
}

// TestBuild builds a main package and runs it.
func TestBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	dir := t.TempDir()
	if err := Build(dir, "./testdata/hello"); err != nil {
		t.Fatal(err)
	}
	p := Run(t, Spec{Name: "hello", Args: []string{filepath.Join(dir, "hello")}})
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := logOf(t, p); got != "hello from a built binary\n" {
		t.Errorf("output %q", got)
	}
}
