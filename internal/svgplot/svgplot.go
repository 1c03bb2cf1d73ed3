// Package svgplot holds the pieces of Weft's hand-written SVG charts
// (bench/report's docs/bench.svg, the soak's docs/soak.svg): text, grid
// lines and axis steps. Charts are written by hand so that the docs need
// no plotting dependency and the SVG diffs cleanly.
package svgplot

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"strings"
)

// Gridline draws a light horizontal line at y from x1 to x2.
func Gridline(b *bytes.Buffer, x1, x2, y float64) {
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x1, y, x2, y)
}

// Text draws s (escaped) at x, y; attrs are extra attributes, may be "".
func Text(b *bytes.Buffer, x, y float64, anchor, attrs, s string) {
	if attrs != "" {
		attrs = " " + attrs
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s"%s>%s</text>`+"\n", x, y, anchor, attrs, Esc(s))
}

// Esc escapes s for SVG text and attribute values.
func Esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// NiceStep rounds v up to 1, 2 or 5 times a power of ten.
func NiceStep(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// TrimFloat prints an axis value without trailing zeros.
func TrimFloat(v float64) string {
	s := fmt.Sprintf("%.4f", v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
