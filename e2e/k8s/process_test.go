package k8s

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/freeport"
	"github.com/weft-mesh/weft/internal/testproc"
)

// startDaemon runs a long-running process under test, with a log whose
// tail is printed when the test fails (see testproc.Run); Stop gives it
// 15 s after SIGTERM.
func startDaemon(t *testing.T, name, bin string, args ...string) *testproc.Process {
	t.Helper()
	return testproc.Run(t, testproc.Spec{Name: name, Args: append([]string{bin}, args...), StopGrace: 15 * time.Second})
}

func freeAddr(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(freeport.Get(t)))
}
