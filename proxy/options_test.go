package proxy

import (
	"strings"
	"testing"
	"time"
)

func TestOptionsValidate(t *testing.T) {
	good := Options{ProxyID: "web-1-sidecar-proxy", XDSAddrs: []string{"127.0.0.1:18000"}}
	tests := []struct {
		name    string
		mutate  func(*Options)
		wantErr []string
	}{
		{"defaults are valid", func(*Options) {}, nil},
		{"several xDS servers and a port-0 admin", func(c *Options) {
			c.XDSAddrs = []string{"cp-1:18000", "cp-2:18000"}
			c.AdminAddr = "127.0.0.1:0"
		}, nil},
		{"missing everything", func(c *Options) { *c = Options{} }, []string{"ProxyID: required", "XDSAddrs: at least one address is required"}},
		{"bad xDS address", func(c *Options) { c.XDSAddrs = []string{"127.0.0.1:18000", "cp-2"} }, []string{`XDSAddrs[1] "cp-2": want host:port`}},
		{"bad port", func(c *Options) { c.XDSAddrs = []string{"cp:http"} }, []string{`XDSAddrs[0] "cp:http": invalid port "http"`}},
		{"bad admin address", func(c *Options) { c.AdminAddr = ":19000" }, []string{`AdminAddr ":19000": missing host`}},
		{"negative drain", func(c *Options) { c.DrainTimeout = -time.Second }, []string{"DrainTimeout -1s: must not be negative"}},
		{"net/http's HTTP/1 server", func(c *Options) { c.HTTP1Server = HTTP1NetHTTP }, nil},
		{"unknown HTTP/1 server", func(c *Options) { c.HTTP1Server = "nginx" }, []string{`HTTP1Server "nginx": want "lean" or "net/http"`}},
		{"standard socket I/O", func(c *Options) { c.SocketIO = SocketIOStandard }, nil},
		{"net/http's HTTP/2 server", func(c *Options) { c.HTTP2Server = HTTP2NetHTTP }, nil},
		{"unknown HTTP/2 server", func(c *Options) { c.HTTP2Server = "h2o" }, []string{`HTTP2Server "h2o": want "lean" or "net/http"`}},
		{"net/http's HTTP/2 client", func(c *Options) { c.HTTP2Client = HTTP2NetHTTP }, nil},
		{"unknown HTTP/2 client", func(c *Options) { c.HTTP2Client = "curl" }, []string{`HTTP2Client "curl": want "lean" or "net/http"`}},
		{"unknown socket I/O", func(c *Options) { c.SocketIO = "io_uring" }, []string{`SocketIO "io_uring": want "raw" or "standard"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mutate(&c)
			err := c.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			for _, want := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("Validate error = %v, want it to contain %q", err, want)
				}
			}
		})
	}
}

func TestNewRejectsInvalidOptions(t *testing.T) {
	if _, err := New(Options{}); err == nil || !strings.Contains(err.Error(), "ProxyID: required") {
		t.Errorf("New(Options{}) error = %v", err)
	}
}
