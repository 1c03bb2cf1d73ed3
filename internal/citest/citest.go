// Package citest holds the one rule for tests whose tools a machine may
// lack: skip on a developer's machine, fail in CI, which installs them.
package citest

import (
	"os"
	"testing"
)

// Missing skips t, saying why, unless it runs in CI (CI=true): .ci/run
// installs every tool the suite needs, so there a missing one fails.
func Missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why + " (.ci/run provides it)")
	}
	t.Skip(why)
}
