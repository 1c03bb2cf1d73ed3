package traces

import (
	"fmt"
	"html/template"
	"math"
	"sort"
	"strings"
	"time"
)

// The list page's charts are drawn here as SVG, so the viewer needs no
// script library, CDN or build step. Everything written into the SVG is
// escaped.

// scatterSVG plots traces by start time (x) and duration (y), errors in
// red; each point links to its trace.
func scatterSVG(sums []Summary) template.HTML {
	const w, h, left, bottom = 900, 220, 60, 30
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="scatter" viewBox="0 0 %d %d" width="100%%" role="img" aria-label="trace latency over time">`, w, h)
	if len(sums) == 0 {
		b.WriteString(`<text x="10" y="20" class="axis">no traces to plot</text></svg>`)
		return template.HTML(b.String())
	}
	first, last := sums[0].Start, sums[0].Start
	var longest time.Duration
	for _, s := range sums {
		if s.Start.Before(first) {
			first = s.Start
		}
		if s.Start.After(last) {
			last = s.Start
		}
		longest = max(longest, s.Duration)
	}
	span := max(last.Sub(first), time.Millisecond)
	top := niceCeil(longest)
	plotW, plotH := float64(w-left-10), float64(h-bottom-10)
	x := func(t time.Time) float64 { return float64(left) + plotW*float64(t.Sub(first))/float64(span) }
	y := func(d time.Duration) float64 { return 10 + plotH*(1-float64(d)/float64(top)) }
	for i := 0; i <= 4; i++ {
		d := top * time.Duration(i) / 4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/><text x="%d" y="%.1f" class="axis" text-anchor="end">%s</text>`,
			left, w-10, y(d), y(d), left-4, y(d)+4, template.HTMLEscapeString(fmtDur(d)))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="axis">%s</text><text x="%d" y="%d" class="axis" text-anchor="end">%s</text>`,
		left, h-8, first.UTC().Format("15:04:05.000"), w-10, h-8, last.UTC().Format("15:04:05.000"))
	// Errors last, so they are drawn on top.
	ordered := append([]Summary(nil), sums...)
	sort.SliceStable(ordered, func(i, j int) bool { return !ordered[i].Error && ordered[j].Error })
	for _, s := range ordered {
		class := "pt"
		if s.Error {
			class = "pt err"
		}
		fmt.Fprintf(&b, `<a href="/traces/%s"><circle class="%s" data-trace-id="%s" cx="%.1f" cy="%.1f" r="4"><title>%s · %s</title></circle></a>`,
			template.HTMLEscapeString(s.TraceID), class, template.HTMLEscapeString(s.TraceID), x(s.Start), y(s.Duration),
			template.HTMLEscapeString(s.RootService+": "+s.RootName), template.HTMLEscapeString(fmtDur(s.Duration)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// serviceMapSVG draws who calls whom: services on a circle, an arrow per
// edge labelled with its rate, error share and p99; a node's colour is
// its error rate, and clicking it filters the list to the service.
func serviceMapSVG(ov Overview) template.HTML {
	const w, h, r = 900, 420, 150.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="service-map" viewBox="0 0 %d %d" width="100%%" role="img" aria-label="service map">`, w, h)
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>`)
	if len(ov.Services) == 0 {
		b.WriteString(`<text x="10" y="20" class="axis">no services in the traces held</text></svg>`)
		return template.HTML(b.String())
	}
	pos := map[string][2]float64{}
	n := len(ov.Services)
	for i, s := range ov.Services {
		a := -math.Pi/2 + 2*math.Pi*float64(i)/float64(n)
		if n == 1 {
			a = 0
		}
		cx, cy := float64(w)/2+r*1.6*math.Cos(a), float64(h)/2+r*math.Sin(a)
		if n == 1 {
			cx = float64(w) / 2
		}
		pos[s.Service] = [2]float64{cx, cy}
	}
	const nodeR = 34.0
	for _, e := range ov.Edges {
		from, to := pos[e.From], pos[e.To]
		dx, dy := to[0]-from[0], to[1]-from[1]
		l := math.Hypot(dx, dy)
		if l == 0 {
			continue
		}
		ux, uy := dx/l, dy/l
		x1, y1, x2, y2 := from[0]+ux*nodeR, from[1]+uy*nodeR, to[0]-ux*nodeR, to[1]-uy*nodeR
		class := "edge"
		if e.ErrorRate > 0 {
			class = "edge err"
		}
		label := fmt.Sprintf("%.1f/s · %.0f%% err · p99 %s", e.PerSecond, 100*e.ErrorRate, fmtDur(e.P99))
		fmt.Fprintf(&b, `<g class="map-edge" data-from="%s" data-to="%s"><line class="%s" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" marker-end="url(#arrow)"/><text class="edge-label" x="%.1f" y="%.1f" text-anchor="middle">%s</text></g>`,
			template.HTMLEscapeString(e.From), template.HTMLEscapeString(e.To), class, x1, y1, x2, y2,
			(x1+x2)/2-uy*10, (y1+y2)/2+ux*10, template.HTMLEscapeString(label))
	}
	for _, s := range ov.Services {
		p := pos[s.Service]
		health := "node ok"
		switch {
		case s.ErrorRate >= 0.05:
			health = "node bad"
		case s.ErrorRate > 0:
			health = "node warn"
		}
		fmt.Fprintf(&b, `<a href="/traces?service=%s" class="map-node" data-service="%s"><circle class="%s" cx="%.1f" cy="%.1f" r="%.0f"><title>%s: %d requests, %.1f%% errors, p50 %s, p99 %s</title></circle><text x="%.1f" y="%.1f" text-anchor="middle" class="node-label">%s</text></a>`,
			template.URLQueryEscaper(s.Service), template.HTMLEscapeString(s.Service), health, p[0], p[1], nodeR,
			template.HTMLEscapeString(s.Service), s.Requests, 100*s.ErrorRate, fmtDur(s.P50), fmtDur(s.P99),
			p[0], p[1]+4, template.HTMLEscapeString(s.Service))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// niceCeil rounds d up to 1, 2 or 5 times a power of ten, for axis ticks.
func niceCeil(d time.Duration) time.Duration {
	if d <= 0 {
		return time.Millisecond
	}
	p := time.Duration(1)
	for p*10 <= d {
		p *= 10
	}
	for _, m := range []time.Duration{1, 2, 5, 10} {
		if m*p >= d {
			return m * p
		}
	}
	return 10 * p
}

// fmtDur prints a duration in ms with two decimals below a second.
func fmtDur(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
