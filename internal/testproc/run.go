package testproc

import (
	"os"
	"path/filepath"
	"testing"
)

// logTail is how much of a process's log Run logs when its test failed.
const logTail = 16 << 10

// Run starts the process s describes for the test t and fails t if it
// cannot start. When t ends the process is stopped (Stop) and, if t
// failed, the last 16 KiB of its log are logged.
func Run(t testing.TB, s Spec) *Process {
	t.Helper()
	if s.Log == "" {
		s.Log = filepath.Join(t.TempDir(), s.Name+".log")
	}
	p, err := Start(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Log(err)
		}
		if t.Failed() {
			t.Logf("---- %s log (tail) ----\n%s", s.Name, tail(s.Log, logTail))
		}
	})
	return p
}

// tail returns the last n bytes of the file at path, or why it cannot.
func tail(path string, n int) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return []byte(err.Error())
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return b
}
