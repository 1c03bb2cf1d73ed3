package archtest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// maxDocLines bounds a hand-written document. docs/xds.md, the longest
// reference, is under 500 lines; a scripted edit once turned it into 66,206
// lines of interleaved table rows, and nothing noticed.
const maxDocLines = 2000

// TestDocsAreSizedForPeople fails when a Markdown file in docs/ or the
// README grows past what a person writes, the sign of a scripted edit gone
// wrong.
func TestDocsAreSizedForPeople(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../README.md")
	if len(files) < 2 {
		t.Fatalf("found no docs under ../../docs: %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(b, []byte("\n")); n > maxDocLines {
			t.Errorf("%s has %d lines (limit %d): check the last scripted edit", f, n, maxDocLines)
		}
	}
}
