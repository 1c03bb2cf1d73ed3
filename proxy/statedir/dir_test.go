package statedir

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(tWriter{t}, nil)) }

func TestDirWriteIsPrivateAndReplacesWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "web-1-sidecar-proxy")
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Read(LeafFile); !NotSaved(err) {
		t.Fatalf("Read before any Write: %v, want NotSaved", err)
	}
	for _, content := range []string{"first, longer content", "second"} {
		if err := d.Write(LeafFile, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := d.Read(LeafFile)
		if err != nil || string(got) != content {
			t.Fatalf("Read = %q, %v; want %q", got, err, content)
		}
	}
	checkMode(t, path, 0o700|os.ModeDir)
	checkMode(t, filepath.Join(path, LeafFile), 0o600)
	entries, err := os.ReadDir(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %v, want only %s (no temporary files left)", entries, LeafFile)
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != want {
		t.Errorf("%s mode = %v, want %v", path, fi.Mode(), want)
	}
}

func TestOpenErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"", filepath.Join(file, "sub")} {
		if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "state directory") {
			t.Errorf("Open(%q) = %v, want an error naming the state directory", path, err)
		}
	}
}

func TestWriterWritesTheLatestAndFlushesOnClose(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(d, XDSFile, testLogger(t))
	var encoded atomic.Int32
	const saves = 200
	for i := range saves {
		w.Save(func() ([]byte, error) { encoded.Add(1); return fmt.Appendf(nil, "version %d", i), nil })
	}
	w.Close()
	w.Close() // idempotent
	got, err := d.Read(XDSFile)
	if err != nil || string(got) != fmt.Sprintf("version %d", saves-1) {
		t.Fatalf("after Close the file holds %q, %v; want the last save", got, err)
	}
	if n := encoded.Load(); n < 1 || n > saves {
		t.Errorf("%d encodings for %d saves", n, saves)
	}
	w.Save(func() ([]byte, error) { return []byte("after close"), nil })
	if got, _ := d.Read(XDSFile); bytes.Equal(got, []byte("after close")) {
		t.Error("a Save after Close was written")
	}
}

func TestWriterKeepsTheOldFileWhenEncodingFails(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(d, XDSFile, testLogger(t))
	w.Save(func() ([]byte, error) { return []byte("good"), nil })
	w.Close()
	w = NewWriter(d, XDSFile, testLogger(t))
	w.Save(func() ([]byte, error) { return nil, errors.New("cannot encode") })
	w.Close()
	if got, err := d.Read(XDSFile); err != nil || string(got) != "good" {
		t.Fatalf("file = %q, %v; want the last good content", got, err)
	}
}
