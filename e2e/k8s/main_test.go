package k8s

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/weft-mesh/weft/internal/testproc"
)

// binDir holds the weft binary built for this run.
var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e/k8s: skipped with -short")
		os.Exit(0)
	}
	testproc.Main(m, &binDir, "github.com/weft-mesh/weft/cmd/weft")
}

// tool returns the pinned binary name: $env when set, else bin/name in
// the module root. It fails the test when there is none: make test builds
// them (make kube helm).
func tool(t testing.TB, env, name string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	p, err := filepath.Abs(filepath.Join("..", "..", "bin", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no %s: set %s or run `make kube helm` to build bin/%s (%v)", name, env, name, err)
	}
	return p
}
