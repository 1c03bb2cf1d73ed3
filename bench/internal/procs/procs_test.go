package procs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/poll"
)

// TestStartMeasureStop runs a real process: its output lands in
// Dir/Name.log (and in Stdout), it can be measured while it runs, and
// Stop ends it.
func TestStartMeasureStop(t *testing.T) {
	var out strings.Builder // read once the process has exited
	dir := t.TempDir()
	p, err := Start(Spec{Dir: dir, Name: "sh", Args: []string{"sh", "-c", `echo "$GREETING"; exec sleep 60`},
		Env: []string{"GREETING=hello"}, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if p.Log != filepath.Join(dir, "sh.log") {
		t.Errorf("Log = %q, want Dir/Name.log", p.Log)
	}
	// Stopped before it has run the echo, sh would have logged nothing.
	poll.UntilTrue(t, 10*time.Second, "the greeting in the log", func() bool {
		log, _ := os.ReadFile(p.Log)
		return string(log) == "hello\n"
	})
	if _, err := p.CPUSeconds(); err != nil {
		t.Errorf("CPUSeconds: %v", err)
	}
	m, err := p.Memory()
	if err != nil || m.RSS <= 0 || m.HWM < m.RSS {
		t.Errorf("Memory = %+v, %v; want RSS > 0 and HWM ≥ RSS", m, err)
	}
	p.Stop()
	if !p.Exited() || out.String() != "hello\n" {
		t.Errorf("Exited %v after Stop, stdout %q; want hello", p.Exited(), out.String())
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

func TestStatCPU(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       float64
		wantErr    bool
	}{
		{name: "plain", stat: "42 (consul) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 12 0 100 1000 200",
			want: 3.25},
		{name: "command with spaces and parentheses", stat: "7 (weft (cp) x) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 6 7",
			want: 0.03},
		{name: "no command name", stat: "7 weft R 1", wantErr: true},
		{name: "truncated", stat: "7 (weft) R 1 7 7", wantErr: true},
		{name: "not a number", stat: "7 (weft) R 1 7 7 0 -1 0 0 0 0 0 x 2 0", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := statCPU([]byte(tc.stat))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("statCPU = %v, %v; want %v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestResetPeak(t *testing.T) {
	p, err := Start(Spec{Dir: t.TempDir(), Name: "sleep", Args: []string{"sleep", "60"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if err := p.ResetPeak(); err != nil {
		t.Skipf("kernel without clear_refs peak reset: %v", err)
	}
	m, err := p.Memory()
	if err != nil || m.HWM < m.RSS {
		t.Errorf("Memory after ResetPeak = %+v, %v; want HWM ≥ RSS", m, err)
	}
}

func TestStatusSwitches(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    int64
		wantErr bool
	}{
		{"both", "Name:\tweft-proxy\nvoluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t7\n", 127, false},
		{"one missing", "Name:\tx\nvoluntary_ctxt_switches:\t1\n", 0, true},
		{"not a number", "voluntary_ctxt_switches:\tmany\nnonvoluntary_ctxt_switches:\t7\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := statusSwitches([]byte(tt.status))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("statusSwitches = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestContextSwitches: a process that keeps sleeping is switched out
// more and more.
func TestContextSwitches(t *testing.T) {
	p, err := Start(Spec{Dir: t.TempDir(), Name: "sleeper", Args: []string{"sh", "-c", "while :; do sleep 0.01; done"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	before, err := p.ContextSwitches()
	if err != nil {
		t.Fatal(err)
	}
	poll.UntilTrue(t, 10*time.Second, "the sleeper's context switches to grow", func() bool {
		n, err := p.ContextSwitches()
		return err == nil && n > before
	})
}
