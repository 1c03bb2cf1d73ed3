package catalog

import "testing"

func TestProxyModeOf(t *testing.T) {
	web := func(mode string, port int) *Proxy {
		return &Proxy{ID: "web-1-sidecar-proxy", DestinationName: "web", Mode: mode, OutboundListenerPort: port}
	}
	sd := func(mode string, port int) map[string]*ServiceDefaults {
		return map[string]*ServiceDefaults{"web": {Name: "web", Mode: mode, TransparentProxy: TransparentProxy{OutboundListenerPort: port}}}
	}
	pd := func(mode string, port int) *ProxyDefaults {
		return &ProxyDefaults{Mode: mode, TransparentProxy: TransparentProxy{OutboundListenerPort: port}}
	}
	tests := []struct {
		name     string
		proxy    *Proxy
		services map[string]*ServiceDefaults
		proxies  *ProxyDefaults
		mode     string
		port     int
	}{
		{name: "nothing set", proxy: web("", 0)},
		{name: "registration only", proxy: web(ModeTransparent, 15009), mode: ModeTransparent, port: 15009},
		{name: "proxy-defaults only", proxy: web("", 0), proxies: pd(ModeTransparent, 15002), mode: ModeTransparent, port: 15002},
		{name: "service-defaults over proxy-defaults", proxy: web("", 0), services: sd(ModeTransparent, 0), proxies: pd("direct", 15002),
			mode: ModeTransparent, port: 15002},
		{name: "registration over both", proxy: web("direct", 0), services: sd(ModeTransparent, 15003), proxies: pd(ModeTransparent, 15002),
			mode: "direct", port: 15003},
		{name: "another service's defaults do not apply", proxy: web("", 0),
			services: map[string]*ServiceDefaults{"api": {Name: "api", Mode: ModeTransparent}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Snapshot{ServiceDefaults: tt.services, ProxyDefaults: tt.proxies}
			mode, port := s.ProxyModeOf(tt.proxy)
			if mode != tt.mode || port != tt.port {
				t.Errorf("ProxyModeOf = %q, %d; want %q, %d", mode, port, tt.mode, tt.port)
			}
		})
	}
}
