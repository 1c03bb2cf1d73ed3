package main

import (
	"strings"
	"testing"
)

func TestPrintTap(t *testing.T) {
	stream := strings.Join([]string{
		`{"tap":{"id":"ab","sidecars_connected":3,"sidecars_tapped":2}}`,
		`{"time":"2026-12-06T12:00:00.5Z","proxy":"web-1-sidecar-proxy","direction":"outbound","source":"web","destination":"api","method":"GET","path":"/items","status":503,"duration_ms":1.25,"weft_error":"no_healthy_upstream","trace_id":"4bf9"}`,
		``,
		`{"dropped":7}`,
		`{"time":"2026-12-06T12:00:01Z","direction":"inbound","source":"web","destination":"api","method":"POST","path":"/rpc","status":200,"grpc_status":"0","duration_ms":0.5,"upstream":"127.0.0.1:9001"}`,
		`{"time":"2026-12-06T12:00:02Z","direction":"inbound","source":"web","destination":"api","method":"GET","path":"/never","status":200}`,
	}, "\n")
	var out, errOut strings.Builder
	if err := printTap(&out, &errOut, strings.NewReader(stream), 2); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("printed %q, want the 2 requests --count allows", lines)
	}
	for i, want := range []string{
		"outbound web → api GET /items 503 1.25ms x-weft-error=no_healthy_upstream trace=4bf9",
		"inbound web → api POST /rpc 200 grpc=0 500µs upstream=127.0.0.1:9001",
	} {
		if !strings.HasSuffix(lines[i], want) {
			t.Errorf("line %d = %q, want it to end %q", i, lines[i], want)
		}
	}
	if e := errOut.String(); !strings.Contains(e, "tapping 2 of 3 connected sidecars") || !strings.Contains(e, "(7 requests not shown") {
		t.Errorf("stderr %q", e)
	}
	if err := printTap(&out, &errOut, strings.NewReader("not json\n"), 0); err == nil {
		t.Error("a broken stream was not reported")
	}
}
