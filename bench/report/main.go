// Command report renders the newest results file of `make bench`
// (bench/results/*.json) into the README's performance block, between
// the markers <!-- bench:begin --> and <!-- bench:end -->, and into an
// SVG chart of latency percentiles and CPU per peer. Nothing in the block
// or the chart is typed by hand: to change them, change this program or
// run the benchmark again.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/weft-mesh/weft/bench/internal/results"
)

// Markers delimit the generated block in the README.
const (
	beginMarker = "<!-- bench:begin -->"
	endMarker   = "<!-- bench:end -->"
)

func main() {
	dir := flag.String("results", "bench/results", "directory of results files; the newest (by its date) is rendered")
	readme := flag.String("readme", "README.md", "Markdown file holding the block between "+beginMarker+" and "+endMarker)
	svg := flag.String("svg", "docs/bench.svg", "chart to write, linked from the block (path relative to the README's directory)")
	flag.Parse()
	if err := run(*dir, *readme, *svg); err != nil {
		fmt.Fprintln(os.Stderr, "bench report:", err)
		os.Exit(1)
	}
}

func run(dir, readme, svg string) error {
	path, r, err := results.Newest(dir)
	if err != nil {
		return err
	}
	base := filepath.Dir(readme)
	rel := func(p string) string {
		if r, err := filepath.Rel(base, p); err == nil {
			return filepath.ToSlash(r)
		}
		return filepath.ToSlash(p)
	}
	doc, err := os.ReadFile(readme)
	if err != nil {
		return err
	}
	block := markdown(r, rel(path), rel(svg))
	out, err := replaceBlock(string(doc), block)
	if err != nil {
		return fmt.Errorf("%s: %w", readme, err)
	}
	if err := os.WriteFile(readme, []byte(out), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(svg, chart(r), 0o644); err != nil {
		return err
	}
	fmt.Print(block)
	fmt.Printf("\nrendered %s into %s and %s\n", path, readme, svg)
	return nil
}

// replaceBlock replaces what lies between the markers in doc with block;
// each marker must appear once, begin first.
func replaceBlock(doc, block string) (string, error) {
	if strings.Count(doc, beginMarker) != 1 || strings.Count(doc, endMarker) != 1 {
		return "", fmt.Errorf("want %s and %s once each", beginMarker, endMarker)
	}
	begin := strings.Index(doc, beginMarker) + len(beginMarker)
	end := strings.Index(doc, endMarker)
	if end < begin {
		return "", fmt.Errorf("%s comes before %s", endMarker, beginMarker)
	}
	return doc[:begin] + "\n" + block + doc[end:], nil
}
