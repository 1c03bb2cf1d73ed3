package main

import (
	"bytes"
	"cmp"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/controlplane"
)

const listenerType = "type.googleapis.com/envoy.config.listener.v3.Listener"

// TestProxyStatusShowsSubscriptions checks that proxy-status shows a
// proxyless client's subscriptions, a sidecar's detail as before, and a
// proxy's problems: their count in the table, each in the detail.
func TestProxyStatusShowsSubscriptions(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		proxy   controlplane.ProxyStatus
		want    []string // lines the detail must contain
		wantNot []string
		row     string // the start of its row in the table
		rowEnd  string // the end of its row; "-" (no problems) when empty
	}{
		{
			name: "proxyless",
			proxy: controlplane.ProxyStatus{ID: "proxyless/web/a", Proxyless: true, Streams: 1, Connected: at,
				Types: map[string]*controlplane.TypeSync{listenerType: {AckedVersion: "abc", Subscribed: []string{"grpcsvc", "later"},
					Sent: []string{"grpcsvc"}, Missing: []string{"later"}, SentVersion: "abc", SentAt: at}}},
			want: []string{
				"    subscribed: grpcsvc, later\n",
				"    sent (version abc at 2026-12-01T10:00:00Z): grpcsvc\n",
				"    not sent (no such resource, or not answered yet): later\n",
			},
			row: "proxyless/web/a  proxyless",
		},
		{
			name: "proxyless before any response",
			proxy: controlplane.ProxyStatus{ID: "proxyless/web/b", Proxyless: true, Streams: 1, Connected: at,
				Types: map[string]*controlplane.TypeSync{listenerType: {Subscribed: []string{"nosuch"}, Missing: []string{"nosuch"}}}},
			want: []string{"    subscribed: nosuch\n", "    sent: -\n", "not sent (no such resource, or not answered yet): nosuch\n"},
			row:  "proxyless/web/b  proxyless",
		},
		{
			name: "sidecar",
			proxy: controlplane.ProxyStatus{ID: "web-1-sidecar-proxy", Streams: 1, Connected: at,
				Types: map[string]*controlplane.TypeSync{listenerType: {AckedVersion: "abc"}}},
			want:    []string{"proxy web-1-sidecar-proxy: 1 stream(s)", "    acked version: abc\n"},
			wantNot: []string{"subscribed", "sent", "problems"},
			row:     "web-1-sidecar-proxy  sidecar",
		},
		{
			name: "sidecar with problems",
			proxy: controlplane.ProxyStatus{ID: "api-1-sidecar-proxy", Streams: 1, Connected: at,
				Types: map[string]*controlplane.TypeSync{listenerType: {AckedVersion: "abc"}},
				Problems: []string{`proxy "api-1-sidecar-proxy": service-defaults "api": not supported and left out: MaxInboundConnections = "10"`,
					`proxy "api-1-sidecar-proxy": mesh: not supported and left out: HTTP.SanitizeXForwardedClientCert = "true"`}},
			want: []string{
				"  problems (each says what was left out or kept; docs/consul.md lists config-entry fields):\n",
				`    - proxy "api-1-sidecar-proxy": service-defaults "api": not supported and left out: MaxInboundConnections = "10"` + "\n",
				`    - proxy "api-1-sidecar-proxy": mesh: not supported and left out: HTTP.SanitizeXForwardedClientCert = "true"` + "\n",
			},
			row:    "api-1-sidecar-proxy  sidecar",
			rowEnd: "  2\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var detail, table bytes.Buffer
			printProxyDetail(&detail, tc.proxy)
			for _, w := range tc.want {
				if !strings.Contains(detail.String(), w) {
					t.Errorf("detail lacks %q:\n%s", w, detail.String())
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(detail.String(), w) {
					t.Errorf("detail has %q:\n%s", w, detail.String())
				}
			}
			printProxyTable(&table, []controlplane.ProxyStatus{tc.proxy})
			if !strings.Contains(table.String(), "\n"+tc.row) {
				t.Errorf("table has no row starting %q:\n%s", tc.row, table.String())
			}
			if end := cmp.Or(tc.rowEnd, "  -\n"); !strings.HasSuffix(table.String(), end) {
				t.Errorf("table row does not end %q:\n%s", end, table.String())
			}
		})
	}
}
