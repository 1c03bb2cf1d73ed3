package procs

import (
	"os"
	"strings"
	"testing"
)

// TestStartMeasureStop runs a real process: its output lands in its log
// (and in Stdout), it can be measured while it runs, and Stop ends it.
func TestStartMeasureStop(t *testing.T) {
	var out strings.Builder
	p, err := Start(Spec{Dir: t.TempDir(), Name: "sh", Args: []string{"sh", "-c", `echo "$GREETING"; exec sleep 60`},
		Env: []string{"GREETING=hello"}, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if p.Exited() {
		t.Error("Exited before Stop")
	}
	if _, err := p.CPUSeconds(); err != nil {
		t.Errorf("CPUSeconds: %v", err)
	}
	m, err := p.Memory()
	if err != nil || m.RSS <= 0 || m.HWM < m.RSS {
		t.Errorf("Memory = %+v, %v; want RSS > 0 and HWM ≥ RSS", m, err)
	}
	p.Stop()
	if !p.Exited() {
		t.Error("not Exited after Stop")
	}
	log, err := os.ReadFile(p.Log)
	if err != nil || string(log) != "hello\n" || out.String() != "hello\n" {
		t.Errorf("log %q (%v), stdout %q; want hello in both", log, err, out.String())
	}
}

func TestProcKB(t *testing.T) {
	status := []byte("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nRssAnon:\t512 kB\nBroken:\n")
	for field, want := range map[string]int64{"VmRSS:": 1 << 20, "VmHWM:": 2 << 20, "RssAnon:": 512 << 10, "Broken:": 0, "Missing:": 0} {
		if got := procKB(status, field); got != want {
			t.Errorf("procKB(%s) = %d, want %d", field, got, want)
		}
	}
}
