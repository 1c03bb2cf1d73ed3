package memtrim

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestReadOnlyRegions(t *testing.T) {
	maps := `00400000-00ddc000 r-xp 00000000 fe:00 11 /usr/bin/weft proxy
00ddc000-01ae2000 r--p 009dc000 fe:00 11 /usr/bin/weft proxy
01ae2000-01b73000 rw-p 016e2000 fe:00 11 /usr/bin/weft proxy
01b73000-01b80000 r--s 00000000 fe:00 11 /usr/bin/weft proxy
7f00-8f00 r-xp 00026000 fe:00 12 /usr/lib/libc.so.6
9000-a000 rw-p 00000000 00:00 0
`
	got, err := readOnlyRegions(strings.NewReader(maps), "/usr/bin/weft proxy")
	if err != nil {
		t.Fatal(err)
	}
	want := []region{{0x400000, 0xddc000}, {0xddc000, 0x1ae2000}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("regions = %x, want %x (code and read-only data, never writable or shared mappings, nor other files)", got, want)
	}
	if _, err := readOnlyRegions(strings.NewReader("zz-yy r-xp 0 0 0 /x\n"), "/x"); err == nil {
		t.Error("a malformed line was accepted")
	}
}

// TestReleaseExecutablePages checks that the executable's file-backed
// pages leave the process's RSS, again at a second release, and that the
// process runs on afterwards.
func TestReleaseExecutablePages(t *testing.T) {
	pages, err := FindExecutablePages()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		releaseAndCheck(t, pages)
	}
}

func releaseAndCheck(t *testing.T, pages *ExecutablePages) {
	t.Helper()
	before := rssFileKB(t)
	released, err := pages.Release()
	if err != nil {
		t.Fatal(err)
	}
	after := rssFileKB(t)
	if released == 0 {
		t.Fatal("no mapping of the executable was found")
	}
	if after >= before {
		t.Errorf("RssFile %d kB → %d kB after releasing %d bytes; want it lower", before, after, released)
	}
	t.Logf("RssFile %d kB → %d kB (released %d kB of mappings)", before, after, released/1024)
}

func rssFileKB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

func TestResident(t *testing.T) {
	anon, file, err := Resident()
	if err != nil {
		t.Fatal(err)
	}
	// A Go test binary has a heap and its own code resident.
	if anon <= 0 || file <= 0 {
		t.Errorf("Resident() = anon %d, file %d; want both > 0", anon, file)
	}
	if got, want := file/1024, int64(rssFileKB(t)); got < want/2 || got > want*2 {
		t.Errorf("file = %d kB, /proc/self/status RssFile %d kB", got, want)
	}
}
