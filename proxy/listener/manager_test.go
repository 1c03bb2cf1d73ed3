package listener

import (
	"context"
	"log/slog"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/telemetry/tracing"
)

// activeOf returns what the named listener serves.
func (e *env) activeOf(name string) *active {
	e.t.Helper()
	e.m.mu.Lock()
	defer e.m.mu.Unlock()
	for _, b := range e.m.bound {
		if a := b.active.Load(); a.Name == name {
			return a
		}
	}
	e.t.Fatalf("listener %q not running", name)
	return nil
}

// TestCommitSwapsOnlyChangedListeners: a listener given the
// *config.Listener it serves is not swapped — what it serves is the same
// object, so its telemetry is not rebuilt nor its connections checked
// against RBAC again — while a changed one is, and both keep serving.
func TestCommitSwapsOnlyChangedListeners(t *testing.T) {
	e := newEnv(t, wait)
	clusters := map[string]*config.Cluster{"c": staticCluster("c", tagServer(t, "ok"))}
	same := tcpListener("same", "127.0.0.1:0", "c")
	e.mustApply(runtime(clusters, same, tcpListener("changed", "127.0.0.1:0", "c")))
	sameBefore, changedBefore := e.activeOf("same"), e.activeOf("changed")

	changed := tcpListener("changed", "127.0.0.1:0", "c")
	e.mustApply(runtime(clusters, same, changed))
	if e.activeOf("same") != sameBefore {
		t.Error("the unchanged listener was swapped")
	}
	if a := e.activeOf("changed"); a == changedBefore || a.Listener != changed {
		t.Error("the changed listener was not swapped")
	}
	for _, name := range []string{"same", "changed"} {
		if got := readAll(t, dial(t, e.addr(name))); got != "ok" {
			t.Errorf("listener %s answered %q, want ok", name, got)
		}
	}
}

// TestUnchangedListenerFollowsItsCollector: an unchanged listener is
// swapped all the same when the collector its tracing config names now
// resolves to another address, so that its spans go there.
func TestUnchangedListenerFollowsItsCollector(t *testing.T) {
	collector := "10.0.0.1:4317"
	tracers := tracing.NewProviders(tracing.Options{
		Resolve: func(string) (string, bool) { return collector, collector != "" },
		NewExporter: func(context.Context, tracing.Endpoint) (sdktrace.SpanExporter, error) {
			return tracetest.NewInMemoryExporter(), nil
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	t.Cleanup(func() { tracers.Close(context.Background()) })
	clusters := cluster.NewManager(cluster.Options{})
	m := NewManager(Options{Clusters: clusters, Tracers: tracers, DrainTimeout: wait, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(m.Close)
	e := &env{t: t, clusters: clusters, m: m}

	l := httpListener(t, "traced", "127.0.0.1:0", prefixRoute("/", "c"))
	l.HTTP.Tracing = &tracing.Config{Collector: tracing.Collector{Cluster: "weft-otlp"}, ServiceName: "web", SamplingRatio: 1}
	rt := runtime(nil, l)
	e.mustApply(rt)
	first := e.activeOf("traced")
	e.mustApply(rt)
	if e.activeOf("traced") != first {
		t.Error("swapped although neither the listener nor its collector changed")
	}
	for _, next := range []string{"10.0.0.2:4317", ""} {
		collector = next
		before := e.activeOf("traced")
		e.mustApply(rt)
		a := e.activeOf("traced")
		if a == before || !tracers.Current(a.tracer, l.HTTP.Tracing) {
			t.Errorf("collector now %q: listener not swapped to a tracer of it", next)
		}
	}
}
