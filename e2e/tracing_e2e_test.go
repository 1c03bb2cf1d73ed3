package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/consultest"
	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/internal/testproc"
)

// traceHeaders are what an app forwards from its inbound request to its
// outbound calls so a trace spans hops, as in every mesh.
var traceHeaders = []string{"traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled"}

// relay answers by calling next (through its sidecar) with the trace
// headers of the request it is serving.
func relay(next string) http.Handler {
	client := &http.Client{Timeout: 10 * time.Second}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, next+r.URL.Path, nil)
		for _, h := range traceHeaders {
			if v := r.Header.Get(h); v != "" {
				req.Header.Set(h, v)
			}
		}
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})
}

// failPath is the path db answers with 500: the chain's error hop.
const failPath = "/fail"

// failingOn answers 500 on path and lets next serve the rest.
func failingOn(path string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == path {
			http.Error(w, "db is broken", http.StatusInternalServerError)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// chainMesh runs web → api → db, each app behind its sidecar, and returns
// the web app's URL (the test calls it as a user would). db fails
// requests for failPath.
func chainMesh(t *testing.T, opts meshOptions) (*mesh, string) {
	t.Helper()
	m := newMesh(t, opts)
	for _, svc := range []string{"web", "api", "db"} {
		m.setEntry(t, &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: svc, Protocol: "http"})
	}
	dbPort := freePort(t)
	hops := []struct {
		id, name, next string
		upstream       *api.Upstream
	}{
		{"web-1", "web", fmt.Sprintf("http://127.0.0.1:%d", m.apiPort), &api.Upstream{DestinationName: "api", LocalBindAddress: "127.0.0.1", LocalBindPort: m.apiPort}},
		{"api-1", "api", fmt.Sprintf("http://127.0.0.1:%d", dbPort), &api.Upstream{DestinationName: "db", LocalBindAddress: "127.0.0.1", LocalBindPort: dbPort}},
		{"db-1", "db", "", nil},
	}
	var webURL string
	for _, h := range hops {
		handler := failingOn(failPath, named(h.id))
		if h.next != "" {
			handler = relay(h.next)
		}
		m.hits[h.id] = &atomic.Int64{}
		port := startHandler(t, handler, m.hits[h.id])
		var ups []api.Upstream
		if h.upstream != nil {
			ups = []api.Upstream{*h.upstream}
		}
		m.register(t, h.id, h.name, port, ups)
		m.startProxy(t, h.id+"-sidecar-proxy")
		if h.id == "web-1" {
			webURL = fmt.Sprintf("http://127.0.0.1:%d/order", port)
		}
	}
	for _, svc := range []string{"api", "db"} {
		consultest.WaitForPassing(t, m.consul.Client(), svc, 1)
	}
	waitHTTP200(t, webURL, 30*time.Second)
	return m, webURL
}

// TestTraceInEmbeddedViewer: with no collector configured, the control
// plane holds the chain's trace, and `weft traces` shows every hop.
func TestTraceInEmbeddedViewer(t *testing.T) {
	m, webURL := chainMesh(t, meshOptions{})
	for range 5 {
		waitHTTP200(t, webURL, 10*time.Second)
	}
	weft := filepath.Join(binDir, "weft")
	var out []byte
	poll.Until(t, 20*time.Second, "a trace through web, api and db in the control plane", func() error {
		var err error
		out, err = exec.Command(weft, "traces", "--admin-addr", m.cpAdmin, "--service", "db").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if !strings.Contains(string(out), "api,db,web") {
			return fmt.Errorf("no trace spans web, api and db yet:\n%s", out)
		}
		return nil
	})
	id := strings.Fields(strings.Split(string(out), "\n")[1])[0]
	wf, err := exec.Command(weft, "traces", "--admin-addr", m.cpAdmin, id).CombinedOutput()
	if err != nil {
		t.Fatalf("weft traces %s: %v\n%s", id, err, wf)
	}
	t.Logf("weft traces %s:\n%s", id, wf)
	for _, svc := range []string{"web", "api", "db"} {
		if !strings.Contains(string(wf), svc) {
			t.Errorf("waterfall lacks %s", svc)
		}
	}
	checkSpansExplainThemselves(t, m.cpAdmin, id)

	// The failing request's trace is listed as an error.
	failURL := strings.TrimSuffix(webURL, "/order") + failPath
	if code := get(t, failURL); code != http.StatusInternalServerError {
		t.Fatalf("GET %s: %d, want 500 from db through the chain", failURL, code)
	}
	poll.Until(t, 20*time.Second, "the failed chain among the error traces", func() error {
		out, err := exec.Command(weft, "traces", "--admin-addr", m.cpAdmin, "--service", "db", "--errors").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if !strings.Contains(string(out), "api,db,web") {
			return fmt.Errorf("no failed trace through web, api and db yet:\n%s", out)
		}
		return nil
	})
}

// checkSpansExplainThemselves reads a chain's trace from the embedded
// backend's JSON API: every sidecar names its span by the route, the
// client spans name the Consul instance that served them (as the control
// plane put it in EDS), the server spans their verified caller.
func checkSpansExplainThemselves(t *testing.T, cpAdmin, id string) {
	t.Helper()
	var tr struct {
		Rows []struct {
			Service, Name, Kind string
			Attributes          map[string]string
		}
	}
	poll.Until(t, 20*time.Second, "the four spans of trace "+id, func() error {
		if err := getJSONInto("http://"+cpAdmin+"/api/traces/"+id, &tr); err != nil {
			return err
		}
		if len(tr.Rows) < 4 {
			return fmt.Errorf("%d spans", len(tr.Rows))
		}
		return nil
	})
	// service/kind → attributes; a SPIFFE ID is checked by its path.
	want := map[string]map[string]string{
		"web/CLIENT": {"url.path": "/order", "weft.upstream.instance_id": "api-1-sidecar-proxy"},
		"api/SERVER": {"url.path": "/order", "weft.peer.spiffe_id": "/ns/default/dc/dc1/svc/web"},
		"api/CLIENT": {"url.path": "/order", "weft.upstream.instance_id": "db-1-sidecar-proxy"},
		"db/SERVER":  {"url.path": "/order", "weft.peer.spiffe_id": "/ns/default/dc/dc1/svc/api"},
	}
	for _, r := range tr.Rows {
		key := r.Service + "/" + r.Kind
		attrs, ok := want[key]
		if !ok {
			t.Errorf("unexpected span %s %q", key, r.Name)
			continue
		}
		delete(want, key)
		if r.Name != "GET /*" || r.Attributes["http.route"] != "/*" {
			t.Errorf("%s span named %q, http.route %q; want GET /* and /*", key, r.Name, r.Attributes["http.route"])
		}
		for k, v := range attrs {
			got := r.Attributes[k]
			if k == "weft.peer.spiffe_id" && strings.HasPrefix(got, "spiffe://") {
				got = got[strings.Index(got[len("spiffe://"):], "/")+len("spiffe://"):]
			}
			if got != v {
				t.Errorf("%s span: %s = %q, want %q (all: %v)", key, k, r.Attributes[k], v, r.Attributes)
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("trace %s lacks spans %v", id, want)
	}
}

// get sends one GET and returns its status code.
func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// startJaeger runs Jaeger all-in-one on loopback and returns its OTLP/gRPC
// address and query API base URL.
func startJaeger(t *testing.T) (otlp, query string) {
	t.Helper()
	root, _ := filepath.Abs("..")
	bin := filepath.Join(root, "bin", "jaeger")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("Jaeger not built: run make jaeger (%v)", err)
	}
	otlp, query = addr(freePort(t)), addr(freePort(t))
	args := []string{
		"--collector.otlp.grpc.host-port=" + otlp, "--collector.otlp.http.host-port=" + addr(freePort(t)),
		"--query.http-server.host-port=" + query, "--query.grpc-server.host-port=" + addr(freePort(t)),
		"--admin.http.host-port=" + addr(freePort(t)), "--collector.grpc-server.host-port=" + addr(freePort(t)),
		"--collector.http-server.host-port=" + addr(freePort(t)), "--collector.zipkin.host-port=" + addr(freePort(t)),
		"--processor.jaeger-compact.server-host-port=" + addr(freePort(t)), "--processor.jaeger-binary.server-host-port=" + addr(freePort(t)),
		"--processor.zipkin-compact.server-host-port=" + addr(freePort(t)),
	}
	testproc.Run(t, testproc.Spec{Name: "jaeger", Args: append([]string{bin}, args...)})
	waitHTTP200(t, "http://"+query+"/api/services", 60*time.Second)
	return otlp, "http://" + query
}

type jaegerTrace struct {
	TraceID   string       `json:"traceID"`
	Spans     []jaegerSpan `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

type jaegerSpan struct {
	SpanID     string `json:"spanID"`
	ProcessID  string `json:"processID"`
	References []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
}

// tag returns the value of the span's tag key, nil when it has none.
func (s jaegerSpan) tag(key string) any {
	for _, t := range s.Tags {
		if t.Key == key {
			return t.Value
		}
	}
	return nil
}

// TestTraceInJaeger points the mesh at a real Jaeger: each request through
// the chain is one trace with every hop's spans (two per sidecar-to-sidecar
// hop), linked parent to child under one root, with status codes; the
// failing hop of a failed request is marked as an error.
func TestTraceInJaeger(t *testing.T) {
	otlp, query := startJaeger(t)
	_, webURL := chainMesh(t, meshOptions{otlpEndpoint: otlp})
	waitHTTP200(t, webURL, 10*time.Second)
	failURL := strings.TrimSuffix(webURL, "/order") + failPath
	if code := get(t, failURL); code != http.StatusInternalServerError {
		t.Fatalf("GET %s: %d, want 500 from db through the chain", failURL, code)
	}
	for _, tc := range []struct {
		path   string
		failed bool
	}{{"/order", false}, {failPath, true}} {
		t.Run(tc.path, func(t *testing.T) {
			trace := jaegerChainTrace(t, query, tc.path)
			checkLinks(t, trace)
			for _, s := range trace.Spans {
				service := trace.Processes[s.ProcessID].ServiceName
				status, isErr := s.tag("http.response.status_code"), s.tag("error") == true
				if status == nil {
					t.Errorf("%s span %s has no http.response.status_code", service, s.SpanID)
				}
				if isErr != tc.failed {
					t.Errorf("%s span %s (status %v): error=%v, want %v", service, s.SpanID, status, isErr, tc.failed)
				}
			}
		})
	}
}

// jaegerChainTrace waits for the trace of a request for path that went
// through web, api and db.
func jaegerChainTrace(t *testing.T, query, path string) jaegerTrace {
	t.Helper()
	var trace jaegerTrace
	poll.Until(t, 30*time.Second, "the chain's trace of "+path+" in Jaeger", func() error {
		var resp struct{ Data []jaegerTrace }
		if err := getJSONInto(query+"/api/traces?service=db&limit=50&lookback=1h", &resp); err != nil {
			return err
		}
		for _, tr := range resp.Data {
			services := map[string]bool{}
			for _, p := range tr.Processes {
				services[p.ServiceName] = true
			}
			// Each sidecar exports its spans in its own batches, and
			// api's client span can arrive before its server span: wait
			// for the whole chain's four before checking the trace.
			if services["web"] && services["api"] && services["db"] && len(tr.Spans) >= 4 && tr.Spans[0].tag("url.path") == path {
				trace = tr
				return nil
			}
		}
		return fmt.Errorf("%d traces, none of %s through web, api and db with its 4 spans yet", len(resp.Data), path)
	})
	return trace
}

// checkLinks checks that a chain's trace is one tree: a single root, every
// parent in the trace, and the four spans of web → api → db (web's client
// span, api's server and client spans, db's server span).
func checkLinks(t *testing.T, trace jaegerTrace) {
	t.Helper()
	ids := map[string]bool{}
	for _, s := range trace.Spans {
		ids[s.SpanID] = true
	}
	roots := 0
	for _, s := range trace.Spans {
		parent := ""
		for _, r := range s.References {
			if r.RefType == "CHILD_OF" {
				parent = r.SpanID
			}
		}
		switch {
		case parent == "":
			roots++
		case !ids[parent]:
			t.Errorf("span %s (%s) has parent %s outside the trace", s.SpanID, trace.Processes[s.ProcessID].ServiceName, parent)
		}
	}
	if roots != 1 {
		t.Errorf("trace has %d roots; want one trace rooted at the first sidecar", roots)
	}
	if len(trace.Spans) != 4 {
		t.Errorf("trace has %d spans; want 4 (web client, api server and client, db server)", len(trace.Spans))
	}
}

func getJSONInto(url string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
