package main

import (
	"bytes"
	"fmt"
	"math"
	"slices"

	"github.com/weft-mesh/weft/bench/internal/results"
	"github.com/weft-mesh/weft/internal/svgplot"
)

// The chart's geometry: a row per workload, latency percentiles on the
// left (log scale, a group of bars per peer), CPU per 1,000 units on the
// right (a stacked bar per peer: client side, server side).
const (
	chartWidth = 960
	headerH    = 64
	rowH       = 220
	plotTop    = 34  // from a row's top to its plot area
	plotH      = 140 // plot area height
	latLeft    = 70
	latRight   = 610
	cpuLeft    = 680
	cpuRight   = 950
)

var (
	percentileColors = []string{"#9ecae1", "#6baed6", "#3182bd", "#08519c"}
	percentileNames  = []string{"p50", "p90", "p99", "p99.9"}
	sideColors       = []string{"#e6550d", "#fdae6b"}
	shortPeerNames   = map[string]string{
		results.PeerDirect: "direct", results.PeerHAProxy: "HAProxy", results.PeerConsul: "Consul",
		results.PeerWeft: "Weft", results.PeerWeftTrace100: "Weft 100%",
	}
)

// chart renders r's latency percentiles and CPU per peer as SVG.
func chart(r *results.Results) []byte {
	var b bytes.Buffer
	height := headerH + rowH*len(r.Workloads)
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n",
		chartWidth, height, chartWidth, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", chartWidth, height)
	title := fmt.Sprintf("make bench, %s, commit %s", r.Date.UTC().Format("2006-01-02"), r.Commit)
	if r.Settings.Quick {
		title += " — quick smoke run, not a measurement"
	}
	svgplot.Text(&b, 10, 20, "start", "font-size=\"14\" font-weight=\"bold\"", title)
	if slices.ContainsFunc(r.Peers, func(p results.Peer) bool { return p.ID == results.PeerWeftTrace100 }) {
		svgplot.Text(&b, chartWidth-10, 20, "end", `fill="#555"`, "Weft 100%: Weft's pair tracing every request")
	}
	legend(&b)
	for i, w := range r.Workloads {
		top := float64(headerH + i*rowH)
		svgplot.Text(&b, 10, top+14, "start", `font-weight="bold"`, w.Name)
		latencyPanel(&b, r, w, top)
		cpuPanel(&b, w, top)
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func legend(b *bytes.Buffer) {
	x := 10.0
	for i, name := range percentileNames {
		fmt.Fprintf(b, `<rect x="%.1f" y="34" width="12" height="12" fill="%s"/>`+"\n", x, percentileColors[i])
		svgplot.Text(b, x+16, 44, "start", "", name)
		x += 60
	}
	svgplot.Text(b, x, 44, "start", "", "latency at the fixed rate")
	x = cpuLeft - 60
	for i, name := range []string{"client side", "server side"} {
		fmt.Fprintf(b, `<rect x="%.1f" y="34" width="12" height="12" fill="%s"/>`+"\n", x, sideColors[i])
		svgplot.Text(b, x+16, 44, "start", "", name)
		x += 90
	}
	svgplot.Text(b, x, 44, "start", "", "CPU")
}

// latencyPanel draws p50, p90, p99 and p99.9 of each peer on a log scale
// spanning whole decades.
func latencyPanel(b *bytes.Buffer, r *results.Results, w results.Workload, top float64) {
	lo, hi := math.Inf(1), 0.0
	for _, res := range w.Results {
		for _, v := range percentiles(res) {
			if v > 0 {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if hi == 0 {
		return
	}
	loExp, hiExp := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if hiExp == loExp {
		hiExp++
	}
	y0 := top + plotTop + plotH
	y := func(v float64) float64 {
		f := (math.Log10(max(v, math.Pow(10, loExp))) - loExp) / (hiExp - loExp)
		return y0 - f*plotH
	}
	svgplot.Text(b, latLeft, top+plotTop-8, "start", `fill="#555"`, fmt.Sprintf("ms at %s/s, log scale", thousands(float64(r.Settings.Rate))))
	for e := loExp; e <= hiExp; e++ {
		v := math.Pow(10, e)
		svgplot.Gridline(b, latLeft, latRight, y(v))
		svgplot.Text(b, latLeft-4, y(v)+4, "end", `fill="#555"`, svgplot.TrimFloat(v))
	}
	groupW := float64(latRight-latLeft) / float64(len(w.Results))
	barW := groupW * 0.8 / 4
	for g, res := range w.Results {
		gx := latLeft + float64(g)*groupW + groupW*0.1
		for i, v := range percentiles(res) {
			x := gx + float64(i)*barW
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %.3f ms</title></rect>`+"\n",
				x, y(v), barW-1, y0-y(v), percentileColors[i], svgplot.Esc(shortPeerName(res.Peer)), percentileNames[i], v)
		}
		svgplot.Text(b, gx+groupW*0.4, y0+14, "middle", "", shortPeerName(res.Peer))
	}
}

func percentiles(res results.PeerResult) []float64 {
	l := res.LatencyMs
	return []float64{l.P50, l.P90, l.P99, l.P999}
}

// cpuPanel draws each proxied peer's CPU per 1,000 units, stacked by
// process, on a linear scale from 0.
func cpuPanel(b *bytes.Buffer, w results.Workload, top float64) {
	var peers []results.PeerResult
	hi := 0.0
	for _, res := range w.Results {
		if len(res.Procs) > 0 {
			peers = append(peers, res)
			hi = max(hi, res.CPUPer1k)
		}
	}
	if len(peers) == 0 || hi == 0 {
		return
	}
	step := svgplot.NiceStep(hi / 4)
	top4 := step * math.Ceil(hi/step)
	y0 := top + plotTop + plotH
	y := func(v float64) float64 { return y0 - v/top4*plotH }
	svgplot.Text(b, cpuLeft, top+plotTop-8, "start", `fill="#555"`, fmt.Sprintf("CPU s per 1,000 %ss", shortUnit(w.Unit)))
	for v := 0.0; v <= top4+step/2; v += step {
		svgplot.Gridline(b, cpuLeft, cpuRight, y(v))
		svgplot.Text(b, cpuLeft-4, y(v)+4, "end", `fill="#555"`, svgplot.TrimFloat(v))
	}
	barW := float64(cpuRight-cpuLeft) / float64(len(peers))
	for i, res := range peers {
		x := cpuLeft + float64(i)*barW + barW*0.15
		base := 0.0
		for pi, p := range res.Procs {
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %.3f</title></rect>`+"\n",
				x, y(base+p.CPUPer1k), barW*0.7, y(base)-y(base+p.CPUPer1k), sideColors[min(pi, len(sideColors)-1)], svgplot.Esc(p.Name), p.CPUPer1k)
			base += p.CPUPer1k
		}
		svgplot.Text(b, x+barW*0.35, y0+14, "middle", "", shortPeerName(res.Peer))
	}
}

func shortPeerName(id string) string {
	if n, ok := shortPeerNames[id]; ok {
		return n
	}
	return id
}
