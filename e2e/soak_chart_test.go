package e2e

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/weft-mesh/weft/internal/svgplot"
)

// soak.svg's geometry: panels stacked over one time axis (seconds from
// the load's start), faults as shaded bands across all of them, a legend
// right of each panel.
const (
	soakChartW   = 960
	soakPlotL    = 70
	soakPlotR    = 790
	soakLegendX  = 805
	soakHeaderH  = 120
	soakPanelH   = 190 // a panel: title, plot, axis labels
	soakPlotTop  = 24  // from a panel's top to its plot area
	soakPlotH    = 130
	soakFootH    = 30
	soakPanelCnt = 6
)

var (
	protoColors = map[string]string{protoHTTP1: "#1f77b4", protoHTTP2: "#ff7f0e", protoGRPC: "#2ca02c", protoTCP: "#d62728"}
	procPalette = []string{"#000000", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"}
)

// series is one line of a panel: points are (seconds, value).
type series struct {
	name   string
	color  string
	dashed bool
	points [][2]float64
}

// soakChart renders the report: success per interval, latency per
// protocol, RSS and goroutines per process.
func soakChart(r *soakReport) []byte {
	var b bytes.Buffer
	height := soakHeaderH + soakPanelCnt*soakPanelH + soakFootH
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n",
		soakChartW, height, soakChartW, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", soakChartW, height)
	soakHeader(&b, r)
	x := func(s float64) float64 { return soakPlotL + s/r.LoadSeconds*(soakPlotR-soakPlotL) }
	faultBands(&b, r, x, soakHeaderH, float64(soakHeaderH+soakPanelCnt*soakPanelH))
	top := float64(soakHeaderH)
	linePanel(&b, top, "success of requests not denied, %", successSeries(r), x, false)
	linePanel(&b, top+soakPanelH, "latency of successful requests, ms, log scale (solid p99, dashed p50)", latencySeries(r), x, true)
	linePanel(&b, top+2*soakPanelH, "RSS (VmRSS), MB, mean of the interval's readings", procSeries(r, totalRSS), x, false)
	linePanel(&b, top+3*soakPanelH, "anonymous RSS (RssAnon: heap and stacks), MB, mean", procSeries(r, anonRSS), x, false)
	linePanel(&b, top+4*soakPanelH, "Go heap goal (twice the live heap), MB, mean", procSeries(r, func(p procFigures) float64 { return p.HeapGoalMB }), x, false)
	linePanel(&b, top+5*soakPanelH, "goroutines", procSeries(r, func(p procFigures) float64 { return float64(p.Goroutines) }), x, false)
	timeAxis(&b, r, x, top+soakPanelCnt*soakPanelH)
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func soakHeader(b *bytes.Buffer, r *soakReport) {
	svgplot.Text(b, 10, 20, "start", `font-size="14" font-weight="bold"`,
		fmt.Sprintf("Weft soak, %s schedule (TestSoak), %s", r.Schedule, r.Date[:10]))
	race := ""
	if r.Race {
		race = ", binaries with the race detector"
	}
	svgplot.Text(b, 10, 40, "start", "", fmt.Sprintf("%d requests/s per protocol (HTTP/1.1, HTTP/2, gRPC, TCP), open loop, no client retries; leaves of %s%s",
		r.RatePerProtocol, r.LeafTTL, race))
	svgplot.Text(b, 10, 58, "start", "", fmt.Sprintf("%d sent, %d denied by intention, %d failed: %.4f %% success of requests not denied",
		r.Total.Sent, r.Total.Denied, r.Total.Failed, 100*r.Total.SuccessRate))
	for i, in := range r.Intervals {
		svgplot.Text(b, 10+float64(i%3)*310, 78+float64(i/3)*16, "start", `fill="#555"`,
			fmt.Sprintf("%.0f–%.0f s: %d sent, %d denied, %d failed", in.StartS, in.EndS, in.Sent, in.Denied, in.Failed))
	}
}

// faultBands shades each fault's span and names it at the top.
func faultBands(b *bytes.Buffer, r *soakReport, x func(float64) float64, y1, y2 float64) {
	for i, f := range r.Faults {
		w := max(x(f.EndS)-x(f.StartS), 2)
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#f2e6ff"><title>%s: %.1f–%.1f s</title></rect>`+"\n",
			x(f.StartS), y1, w, y2-y1, svgplot.Esc(f.Name), f.StartS, f.EndS)
		svgplot.Text(b, x(f.StartS)+2, y1+10+float64(i%2)*11, "start", `fill="#6a3d9a" font-size="9"`, f.Name)
	}
}

// linePanel draws the series over the time axis, on a linear scale from
// the values' floor (0 for counts) or on whole decades.
func linePanel(b *bytes.Buffer, top float64, title string, ss []series, x func(float64) float64, logScale bool) {
	svgplot.Text(b, soakPlotL, top+soakPlotTop+6, "start", `font-weight="bold"`, title)
	lo, hi := valueRange(ss)
	if hi <= lo {
		hi = lo + 1
	}
	y0 := top + soakPlotTop + 14 + soakPlotH
	var y func(float64) float64
	if logScale {
		y = logAxis(b, lo, hi, y0)
	} else {
		y = linearAxis(b, lo, hi, y0)
	}
	for i, s := range ss {
		drawSeries(b, s, x, y)
		ly := top + soakPlotTop + 20 + float64(i)*13
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="4 2"`
		}
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n", soakLegendX, ly-4, soakLegendX+16, ly-4, s.color, dash)
		svgplot.Text(b, soakLegendX+20, ly, "start", "", s.name)
	}
}

func valueRange(ss []series) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, p := range s.points {
			lo, hi = min(lo, p[1]), max(hi, p[1])
		}
	}
	if math.IsInf(lo, 1) {
		return 0, 1
	}
	return lo, hi
}

// linearAxis draws gridlines from 0, or from just below lo when the
// values sit far above 0 (success rates), and returns the scale.
func linearAxis(b *bytes.Buffer, lo, hi, y0 float64) func(float64) float64 {
	base := 0.0
	if lo > 0.9*hi && lo > 0 { // a rate near its ceiling: show the detail
		base = lo - (hi-lo+0.001)*0.5
	}
	step := svgplot.NiceStep((hi - base) / 4)
	base = step * math.Floor(base/step)
	top := base + step*math.Ceil((hi-base)/step)
	y := func(v float64) float64 { return y0 - (v-base)/(top-base)*soakPlotH }
	for v := base; v <= top+step/2; v += step {
		svgplot.Gridline(b, soakPlotL, soakPlotR, y(v))
		svgplot.Text(b, soakPlotL-4, y(v)+4, "end", `fill="#555"`, svgplot.TrimFloat(v))
	}
	return y
}

func logAxis(b *bytes.Buffer, lo, hi, y0 float64) func(float64) float64 {
	loExp, hiExp := math.Floor(math.Log10(max(lo, 0.01))), math.Ceil(math.Log10(max(hi, 0.01)))
	if hiExp == loExp {
		hiExp++
	}
	y := func(v float64) float64 {
		f := (math.Log10(max(v, math.Pow(10, loExp))) - loExp) / (hiExp - loExp)
		return y0 - f*soakPlotH
	}
	for e := loExp; e <= hiExp; e++ {
		v := math.Pow(10, e)
		svgplot.Gridline(b, soakPlotL, soakPlotR, y(v))
		svgplot.Text(b, soakPlotL-4, y(v)+4, "end", `fill="#555"`, svgplot.TrimFloat(v))
	}
	return y
}

func drawSeries(b *bytes.Buffer, s series, x, y func(float64) float64) {
	pts := make([]string, len(s.points))
	for i, p := range s.points {
		pts[i] = fmt.Sprintf("%.1f,%.1f", x(p[0]), y(p[1]))
	}
	dash := ""
	if s.dashed {
		dash = ` stroke-dasharray="4 2"`
	}
	fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"%s><title>%s</title></polyline>`+"\n",
		strings.Join(pts, " "), s.color, dash, svgplot.Esc(s.name))
	for _, p := range s.points {
		fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"><title>%s at %.0f s: %.4g</title></circle>`+"\n",
			x(p[0]), y(p[1]), s.color, svgplot.Esc(s.name), p[0], p[1])
	}
}

