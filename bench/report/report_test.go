package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/bench/internal/results"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const fixture = "testdata/2026-12-01-abc1234.json"

func loadFixture(t *testing.T) *results.Results {
	t.Helper()
	r, err := results.Load(fixture)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s differs (-want +got); go test ./bench/report -update rewrites it after an intended change:\n%s", path, d)
	}
}

// TestMarkdown renders the fixture: a row per target with its verdict, a
// table per workload with a column per peer and a row per figure, the
// ratios of each figure, readiness, and the chart's link.
func TestMarkdown(t *testing.T) {
	md := markdown(loadFixture(t), "bench/results/2026-12-01-abc1234.json", "docs/bench.svg")
	golden(t, "block.golden.md", []byte(md))
	for _, want := range []string{
		"| HTTP/1.1 keep-alive saturation throughput vs HAProxy pair | 0.85× (Weft 10200 requests/s, HAProxy pair 12000 requests/s) | ≥ 0.80× | **PASS** |",
		"| failed requests, every scenario | 2 failed (http1-keepalive weft: 2 of 130000) | ≤ 0 failed | **MISS** |",
		"| | direct | HAProxy pair | Weft pair |",
		"| saturation, requests/s | 40,000 (3.33×, —) | 12,000 (—, 0.30×) | 10,200 (0.85×, 0.26×) |",
		"| CPU s per 1,000 requests (client + server side) | — | 0.120 = 0.060 + 0.060 | 0.168 = 0.090 + 0.078 (1.40×, —) |",
		"| context switches per request (client + server side) | — | 5.2 = 2.6 + 2.6 | 7.0 = 3.7 + 3.3 (1.35×, —) |",
		"| saturation, MiB/s echoed | 1,000 (4.00×, —) | 250 (—, 0.25×) | 275 (1.10×, 0.28×) |",
		"| start to first request served | 20.0 ms | 35.0 ms (1.75×) |",
		"HAProxy pair: http-reuse always.",
		"![Latency percentiles at the fixed rate and CPU per 1,000 units, per workload and peer](docs/bench.svg)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("block lacks %q", want)
		}
	}
	if strings.Contains(md, "Quick smoke run") {
		t.Error("a full run is labelled a smoke run")
	}
	r := loadFixture(t)
	r.Settings.Quick = true
	if !strings.Contains(markdown(r, "x.json", "x.svg"), "**Quick smoke run**") {
		t.Error("a quick run is not labelled a smoke run")
	}
}

// TestChart renders the fixture as well-formed SVG with, per workload, four
// latency bars per peer and a CPU bar per proxy process.
func TestChart(t *testing.T) {
	svg := chart(loadFixture(t))
	golden(t, "chart.golden.svg", svg)
	bars := 0
	dec := xml.NewDecoder(bytes.NewReader(svg))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("chart is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "title" {
			bars++
		}
	}
	// Keep-alive: 3 peers × 4 percentiles + 2 proxied peers × 2
	// processes; TCP the same.
	if want := 2 * (3*4 + 2*2); bars != want {
		t.Errorf("chart has %d bars, want %d", bars, want)
	}
}

func TestReplaceBlock(t *testing.T) {
	tests := []struct {
		name, doc, want string
		wantErr         bool
	}{
		{"replaces the content", "a\n<!-- bench:begin -->\nold\n<!-- bench:end -->\nb\n", "a\n<!-- bench:begin -->\nnew\n<!-- bench:end -->\nb\n", false},
		{"empty block", "<!-- bench:begin --><!-- bench:end -->", "<!-- bench:begin -->\nnew\n<!-- bench:end -->", false},
		{"no markers", "a\n", "", true},
		{"markers twice", "<!-- bench:begin --><!-- bench:end --><!-- bench:begin --><!-- bench:end -->", "", true},
		{"end first", "<!-- bench:end --><!-- bench:begin -->", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := replaceBlock(tt.doc, "new\n")
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("replaceBlock = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestRun renders the newest results file into a README and a chart, and
// a second run changes nothing.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	resultsDir := filepath.Join(dir, "bench", "results")
	older := loadFixture(t)
	older.Date, older.Commit = older.Date.AddDate(0, 0, -1), "0000000"
	for _, r := range []*results.Results{older, loadFixture(t)} {
		if _, err := r.Write(resultsDir); err != nil {
			t.Fatal(err)
		}
	}
	readme, svg := filepath.Join(dir, "README.md"), filepath.Join(dir, "docs", "bench.svg")
	os.MkdirAll(filepath.Dir(svg), 0o755)
	os.WriteFile(readme, []byte("# x\n\n<!-- bench:begin -->\ntyped by hand\n<!-- bench:end -->\n\nafter\n"), 0o644)
	for range 2 {
		if err := run(resultsDir, readme, svg); err != nil {
			t.Fatal(err)
		}
	}
	doc, _ := os.ReadFile(readme)
	if !bytes.Contains(doc, []byte("(bench/results/2026-12-01-abc1234.json)")) || bytes.Contains(doc, []byte("typed by hand")) ||
		!bytes.HasSuffix(doc, []byte("<!-- bench:end -->\n\nafter\n")) || !bytes.Contains(doc, []byte("](docs/bench.svg)")) {
		t.Errorf("README after two runs:\n%s", doc)
	}
	if _, err := os.Stat(svg); err != nil {
		t.Error(err)
	}
}
