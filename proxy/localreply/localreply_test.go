package localreply

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		reason Reason
		status int
	}{
		{NoRoute, 503}, {NoHealthyUpstream, 503}, {CircuitOpen, 503}, {Overflow, 503},
		{UpstreamTimeout, 504}, {UpstreamReset, 503}, {ConnectFailure, 503},
		{RBACDenied, 403}, {InvalidPath, 400}, {TooManyHeaders, 431}, {HeadersTooLarge, 431},
	}
	for _, tt := range tests {
		t.Run(string(tt.reason), func(t *testing.T) {
			w := httptest.NewRecorder()
			Write(w, httptest.NewRequest("GET", "/", nil), tt.reason, "api.default.dc1")
			var b body
			if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
				t.Fatal(err)
			}
			if w.Code != tt.status || w.Header().Get(Header) != string(tt.reason) || b.Error != tt.reason || b.Upstream != "api.default.dc1" {
				t.Errorf("got %d %q %+v", w.Code, w.Header().Get(Header), b)
			}
		})
	}
}

func TestWriteGRPC(t *testing.T) {
	r := httptest.NewRequest("POST", "/pkg.Svc/Method", nil)
	r.Header.Set("Content-Type", "application/grpc")
	w := httptest.NewRecorder()
	Write(w, r, UpstreamTimeout, "api")
	h := w.Header()
	if w.Code != http.StatusOK || h.Get("Grpc-Status") != "4" || h.Get(Header) != "upstream_timeout" ||
		h.Get("Grpc-Message") != "weft-proxy: upstream_timeout (upstream api)" || w.Body.Len() != 0 {
		t.Errorf("gRPC local reply: %d %v body %q", w.Code, h, w.Body.String())
	}
}
