package grpcwire

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestIsRequest(t *testing.T) {
	tests := []struct {
		name        string
		protoMajor  int
		contentType string
		want        bool
	}{
		{"gRPC over HTTP/2", 2, "application/grpc", true},
		{"gRPC over HTTP/1.1", 1, "application/grpc", true},
		{"an encoding suffix", 2, "application/grpc+proto", true},
		{"an encoding suffix over HTTP/1.1", 1, "application/grpc+json", true},
		{"parameters", 2, "application/grpc;charset=utf-8", true},
		{"gRPC-Web is not gRPC", 2, "application/grpc-web", false},
		{"gRPC-Web text", 1, "application/grpc-web-text", false},
		{"a longer subtype", 2, "application/grpcx", false},
		{"JSON", 2, "application/json", false},
		{"no content type", 2, "", false},
		{"the prefix only", 2, "application/grp", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/pkg.Service/Method", nil)
			r.ProtoMajor = tt.protoMajor
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			if got := IsRequest(r); got != tt.want {
				t.Errorf("IsRequest(HTTP/%d, %q) = %v, want %v", tt.protoMajor, tt.contentType, got, tt.want)
			}
		})
	}
}

func TestIsRequestDoesNotAllocate(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/pkg.Service/Method", nil)
	r.Header.Set("Content-Type", "application/grpc+proto")
	if n := testing.AllocsPerRun(1000, func() { IsRequest(r) }); n != 0 {
		t.Errorf("IsRequest allocates %v times, want 0", n)
	}
}

func TestEncodeMessage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"type URL is required", "type URL is required"},
		{"100% done", "100%25 done"},
		{"line\nbreak", "line%0Abreak"},
		{"café", "caf%C3%A9"},
	}
	for _, tc := range tests {
		if got := EncodeMessage(tc.in); got != tc.want {
			t.Errorf("EncodeMessage(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
