package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

// testSupport are the packages that exist for tests (and benchmark
// harnesses) only.
var testSupport = []string{
	"github.com/weft-mesh/weft/internal/consultest",
	"github.com/weft-mesh/weft/internal/freeport",
	"github.com/weft-mesh/weft/internal/pkitest",
	"github.com/weft-mesh/weft/internal/poll",
	"github.com/weft-mesh/weft/internal/testnet",
	"github.com/weft-mesh/weft/internal/testproc",
}

// TestDependencyRules keeps the seams of DESIGN.md true: the sidecar speaks
// only xDS, discovery knows nothing of xDS, the control plane's
// translation never calls Consul, and no command links test support.
func TestDependencyRules(t *testing.T) {
	tests := []struct {
		pkg       string
		forbidden []string
		why       string
	}{
		{"github.com/weft-mesh/weft/cmd/weft-proxy", []string{"github.com/hashicorp/consul", "k8s.io/"},
			"the sidecar must speak only xDS and stay small"},
		{"github.com/weft-mesh/weft/discovery", []string{"github.com/envoyproxy/"},
			"discovery yields catalog snapshots and must not know xDS"},
		{"github.com/weft-mesh/weft/controlplane/...", []string{"github.com/hashicorp/consul"},
			"the control plane translates catalog snapshots and must not call Consul"},
		{"github.com/weft-mesh/weft/cmd/...", testSupport,
			"test support (it imports package testing, starts processes, makes throw-away CAs) stays out of the shipped binaries"},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", tt.pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list -deps %s: %v\n%s", tt.pkg, err, out)
			}
			for _, dep := range strings.Fields(string(out)) {
				for _, f := range tt.forbidden {
					if strings.HasPrefix(dep, f) {
						t.Errorf("%s links %s: %s", tt.pkg, dep, tt.why)
					}
				}
			}
		})
	}
}
