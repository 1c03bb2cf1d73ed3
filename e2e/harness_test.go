package e2e

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/freeport"
)

// binDir holds the weft and weft-proxy binaries built for this run.
var binDir string

func TestMain(m *testing.M) {
	if os.Getenv(proxylessClientEnv) != "" {
		os.Exit(runProxylessClient())
	}
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped with -short")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "weft-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	if err := buildBinaries(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildBinaries builds the binaries under test, with the race detector
// when this test binary has it.
func buildBinaries(dir string) error {
	for _, pkg := range []string{"weft", "weft-proxy"} {
		args := []string{"build", "-o", filepath.Join(dir, pkg)}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "../cmd/"+pkg)
		cmd := exec.Command("go", args...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go %v: %w", args, err)
		}
	}
	return nil
}

// process is a binary under test, logging to a file that is printed when
// the test fails.
type process struct {
	t       testing.TB
	name    string
	args    []string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func startProcess(t testing.TB, name string, bin string, args ...string) *process {
	t.Helper()
	return startCommand(t, name, append([]string{filepath.Join(binDir, bin)}, args...)...)
}

// startCommand runs argv (looked up in PATH) as startProcess runs a
// binary under test.
func startCommand(t testing.TB, name string, argv ...string) *process {
	t.Helper()
	p := &process{t: t, name: name, args: argv, logPath: filepath.Join(t.TempDir(), name+".log")}
	p.Start()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(p.logPath)
			t.Logf("---- %s log ----\n%s", name, lastBytes(b, 16<<10))
		}
	})
	return p
}

// Start (re)starts the process with its original arguments.
func (p *process) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	p.cmd, p.done = cmd, done
}

// Stop sends SIGTERM and waits; after 10 s it kills the process.
func (p *process) Stop() { p.signal(syscall.SIGTERM, 10*time.Second) }

// Kill ends the process at once, as a crash would.
func (p *process) Kill() { p.signal(syscall.SIGKILL, 10*time.Second) }

func (p *process) signal(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	return freeport.Get(t)
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// eventually polls cond every 50 ms until it returns nil or the deadline
// passes, and fails the test with cond's last error.
func eventually(t testing.TB, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %v: %v", what, within, err)
		}
		tick := time.NewTimer(50 * time.Millisecond)
		<-tick.C
	}
}

// httpGet fetches a URL with a short timeout and returns status and body.
func httpGet(ctx context.Context, c *http.Client, url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(bytes.TrimSpace(b)), err
}

func waitHTTP200(t testing.TB, url string, within time.Duration) {
	t.Helper()
	c := &http.Client{}
	eventually(t, within, "GET "+url, func() error {
		code, body, err := httpGet(context.Background(), c, url)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return errors.New(strconv.Itoa(code) + " " + body)
		}
		return nil
	})
}
