package vm

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/weft-mesh/weft/internal/freeport"
	"github.com/weft-mesh/weft/internal/testproc"
)

// binDir holds the weft and weft-proxy binaries built for this run.
var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e/vm: skipped with -short")
		os.Exit(0)
	}
	testproc.Main(m, &binDir, "github.com/weft-mesh/weft/cmd/weft", "github.com/weft-mesh/weft/cmd/weft-proxy")
}

// weft runs a weft command to completion and returns its output.
func weft(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "weft"), args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("weft %v: %v\n%s", args, err, out.String())
	}
	return out.String()
}

// startDaemon runs a long-running binary under test as systemd would run
// it: output to a log whose tail is printed if the test fails, SIGTERM to
// stop (see testproc.Run).
func startDaemon(t *testing.T, name string, env []string, bin string, args ...string) *testproc.Process {
	t.Helper()
	return testproc.Run(t, testproc.Spec{Name: name, Env: env, Args: append([]string{filepath.Join(binDir, bin)}, args...)})
}

func freePort(t *testing.T) int {
	t.Helper()
	return freeport.Get(t)
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// startApp serves name on a loopback port, counting requests.
func startApp(t *testing.T, name string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, name)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}
