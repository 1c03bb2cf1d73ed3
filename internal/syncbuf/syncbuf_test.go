package syncbuf

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestBufferConcurrentWrites: every write of concurrent writers is kept
// whole, and reads while they write see a prefix (run with -race).
func TestBufferConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				fmt.Fprintf(&b, "w%d-%03d\n", w, i)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 400 {
		t.Fatalf("%d lines, want 400", len(lines))
	}
	for _, l := range lines {
		if len(l) != len("w0-000") {
			t.Fatalf("line %q torn", l)
		}
	}
	got := b.Bytes()
	got[0] = 'X'
	if b.String()[0] == 'X' {
		t.Error("Bytes shares the buffer's memory")
	}
}