func timeAxis(b *bytes.Buffer, r *soakReport, x func(float64) float64, y float64) {
	step := svgplot.NiceStep(r.LoadSeconds / 10)
	for s := 0.0; s <= r.LoadSeconds+step/2; s += step {
		svgplot.Text(b, x(s), y+12, "middle", `fill="#555"`, svgplot.TrimFloat(s))
	}
	svgplot.Text(b, soakPlotR, y+26, "end", `fill="#555"`, "seconds from the start of the load")
}

// mid is an interval's midpoint, where its figures are plotted.
func mid(in soakInterval) float64 { return (in.StartS + in.EndS) / 2 }

func successSeries(r *soakReport) []series {
	s := series{name: "success %", color: "#000"}
	for _, in := range r.Intervals {
		s.points = append(s.points, [2]float64{mid(in), 100 * in.SuccessRate})
	}
	return []series{s}
}

func latencySeries(r *soakReport) []series {
	var out []series
	for _, proto := range soakProtocols {
		p50 := series{name: proto + " p50", color: protoColors[proto], dashed: true}
		p99 := series{name: proto + " p99", color: protoColors[proto]}
		for _, in := range r.Intervals {
			if l, ok := in.Latency[proto]; ok {
				p50.points = append(p50.points, [2]float64{mid(in), l.P50})
				p99.points = append(p99.points, [2]float64{mid(in), l.P99})
			}
		}
		out = append(out, p99, p50)
	}
	return out
}

func procSeries(r *soakReport, value func(procFigures) float64) []series {
	names := map[string]bool{}
	for _, in := range r.Intervals {
		for name := range in.Procs {
			names[name] = true
		}
	}
	var out []series
	for i, name := range slices.Sorted(maps.Keys(names)) {
		s := series{name: shortProcName(name), color: procPalette[i%len(procPalette)]}
		for _, in := range r.Intervals {
			if p, ok := in.Procs[name]; ok {
				s.points = append(s.points, [2]float64{mid(in), value(p)})
			}
		}
		out = append(out, s)
	}
	return out
}
