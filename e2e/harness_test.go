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
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/freeport"
	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/internal/testproc"
)

// binDir holds the weft and weft-proxy binaries built for this run.
var binDir string

func TestMain(m *testing.M) {
	if os.Getenv(proxylessClientEnv) != "" {
		os.Exit(runProxylessClient())
	}
	if os.Getenv(burnCPUEnv) != "" {
		burnCPU()
	}
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped with -short")
		os.Exit(0)
	}
	testproc.Main(m, &binDir, "github.com/weft-mesh/weft/cmd/weft", "github.com/weft-mesh/weft/cmd/weft-proxy")
}

// startProcess runs a binary under test (see testproc.Run).
func startProcess(t testing.TB, name string, bin string, args ...string) *testproc.Process {
	t.Helper()
	return testproc.Run(t, testproc.Spec{Name: name, Args: append([]string{filepath.Join(binDir, bin)}, args...)})
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	return freeport.Get(t)
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

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
	poll.Until(t, within, "GET "+url, func() error {
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
